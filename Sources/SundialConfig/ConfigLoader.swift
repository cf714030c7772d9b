import OrderedCollections
import SundialCore
import Synchronization

/// Turns job files into a validated ``JobSet``, or into every problem found (design §1, §5).
///
/// Pure: the caller reads the files and passes their bytes; machine facts come through
/// ``ConfigEnvironment``. The stages, each reporting all problems, not the first:
/// 1. YAML → positioned nodes (``YAMLReader``: limits, duplicate keys);
/// 2. the JSON Schema in `schemas/` (the same file editors use), errors mapped back to nodes;
/// 3. decoding into the model, with `defaults` merged in (durations, times, cron syntax);
/// 4. checks across files: unique ids, known `needs`, no cycles.
public struct ConfigLoader: Sendable {
    public var environment: ConfigEnvironment
    public var reader: YAMLReader
    /// The most jobs one file may define: the schema's, lowered only by tests.
    var maxJobsPerFile = JobSchema.shared.maxJobsPerFile
    /// Most scalar bytes, after alias expansion, of all the files parsed in one load: each file
    /// may expand to ``YAMLReader/Limits/maxExpandedBytes``, and the agent's loader child sends
    /// every decoded string to the agent, which accepts 256 MiB. Below that, so that a set
    /// `validate` accepts is never one the agent must refuse. (Files an agent's reload reuses
    /// unchanged are not parsed again and not counted: it sends only what it parsed.)
    ///
    /// A running budget in file order (``ExpansionBudget``): the load stops at the first file
    /// whose running total crosses it, at the node that crosses it, and reads no file after it.
    public var maxExpandedBytes = 128 * 1024 * 1024
    /// Told the path of each file about to be parsed (tests count parses through it).
    var parseObserver: (@Sendable (String) -> Void)?

    public init(environment: ConfigEnvironment = ConfigEnvironment(), reader: YAMLReader = YAMLReader()) {
        self.environment = environment
        self.reader = reader
    }

    /// One file's path and content.
    public struct SourceFile: Sendable {
        public var path: String
        public var bytes: [UInt8]
        public init(path: String, bytes: [UInt8]) {
            self.path = path
            self.bytes = bytes
        }
    }

    /// Runs `body(0) … body(count - 1)`, in any order and possibly at once; returns when all
    /// have run. The loader stays pure: the caller decides whether files are loaded on several
    /// threads (the runtime's `ConfigurationLoading` does).
    public typealias EachFile = @Sendable (_ count: Int, _ body: @escaping @Sendable (Int) -> Void) -> Void

    /// One file after another, on the caller's thread.
    public static let oneByOne: EachFile = { count, body in for i in 0..<count { body(i) } }

    /// Loads a whole set. Valid only when no file has an error.
    ///
    /// Each file is read, validated against the schema and decoded on its own, through
    /// `eachFile` (files are independent until the checks across files, which follow, in file
    /// order); the result does not depend on how `eachFile` schedules them.
    public func load(_ files: [SourceFile], eachFile: EachFile = oneByOne) -> ConfigLoadResult {
        load(files, reusing: [:], eachFile: eachFile).result
    }

