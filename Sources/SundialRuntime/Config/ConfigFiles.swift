/// Which job files a set of config paths denotes (design §1).
///
/// A path naming a file is taken as is, whatever its name. A directory is read recursively;
/// only `*.yaml`/`*.yml` files count, hidden files and directories and editor leftovers
/// (`.*`, `*~`, `*.swp`, `#*#`) are skipped, and the result is sorted by path (byte order), so
/// the set and its revision hash do not depend on `readdir` order. Symbolic links are followed
/// (a Kubernetes ConfigMap mount is a directory of links into a hidden `..data` directory),
/// with protection against loops, and a file reached through two paths is listed once.
///
/// Problems (a missing path, an unreadable directory, a dangling link, too many files) are
/// returned as values next to whatever could be listed; nothing is thrown.
public enum ConfigFiles {
    /// The most files one listing returns; more is almost surely a mistaken path (`/`).
    public static let maxFiles = 10_000
    /// The deepest directory nesting read below a config path.
    public static let maxDepth = 64

    /// One job file: how it is named in messages, and its path's real bytes.
    public struct File: Hashable, Sendable {
        /// The path as printed (``PathProbe/display(_:)``: escaped when not printable UTF-8).
        public var display: String
        /// The path as the kernel knows it.
        public var raw: [UInt8]
    }

    /// Lists the job files denoted by `paths`, in the order the paths are given, each
    /// directory's files sorted by path.
    public static func list(paths: [String]) -> (files: [String], problems: [(path: String, message: String)]) {
        let l = list(paths: paths, maxFiles: maxFiles)
        return (l.files.map(\.display), l.problems)
    }

    /// The listing with each file's raw path, for reading files whose names are not UTF-8.
    public static func listFiles(paths: [String]) -> (files: [File], problems: [(path: String, message: String)]) {
        list(paths: paths, maxFiles: maxFiles)
    }

    /// `list(paths:)` with an explicit file bound (tests use a small one).
    static func list(paths: [String], maxFiles: Int) -> (files: [File], problems: [(path: String, message: String)]) {
        var walker = Walker(maxFiles: maxFiles)
        for path in paths {
            walker.add(configPath: Array(PathProbe.trimmed(path).utf8))
        }
        return (walker.files, walker.problems)
    }

    // MARK: - Name rules

    /// Whether a directory entry is skipped: hidden (`.*`) or an editor leftover
    /// (`*~`, `*.swp`, `#*#`).
    public static func isIgnoredName(_ name: String) -> Bool {
        name.hasPrefix(".") || name.hasSuffix("~") || name.hasSuffix(".swp")
            || (name.count >= 2 && name.hasPrefix("#") && name.hasSuffix("#"))
    }

    /// Whether a file name found in a directory is a job file (`*.yaml`, `*.yml`) and not ignored.
    public static func isConfigFileName(_ name: String) -> Bool {
        !isIgnoredName(name) && (name.hasSuffix(".yaml") || name.hasSuffix(".yml"))
    }

    // MARK: - Walk

    /// Name rules on raw names: the suffixes and prefixes are ASCII, so they are checked on bytes.
    static func isIgnoredName(_ name: [UInt8]) -> Bool {
        guard let first = name.first, let last = name.last else { return false }
        return first == UInt8(ascii: ".") || last == UInt8(ascii: "~") || name.ends(with: Array(".swp".utf8))
            || (name.count >= 2 && first == UInt8(ascii: "#") && last == UInt8(ascii: "#"))
    }

    static func isConfigFileName(_ name: [UInt8]) -> Bool {
        !isIgnoredName(name) && (name.ends(with: Array(".yaml".utf8)) || name.ends(with: Array(".yml".utf8)))
    }

    private struct Walker {
        let maxFiles: Int
        var files: [File] = []
        var problems: [(path: String, message: String)] = []
        /// Files already listed, so one reached twice (two links, a path given twice) counts once.
        var seenFiles: Set<PathProbe.FileID> = []
        /// Directories already read, so two links to one directory read it once.
        var seenDirectories: Set<PathProbe.FileID> = []
        var truncated = false

