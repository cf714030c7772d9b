import SundialConfig
import SundialCore

/// Reads the job files under some config paths and loads them: the shell around the pure
/// ``ConfigLoader``, used by `validate`, `run` (start and every reload), `next`, `diff`,
/// `simulate`.
public enum ConfigurationLoading {
    /// Loads every job file denoted by `paths` (design §1). Missing paths, unreadable files
    /// and files over the size limit are diagnostics like any other.
    public static func load(
        paths: [String], environment: ConfigEnvironment = .system,
        reader: YAMLReader = YAMLReader()
    ) -> ConfigLoadResult {
        load(paths: paths, reusing: [:], environment: environment, reader: reader).result
    }

    /// ``load(paths:environment:reader:)``, taking the files of `reuse` that are unchanged as
    /// they were (the loader child of an agent that remembers its last load: ``LoaderMemo``).
    public static func load(
        paths: [String], reusing reuse: [String: ReusableFile], environment: ConfigEnvironment = .system,
        reader: YAMLReader = YAMLReader()
    ) -> (result: ConfigLoadResult, files: [FileOutcome]) {
        let listing = ConfigFiles.listFiles(paths: paths)
        var diagnostics: [Diagnostic] = listing.problems.map {
            Diagnostic(at: SourceLocation(file: $0.path, line: 1, column: 1), $0.message)
        }
        var files: [ConfigLoader.SourceFile] = []
        for file in listing.files {
            let path = file.display
            do throws(FileSystem.ReadError) {
                files.append(.init(path: path, bytes: try FileSystem.read(rawPath: file.raw, display: path, limit: reader.limits.maxBytes)))
            } catch {
                let message: String
                switch error {
                case let .tooLarge(_, size, limit): message = "file is \(size) bytes, larger than the limit of \(limit) bytes"
                case let .cannotOpen(_, reason), let .readFailed(_, reason): message = "cannot read the file: \(reason)"
                }
                diagnostics.append(Diagnostic(at: SourceLocation(file: path, line: 1, column: 1), message))
            }
        }
        if listing.files.isEmpty && listing.problems.isEmpty {
            diagnostics.append(
                Diagnostic(
                    at: SourceLocation(file: paths.first ?? ".", line: 1, column: 1),
                    "no job files (*.yaml, *.yml) found", hint: "check the path"))
        }
        // Files are independent until the checks across them: several are parsed at once
        // (measured in docs/benchmarks.md: `validate` of 100 files on two CPUs).
        var (result, outcomes) = ConfigLoader(environment: environment, reader: reader).load(files, reusing: reuse) { count, body in
            ParallelFor.run(count, body)
        }
        if !diagnostics.isEmpty {
            result.diagnostics = (diagnostics + result.diagnostics).sorted()
            result.jobSet = nil
        }
        return (result, outcomes)
    }

    /// The contents of the files that `diagnostics` name, to print excerpts under them when the
    /// load itself happened elsewhere (the agent's loader child sends no sources). Bounded:
    /// regular files only, at most 32 of them, each within the reader's size limit.
    public static func sources(for diagnostics: [Diagnostic], limit: Int = YAMLReader.Limits().maxBytes) -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        for file in Set(diagnostics.map(\.location.file)).sorted().prefix(32) {
            if let bytes = try? FileSystem.read(file, limit: limit) { out[file] = bytes }
        }
        return out
    }
}

extension ConfigEnvironment {
    /// The real machine: zones from the tz database, files by `access(2)`.
    public static var system: ConfigEnvironment { system(zones: SystemTimeZones()) }

    /// The real machine with a given zone database (the agent shares its own, so a reload
    /// re-reads the zones it validates with).
    public static func system(zones: SystemTimeZones) -> ConfigEnvironment {
        ConfigEnvironment(zoneExists: { (try? zones.rules(named: $0)) != nil }, fileReadable: { FileSystem.isReadable($0) })
    }
}