    /// Loads a whole set, taking each file of `reuse` whose bytes and environment answers are
    /// unchanged as it was instead of parsing it again (the agent's reload after one edit:
    /// see ``LoaderMemo``). The checks across files run on every file, reused or not, so the
    /// diagnostics are those of a fresh load. A reused file's jobs in the result are its
    /// outline (id, position, `needs`): the caller that offered it holds the jobs themselves.
    public func load(
        _ files: [SourceFile], reusing reuse: [String: ReusableFile], eachFile: EachFile = oneByOne
    ) -> (result: ConfigLoadResult, files: [FileOutcome]) {
        // The total of expanded text is a running budget in file order (``ExpansionBudget``):
        // files are parsed at once, each within what the finished files before it leave, and
        // none after a file known to cross the total is read.
        let budget = ExpansionBudget(limit: maxExpandedBytes, files: files.count)
        let perFile = Mutex<[(FileResult, FileOutcome)?]>(Array(repeating: nil, count: files.count))
        eachFile(files.count) { [self] i in
            guard budget.wants(i) else { return }
            let loaded = loadOne(files[i], reusing: reuse) { budget.grant(file: i, used: $0) }
            if loaded.0.stop == nil { budget.finish(file: i, count: loaded.0.expandedBytes) }
            perFile.withLock { $0[i] = loaded }
        }
        var loaded = perFile.withLock { $0 }
        // Settled in file order, so that the answer does not depend on the threads: the first
        // file whose running total crosses is reported; a file the parallel pass could not
        // settle (stopped before the files ahead of it were all counted, or not read) is read
        // again, alone, with exactly what the files before it leave. Files after it are left out.
        var diagnostics: [Diagnostic] = []
        var total = 0
        var crossing: Int?
        func fits(_ i: Int) -> Bool {
            guard let r = loaded[i]?.0, r.stop == nil, total + r.expandedBytes <= maxExpandedBytes else { return false }
            total += r.expandedBytes
            return true
        }
        for i in files.indices {
            if fits(i) { continue }
            if case .crossed(_, exact: true)? = loaded[i]?.0.stop {
                // Stopped where the total is crossed, the files before it all counted.
            } else {
                loaded[i] = loadOne(files[i], reusing: reuse, allowance: ExpansionBudget.fixed(maxExpandedBytes - total))
                if fits(i) { continue }
            }
            crossing = i
            var r = loaded[i]?.0 ?? FileResult()
            var at = SourceLocation(file: files[i].path, line: 1, column: 1)
            if case let .crossed(location, _)? = r.stop { at = location }
            let after = i + 1 < files.count ? "; the files after it were not checked" : ""
            r.diagnostics.append(
                Diagnostic(
                    at: at,
                    "the job files hold more than \(Self.size(maxExpandedBytes)) of text in all once their aliases are expanded, "
                        + "and this file crosses that here (the files before it hold \(Self.size(total)))\(after)",
                    hint: "remove repeated aliases of long values: each copies the whole anchored value, in every file of the set"))
            loaded[i]?.0 = r
            for j in (i + 1)..<files.count { loaded[j] = nil }
            break
        }
        let results = loaded.map { $0?.0 }
        var jobs: OrderedDictionary<JobID, JobSpec> = [:]
        var firstDefinition: [JobID: SourceLocation] = [:]
        var knownIDs: Set<JobID> = []
        var hash = ContentHash()
        var sources: [String: [UInt8]] = [:]

        for (file, fileResult) in zip(files, results) {
            sources[file.path] = file.bytes
            hash.combine(file.path)
            hash.combine(file.bytes)
            // Only the files after one that crosses the total are not read (or left out).
            guard let fileResult else { continue }
            diagnostics += fileResult.diagnostics
            for (id, location) in fileResult.ids {
                if let first = firstDefinition[id] {
                    diagnostics.append(
                        Diagnostic(
                            at: location, "job `\(id)` is already defined at \(first)",
                            hint: "job ids are global across all files; rename one of them"))
                } else {
                    firstDefinition[id] = location
                    knownIDs.insert(id)
                }
            }
            for job in fileResult.jobs where jobs[job.id] == nil && firstDefinition[job.id] == job.location {
                jobs[job.id] = job
            }
        }
        // A set cut short at the total lacks the jobs of the files after the cut: their ids
        // would be "unknown" to every `needs` that names them.
        if crossing == nil { diagnostics += DependencyChecks.check(jobs: jobs, knownIDs: knownIDs) }
        var secretLines: [String: Set<Int>] = [:]
        for (file, r) in zip(files, results) where r?.secretLines.isEmpty == false { secretLines[file.path] = r?.secretLines }
        if !secretLines.isEmpty {
            for i in diagnostics.indices where secretLines[diagnostics[i].location.file]?.contains(diagnostics[i].location.line) == true {
                diagnostics[i].sourceMayHoldSecret = true
            }
        }
        diagnostics = Array(Set(diagnostics)).sorted()
        let valid = !diagnostics.contains { $0.severity == .error }
        let result = ConfigLoadResult(
            jobSet: valid ? JobSet(jobs: jobs, files: files.map(\.path), revision: hash.hex) : nil,
            diagnostics: diagnostics, sources: sources)
        return (result, loaded.compactMap { $0?.1 })
    }