        init(maxFiles: Int) { self.maxFiles = max(0, maxFiles) }

        mutating func add(configPath path: [UInt8]) {
            let shown = PathProbe.display(path)
            switch PathProbe.status(raw: path, followLinks: true) {
            case .failure(let error):
                problems.append((shown, missingMessage(path, error)))
            case .success(let status):
                switch status.kind {
                case .regular:
                    addFile(path, id: status.id)
                case .directory:
                    var found: [(path: [UInt8], id: PathProbe.FileID)] = []
                    walk(path, id: status.id, ancestors: [], depth: 0, into: &found)
                    found.sort { $0.path.lexicographicallyPrecedes($1.path) }
                    for file in found { addFile(file.path, id: file.id) }
                default:
                    problems.append((shown, "not a regular file or directory"))
                }
            }
        }

        private mutating func addFile(_ path: [UInt8], id: PathProbe.FileID) {
            guard seenFiles.insert(id).inserted else { return }
            guard files.count < maxFiles else {
                if !truncated {
                    truncated = true
                    problems.append(
                        (
                            PathProbe.display(path),
                            "more than \(maxFiles) job files: the whole set is rejected (is the path a mistake, such as `/`?)"
                        ))
                }
                return
            }
            files.append(File(display: PathProbe.display(path), raw: path))
        }

        /// Collects the job files below `directory` (unsorted) into `found`.
        private mutating func walk(
            _ directory: [UInt8], id: PathProbe.FileID, ancestors: Set<PathProbe.FileID>, depth: Int,
            into found: inout [(path: [UInt8], id: PathProbe.FileID)]
        ) {
            guard seenDirectories.insert(id).inserted else { return }
            guard depth <= ConfigFiles.maxDepth else {
                problems.append((PathProbe.display(directory), "directories nested deeper than \(ConfigFiles.maxDepth); skipped"))
                return
            }
            let names: [[UInt8]]
            switch PathProbe.entries(raw: directory) {
            case .failure(let error):
                problems.append((PathProbe.display(directory), "cannot read directory: \(error)"))
                return
            case .success(let list):
                // Sorted here too, so that when the file bound cuts the walk short, the files
                // kept do not depend on `readdir` order.
                names = list.sorted { $0.lexicographicallyPrecedes($1) }
            }
            var inside = ancestors
            inside.insert(id)
            for name in names where !ConfigFiles.isIgnoredName(name) {
                // Stop reading once the bound is reached; `addFile` reports the overflow.
                if found.count > maxFiles { return }
                let child = directory.last == UInt8(ascii: "/") ? directory + name : directory + [UInt8(ascii: "/")] + name
                switch PathProbe.status(raw: child, followLinks: true) {
                case .failure(let error):
                    // A dangling link or an entry removed meanwhile: only a job file matters.
                    if ConfigFiles.isConfigFileName(name) {
                        problems.append((PathProbe.display(child), missingMessage(child, error)))
                    }
                case .success(let status):
                    switch status.kind {
                    case .directory:
                        if inside.contains(status.id) {
                            problems.append((PathProbe.display(child), "symbolic link loop; skipped"))
                        } else {
                            walk(child, id: status.id, ancestors: inside, depth: depth + 1, into: &found)
                        }
                    case .regular:
                        if ConfigFiles.isConfigFileName(name) { found.append((child, status.id)) }
                    default:
                        if ConfigFiles.isConfigFileName(name) {
                            problems.append((PathProbe.display(child), "not a regular file"))
                        }
                    }
                }
            }
        }

        /// Distinguishes a dangling symbolic link from a path that does not exist at all.
        private func missingMessage(_ path: [UInt8], _ error: PathProbe.Errno) -> String {
            if case .success(let link) = PathProbe.status(raw: path, followLinks: false), link.kind == .symlink {
                let target = PathProbe.linkTarget(raw: path) ?? "?"
                return "dangling symbolic link to \(target): \(error)"
            }
            return error.description
        }
    }
}

extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && self[(count - suffix.count)...].elementsEqual(suffix) }
}
