import SundialConfig
import SundialCore
import SundialRuntime

/// `sundial validate --within DIR FILE [--as NAME]`: FILE checked as the file DIR/NAME would be
/// after FILE replaced it, together with every other job file of DIR.
///
/// Why: a job file alone may be invalid only because its `needs` point into another file of
/// the same directory (job ids are global across files), and a deployment tool checks a
/// candidate before it installs it, under another name (Ansible's `validate:` runs on a
/// randomly named temporary file). NAME defaults to FILE's own name, so
/// `--within /etc/sundial/jobs.d backup.yaml` checks a new `backup.yaml` for that directory.
struct ValidateWithin {
    var directory: String
    var candidate: String
    /// The candidate's path relative to `directory`.
    var name: String

    /// Why `--as NAME` (or FILE's own name) cannot name a job file of the directory, if it cannot.
    static func problem(withName name: String) -> String? {
        let components = name.split(separator: "/", omittingEmptySubsequences: false)
        if name.isEmpty || name.hasPrefix("/") || components.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) {
            return "'\(name)' must be a plain path inside the directory, such as backup.yaml or team/backup.yaml"
        }
        guard let last = components.last, ConfigFiles.isConfigFileName(String(last)),
            !components.dropLast().contains(where: { ConfigFiles.isIgnoredName(String($0)) })
        else {
            return "'\(name)' is not a name the agent reads in a directory (*.yaml or *.yml, not hidden)"
        }
        return nil
    }

    /// The last component of a path (`/tmp/x/backup.yaml` → `backup.yaml`).
    static func baseName(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1, p.hasSuffix("/") { p = p.dropLast() }
        return p.split(separator: "/").last.map(String.init) ?? String(p)
    }

    /// `DIR/NAME` as the directory listing spells it (trailing slashes of DIR dropped).
    var target: String {
        var d = Substring(directory)
        while d.count > 1, d.hasSuffix("/") { d = d.dropLast() }
        return d.hasSuffix("/") ? d + name : d + "/" + name
    }

    /// Loads the directory's files with the candidate in place of `target`; `replaced` tells
    /// whether such a file existed (else the candidate is checked as a new file).
    func load(environment: ConfigEnvironment = .system, reader: YAMLReader = YAMLReader()) -> (result: ConfigLoadResult, replaced: Bool) {
        let listing = ConfigFiles.listFiles(paths: [directory])
        let chosen = ConfigFiles.listFiles(paths: [candidate])
        var problems = listing.problems + chosen.problems
        let targetRaw = Array(target.utf8)
        var replaced = false
        var files: [ConfigFiles.File] = []
        for file in listing.files {
            if file.raw == targetRaw {
                replaced = true
                continue
            }
            // The candidate may sit in the directory under another name: read it once.
            if chosen.files.contains(where: { $0.raw == file.raw }) { continue }
            files.append(file)
        }
        // At the target's place in the sorted listing, so that the order (which decides where
        // "already defined" points) is the one the agent will see.
        let at = files.firstIndex { !$0.raw.lexicographicallyPrecedes(targetRaw) } ?? files.count
        files.insert(contentsOf: chosen.files, at: at)

        var sourceFiles: [ConfigLoader.SourceFile] = []
        for file in files {
            do throws(FileSystem.ReadError) {
                sourceFiles.append(
                    .init(path: file.display, bytes: try FileSystem.read(rawPath: file.raw, display: file.display, limit: reader.limits.maxBytes)))
            } catch {
                switch error {
                case let .tooLarge(_, size, limit): problems.append((file.display, "file is \(size) bytes, larger than the limit of \(limit) bytes"))
                case let .cannotOpen(_, reason), let .readFailed(_, reason): problems.append((file.display, "cannot read the file: \(reason)"))
                }
            }
        }
        var result = ConfigLoader(environment: environment, reader: reader).load(sourceFiles)
        if !problems.isEmpty {
            let diagnostics = problems.map { Diagnostic(at: SourceLocation(file: $0.path, line: 1, column: 1), $0.message) }
            result.diagnostics = (diagnostics + result.diagnostics).sorted()
            result.jobSet = nil
        }
        return (result, replaced)
    }
}