    /// Loads one file, or takes it from `reuse` when it is unchanged (not parsed, and counted
    /// as no text). `allowance` is what the files before it leave (``ExpansionBudget``).
    func loadOne(
        _ file: SourceFile, reusing reuse: [String: ReusableFile], allowance: @escaping (Int) -> ExpansionGrant
    ) -> (FileResult, FileOutcome) {
        let digest = FileDigest(of: file.bytes)
        if let known = reuse[file.path], known.digest == digest, environment.answersAgain(known.queries) {
            var result = FileResult()
            result.jobs = known.outline
            result.ids = known.outline.map { ($0.id, $0.location ?? SourceLocation(file: file.path, line: 1, column: 1)) }
            return (result, FileOutcome(path: file.path, digest: digest, reused: true, clean: true, queries: known.queries, jobs: []))
        }
        let log = QueryLog()
        let result = loadFile(file, environment: environment.recording(into: log), allowance: allowance)
        return (
            result,
            FileOutcome(
                path: file.path, digest: digest, reused: false, clean: result.diagnostics.isEmpty && result.stop == nil,
                queries: log.all, jobs: result.jobs)
        )
    }

    /// `n` bytes in words: whole MiB from 1 MiB on.
    static func size(_ n: Int) -> String { n >= 1 << 20 ? "\(n >> 20) MiB" : "\(n) bytes" }

    struct FileResult: Sendable {
        var jobs: [JobSpec] = []
        var ids: [(JobID, SourceLocation)] = []
        var diagnostics: [Diagnostic] = []
        /// The document's scalar bytes after alias expansion.
        var expandedBytes = 0
        /// Why the file was not read to its end for the load's total (``ExpansionBudget``).
        var stop: YAMLReader.Reading.Stop?
        /// Lines that hold a secret (``secretLines(in:bytes:)``).
        var secretLines: Set<Int> = []
    }

    /// The lines of a job file that hold a secret: a webhook's `url` and header values, and
    /// the `env` values of secret variables (named in a `secrets` list or a `secret_env`). A diagnostic on such a line prints no source
    /// line, whatever it is about: a webhook written on one line (`webhook: { url: …, timeout:
    /// 0s }`) showed its URL under the `timeout` error.
    ///
    /// Every line a value spans, not only its first: a block (`|`, `>`), multi-line plain or
    /// quoted secret showed its second line under an error about a neighbour that shares it
    /// (`"…\n  rest-of-secret", BAD: [1] }`). `bytes` are the file's, to find a value's last line
    /// (``YAMLNode/endLine``).
    static func secretLines(in root: YAMLNode, bytes: [UInt8]) -> Set<Int> {
        var lines: Set<Int> = []
        var lineStarts: [Int]?
        func insert(_ value: YAMLNode) {
            let first = value.location.line
            var last = value.endLine
            if last > first {
                // libyaml ends a block scalar or block collection where the next token starts,
                // past the next line's indentation: that line is not the value's when nothing
                // but blanks precedes the end on it.
                let starts = lineStarts ?? Self.lineStarts(of: bytes)
                lineStarts = starts
                if last - 1 < starts.count {
                    let from = starts[last - 1]
                    let upTo = min(bytes.count, from + max(0, value.endColumn - 1))
                    if bytes[from..<upTo].allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { last -= 1 }
                }
            }
            lines.formUnion(first...max(first, last))
        }
        var scopes = (root["jobs"]?.entries ?? []).map(\.value)
        if let defaults = root["defaults"] { scopes.append(defaults) }
        func webhooks(_ scope: YAMLNode) -> [YAMLNode] {
            guard case let .sequence(entries)? = scope["notify"]?.kind else { return [] }
            return entries.compactMap { $0["webhook"] }
        }
        // The secret variables: named in a `secrets` list, or a webhook's `secret_env`.
        var named: Set<String> = []
        for scope in scopes {
            if case let .sequence(items)? = scope["secrets"]?.kind { named.formUnion(items.compactMap(\.scalarText)) }
            for webhook in webhooks(scope) { if let name = webhook["secret_env"]?.scalarText { named.insert(name) } }
        }
        for scope in scopes {
            for (name, _, value) in scope["env"]?.entries ?? [] where named.contains(name) { insert(value) }
            for webhook in webhooks(scope) {
                if let url = webhook["url"] { insert(url) }
                for (_, _, value) in webhook["headers"]?.entries ?? [] { insert(value) }
            }
        }
        return lines
    }

    /// The byte offset at which each line of `bytes` starts (line 1 at index 0).
    static func lineStarts(of bytes: [UInt8]) -> [Int] {
        var starts = [0]
        for (i, b) in bytes.enumerated() where b == 0x0A { starts.append(i + 1) }
        return starts
    }

    func loadFile(_ file: SourceFile) -> FileResult { loadFile(file, environment: environment, allowance: nil) }

