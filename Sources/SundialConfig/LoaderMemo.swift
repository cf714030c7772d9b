import OrderedCollections
import SundialCore

/// The loader child's answer as decoded, before the agent assembles it (``LoaderMemo``).
public struct LoaderAnswer: Sendable {
    public struct File: Sendable {
        public var path: String
        public var digest: FileDigest
        /// The child found the file as the agent offered it: the agent's jobs stand.
        public var reused = false
        public var clean = false
        public var queries: [EnvironmentQuery] = []
        public var jobs: [JobSpec] = []
    }

    /// The set's revision; nil when the load has errors (and then no files are sent).
    public var revision: String?
    public var files: [File] = []
    public var diagnostics: [Diagnostic] = []
}

/// What the agent remembers of its last valid load, so that a reload parses only the files
/// that changed.
///
/// A reload after one edit used to parse every file again: with 1,000 jobs in ten files, the
/// child's parse and checks were about 20 ms of a reload's 50 (docs/benchmarks.md). Now the
/// agent offers the child each file it loaded cleanly (no diagnostic at all): its path, its
/// digest, the questions its load asked of the machine and their answers, and its jobs'
/// outlines (id, position, `needs`). The child still reads every file (it alone touches job
/// files) and still runs every check across files, on the outlines of the files it reuses;
/// a file whose bytes or answers differ is parsed as before. The answer then carries the jobs
/// of the parsed files only, and a mark for each reused one, whose jobs the agent takes from
/// here. So the result is the one a fresh load would give, and the child's work and the
/// answer are proportional to what changed.
///
/// A value, owned by one loader (``IsolatedConfigLoader`` holds it under a lock); nothing in
/// it is shared with other agents.
public struct LoaderMemo: Sendable {
    struct Entry: Sendable {
        var digest: FileDigest
        var queries: [EnvironmentQuery]
        var jobs: [JobSpec]
    }

    /// The child's first argument when a request is on its standard input (without it the
    /// child reads nothing there, so that `sundial internal-load` run by hand does not wait).
    public static let requestFlag = "--reuse-stdin"
    static let magic = "SUNDIAL-REUSE"
    static let version = 1
    /// The longest request a child reads; a larger memo is not offered (everything is parsed).
    public static let maxRequestBytes = 64 << 20

    private var entries: [String: Entry] = [:]

    public init() {}

    /// How many files a reload may take as they are.
    public var count: Int { entries.count }
    /// How many files the last valid answer took from this memo (for tests and benchmarks).
    public private(set) var reusedInLastLoad = 0

    /// The request for the child (its standard input): every remembered file, with its jobs'
    /// outlines. Empty when nothing is remembered.
    public func request() -> [UInt8] {
        guard !entries.isEmpty else { return [] }
        var w = WireWriter()
        w.count(entries.count)
        for (path, e) in entries.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
            w.string(path)
            LoaderWire.write(e.digest, into: &w)
            LoaderWire.write(e.queries, into: &w)
            w.count(e.jobs.count)
            for j in e.jobs {
                w.string(j.id)
                JobWire.write(j.location, into: &w)
                w.count(j.needs.count)
                for n in j.needs {
                    w.string(n.job)
                    w.choice(n.on)
                    JobWire.write(n.location, into: &w)
                }
            }
        }
        let body = w.bytes
        guard body.count <= Self.maxRequestBytes else { return [] }
        return Array("\(Self.magic) \(Self.version) \(body.count)\n".utf8) + body
    }

    /// The files a request offers (the child's side). Empty for no request; an error for a
    /// malformed one, which the child reports and then loads everything.
    public static func reusableFiles(from request: [UInt8]) throws(LoaderWire.DecodeError) -> [String: ReusableFile] {
        guard !request.isEmpty else { return [:] }
        var r = try LoaderWire.body(request, magic: magic, version: version, maxBytes: maxRequestBytes)
        do throws(JobWire.DecodeError) {
            var files: [String: ReusableFile] = [:]
            for _ in 0..<(try r.count("files")) {
                let path = try r.string("file")
                let digest = try LoaderWire.decodeDigest(&r)
                let queries = try LoaderWire.decodeQueries(&r)
                var outline: [JobSpec] = []
                for _ in 0..<(try r.count("jobs")) {
                    var j = JobSpec(id: try r.string("id"), command: .argv([]))
                    j.location = try JobWire.decodeLocation(&r)
                    var needs: [Need] = []
                    for _ in 0..<(try r.count("needs")) {
                        needs.append(Need(job: try r.string("needs.job"), on: try r.choice("needs.on"), location: try JobWire.decodeLocation(&r)))
                    }
                    j.needs = needs
                    outline.append(j)
                }
                files[path] = ReusableFile(digest: digest, queries: queries, outline: outline)
            }
            guard r.isAtEnd else { throw JobWire.DecodeError("\(r.remaining) bytes after the request") }
            return files
        } catch {
            throw LoaderWire.DecodeError(error.description)
        }
    }

    /// The load's result from the child's `answer`: its jobs, with this memo's for the files
    /// it reused. After a valid load, the memo holds exactly that load's clean files.
    ///
    /// The answer is untrusted: a reused file this memo does not hold with the same digest, or
    /// a job id twice, is an error, and the memo is then left as it was.
    public mutating func result(of answer: LoaderAnswer) throws(LoaderWire.DecodeError) -> ConfigLoadResult {
        guard let revision = answer.revision else { return ConfigLoadResult(jobSet: nil, diagnostics: answer.diagnostics) }
        var jobs: OrderedDictionary<JobID, JobSpec> = [:]
        // Sized once: grown a job at a time, its hash table was rebuilt at every doubling
        // (half of this function's instructions with 1,000 jobs). The size is bounded by what
        // this memo holds and the jobs the answer carries, never by the answer's claims: an
        // untrusted answer marking one remembered file reused a million times must be refused
        // below (a job twice), not make the agent reserve room for a million copies.
        jobs.reserveCapacity(entries.values.reduce(0) { $0 + $1.jobs.count } + answer.files.reduce(0) { $0 + $1.jobs.count })
        var next: [String: Entry] = [:]
        for file in answer.files {
            let entry: Entry
            if file.reused {
                guard let known = entries[file.path], known.digest == file.digest else {
                    throw LoaderWire.DecodeError("`\(file.path)` is marked unchanged but was not offered")
                }
                entry = known
            } else {
                entry = Entry(digest: file.digest, queries: file.queries, jobs: file.jobs)
            }
            for job in entry.jobs {
                guard jobs.updateValue(job, forKey: job.id) == nil else { throw LoaderWire.DecodeError("job `\(job.id)` appears twice") }
            }
            if file.reused || file.clean { next[file.path] = entry }
        }
        entries = next
        reusedInLastLoad = answer.files.count { $0.reused }
        return ConfigLoadResult(
            jobSet: JobSet(jobs: jobs, files: answer.files.map(\.path), revision: revision), diagnostics: answer.diagnostics)
    }
}
