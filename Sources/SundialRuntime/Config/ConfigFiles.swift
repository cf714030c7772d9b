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
///
/// The walk is bounded by what it reads, not only by what it finds: a link to `/` in a jobs
/// directory leads into /proc and /sys, which hold few job files but endless directories, and
/// a walk bounded by files alone ran until the loader was killed (and, /proc changing, the
/// agent's poll saw a change and reloaded again). Past `maxDirectories` directories or
/// `maxEntries` entries the listing stops at once and lists no files, only the problem.
public enum ConfigFiles {
    /// The most files one listing returns; more is almost surely a mistaken path (`/`).
    public static let maxFiles = 10_000
    /// The deepest directory nesting read below a config path.
    public static let maxDepth = 64
    /// The most directories one listing reads (the watcher watches as many at most).
    public static let maxDirectories = 10_000
    /// The most directory entries one listing examines, ignored names included: each costs a
    /// `stat`, and one huge directory must not hold the walk up either.
    public static let maxEntries = 100_000

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

    /// `list(paths:)` with explicit bounds (tests use small ones).
    static func list(
        paths: [String], maxFiles: Int, maxDirectories: Int = ConfigFiles.maxDirectories, maxEntries: Int = ConfigFiles.maxEntries
    ) -> (files: [File], problems: [(path: String, message: String)]) {
        var walker = Walker(maxFiles: maxFiles, maxDirectories: maxDirectories, maxEntries: maxEntries)
        for path in paths {
            walker.add(configPath: Array(PathProbe.trimmed(path).utf8))
            if walker.overflowed { break }
        }
        // The whole set is rejected: the files found on the way (random YAML below `/`) would
        // only bury the one message that matters under theirs. So with more than `maxFiles`
        // job files: reading and parsing the first 10,000 (4 MiB each at most) only to reject
        // them all cost seconds and buried the message under theirs.
        return walker.overflowed || walker.truncated ? ([], walker.problems) : (walker.files, walker.problems)
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
        let maxDirectories: Int
        let maxEntries: Int
        /// Directories read and entries examined so far, across all the config paths.
        var directoriesRead = 0
        var entriesExamined = 0
        /// Set when a bound on directories or entries is passed: the walk stops at once.
        var overflowed = false
        /// How many problems were known before the current config path's walk began.
        var problemsBeforeWalk = 0
        var files: [File] = []
        var problems: [(path: String, message: String)] = []
        /// Files already listed, so one reached twice (two links, a path given twice) counts once.
        var seenFiles: Set<PathProbe.FileID> = []
        /// Directories already read, so two links to one directory read it once.
        var seenDirectories: Set<PathProbe.FileID> = []
        var truncated = false

        init(maxFiles: Int, maxDirectories: Int, maxEntries: Int) {
            self.maxFiles = max(0, maxFiles)
            self.maxDirectories = max(0, maxDirectories)
            self.maxEntries = max(0, maxEntries)
        }

        /// Records that a bound was passed below config path `root`, and stops the walk. The
        /// problems found below it are dropped too: they are about whatever the mistaken path
        /// led to (loops under /usr/lib, unreadable corners of /proc), not about job files.
        private mutating func overflow(_ root: [UInt8], _ what: String) {
            overflowed = true
            problems.removeSubrange(problemsBeforeWalk...)
            let shown = PathProbe.display(root)
            problems.append(
                (shown, "more than \(what) below \(shown): the whole set is rejected (is the path a mistake, such as a link to `/`?)"))
        }

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
                    problemsBeforeWalk = problems.count
                    var found: [(path: [UInt8], id: PathProbe.FileID)] = []
                    walk(path, id: status.id, ancestors: [], depth: 0, root: path, into: &found)
                    if overflowed { return }
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
            _ directory: [UInt8], id: PathProbe.FileID, ancestors: Set<PathProbe.FileID>, depth: Int, root: [UInt8],
            into found: inout [(path: [UInt8], id: PathProbe.FileID)]
        ) {
            guard !overflowed, seenDirectories.insert(id).inserted else { return }
            guard depth <= ConfigFiles.maxDepth else {
                problems.append((PathProbe.display(directory), "directories nested deeper than \(ConfigFiles.maxDepth); skipped"))
                return
            }
            guard directoriesRead < maxDirectories else { return overflow(root, "\(maxDirectories) directories") }
            directoriesRead += 1
            let names: [[UInt8]]
            // One past what is left, so that a huge directory is not read whole to learn it is too big.
            switch PathProbe.entries(raw: directory, limit: maxEntries - entriesExamined + 1) {
            case .failure(let error):
                problems.append((PathProbe.display(directory), "cannot read directory: \(error)"))
                return
            case .success(let list):
                guard list.count <= maxEntries - entriesExamined else { return overflow(root, "\(maxEntries) directory entries") }
                entriesExamined += list.count
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
                            walk(child, id: status.id, ancestors: inside, depth: depth + 1, root: root, into: &found)
                            if overflowed { return }
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