    func loadFile(_ file: SourceFile, environment: ConfigEnvironment, allowance: ((Int) -> ExpansionGrant)?) -> FileResult {
        var result = FileResult()
        parseObserver?(file.path)
        let reading = reader.read(bytes: file.bytes, file: file.path, allowance: allowance)
        result.expandedBytes = reading.expandedBytes
        result.stop = reading.stop
        guard let root = reading.node else {
            result.diagnostics = reading.diagnostics
            return result
        }
        // Every id is registered, even of jobs that fail to decode or are never checked, so
        // that one typo (or one file over the limit below) does not cascade into "unknown job"
        // errors in every file that needs it.
        for (id, keyNode, _) in root["jobs"]?.entries ?? [] {
            result.ids.append((id, keyNode.location))
        }
        result.secretLines = Self.secretLines(in: root, bytes: file.bytes)
        // A file with more jobs than a file may hold is rejected on the count alone, before
        // any job is checked: one 4 MiB file of one-line jobs holds about 80,000 of them, and
        // checking each would cost the loader seconds of CPU on every reload of a file that
        // cannot be accepted anyway (a hostile input made cheap, issue 13).
        if let jobsNode = root["jobs"], case let .mapping(pairs) = jobsNode.kind, pairs.count > maxJobsPerFile {
            result.diagnostics = [
                Diagnostic(
                    at: jobsNode.location,
                    "`jobs`: a file may have at most \(maxJobsPerFile) jobs and this one has \(pairs.count) (none of them was checked)",
                    hint: "split the jobs across several files")
            ]
            return result
        }
        let violations = JobSchema.shared.schema.validate(root.jsonValue())
        result.diagnostics += violations.map { JobSchema.shared.diagnostic(for: $0, root: root) }

        // The semantic checks run on what the schema accepted: each rejected value is left out
        // (so it is not reported twice in different words), everything else is still checked,
        // so one run shows every problem of the file (``SchemaPruning``).
        let paths = SchemaPruning.rejectedPaths(violations, root: root)
        guard let checked = SchemaPruning.prune(root, removing: paths), let jobsNode = checked["jobs"] else { return result }

        let defaults = checked["defaults"]
        var decoder = JobDecoder(environment: environment)
        for (id, keyNode, jobNode) in jobsNode.entries {
            if let job = decoder.decode(id: id, idLocation: keyNode.location, node: jobNode, defaults: defaults) {
                result.jobs.append(job)
            }
        }
        result.diagnostics += decoder.diagnostics
        return result
    }
}

/// A file's identity for reuse: its size and the FNV-1a hash of its bytes. Not a security
/// boundary (anyone who can write a job file can make it say anything); an accidental match
/// of a changed file of the same size is one in 2⁶⁴.
public struct FileDigest: Hashable, Sendable {
    public var size: Int
    public var hash: UInt64

    public init(size: Int, hash: UInt64) {
        self.size = size
        self.hash = hash
    }

    public init(of bytes: [UInt8]) {
        var h = ContentHash()
        h.combine(bytes)
        self.init(size: bytes.count, hash: h.value)
    }
}

/// A file the caller loaded before without a single diagnostic, offered for reuse: taken as it
/// was when its bytes have the same digest and every question its load asked of the machine
/// gets the same answer.
public struct ReusableFile: Hashable, Sendable {
    public var digest: FileDigest
    public var queries: [EnvironmentQuery]
    /// Its jobs as the checks across files need them: id, position and `needs` (the rest of
    /// each job stays with the caller).
    public var outline: [JobSpec]

    public init(digest: FileDigest, queries: [EnvironmentQuery], outline: [JobSpec]) {
        self.digest = digest
        self.queries = queries
        self.outline = outline
    }

    /// The outline of `job`: what the checks across files read of it.
    public static func outline(of job: JobSpec) -> JobSpec {
        var o = JobSpec(id: job.id, command: .argv([]))
        o.needs = job.needs
        o.location = job.location
        return o
    }
}

/// What a load made of one file.
public struct FileOutcome: Sendable {
    public var path: String
    public var digest: FileDigest
    /// Taken from the caller's ``ReusableFile``, not parsed.
    public var reused: Bool
    /// Loaded without any diagnostic: one the caller may offer for reuse next time.
    public var clean: Bool
    public var queries: [EnvironmentQuery]
    /// The file's jobs (none when reused: the caller has them).
    public var jobs: [JobSpec]
}
