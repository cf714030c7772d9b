import OrderedCollections
import SundialCore

/// The loader child's answer to the agent: a validated job set, or positioned diagnostics.
///
/// The agent parses job files in a short-lived child process (OpenSSH's privilege-separation
/// pattern: untrusted input is parsed where a crash or a runaway allocation cannot hurt the
/// process that supervises jobs). This is the format of what comes back over the pipe:
///
///     SUNDIAL-LOADER 4 <length>\n<length bytes of binary body>
///
/// A versioned header, so an agent and a child from different builds (an upgrade in progress)
/// refuse each other instead of misreading; an exact length, so a truncated answer (a child
/// killed mid-write) is told from a complete one; and a bound the reader checks before it
/// allocates. The body is ``WireWriter``'s binary form (version 1 was JSON; why it changed is
/// there): for a valid set, its revision and each file with its digest and either its jobs or
/// a mark that the agent's copy was reused (``LoaderMemo``); then the diagnostics and the
/// number of diagnostics left out. The agent's request to the child (the files it may reuse)
/// travels the other way on the child's standard input, as ``LoaderMemo/request()``.
/// Decoding treats the bytes as untrusted: anything malformed is a ``DecodeError``.
public enum LoaderWire {
    public static let version = 4
    static let magic = "SUNDIAL-LOADER"
    /// The most diagnostics an answer carries; the agent logs at most 1,000 errors anyway.
    public static let maxDiagnostics = 1000

    public struct DecodeError: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
        init(_ d: String) { description = d }
    }

    /// Encodes a load's outcome without what it made of each file (tests, `sundial-bench`): the
    /// set's jobs all go with its first file, which keeps their order, and no file is offered
    /// for reuse.
    public static func encode(_ result: ConfigLoadResult) -> [UInt8] {
        var files: [FileOutcome] = []
        if result.isValid, let set = result.jobSet {
            let jobs = Array(set.jobs.values)
            files = (set.files.isEmpty && !jobs.isEmpty ? [""] : set.files).enumerated().map { i, path in
                FileOutcome(path: path, digest: FileDigest(size: 0, hash: 0), reused: false, clean: false, queries: [], jobs: i == 0 ? jobs : [])
            }
        }
        return encode(result, files: files)
    }

    /// Encodes a load's outcome with what it made of each file: the jobs of each file parsed,
    /// a mark for each file reused from the agent's ``LoaderMemo``.
    public static func encode(_ result: ConfigLoadResult, files: [FileOutcome]) -> [UInt8] {
        let kept = result.diagnostics.prefix(maxDiagnostics)
        var w = WireWriter(capacity: 1024 + (result.jobSet?.jobs.count ?? 0) * 160)
        let set = result.isValid ? result.jobSet : nil
        w.bool(set != nil)
        if let set {
            w.string(set.revision)
            w.count(files.count)
            for f in files {
                w.string(f.path)
                write(f.digest, into: &w)
                w.bool(f.reused)
                if f.reused { continue }
                w.bool(f.clean)
                write(f.queries, into: &w)
                w.count(f.jobs.count)
                for j in f.jobs { JobWire.write(j, into: &w) }
            }
        }
        w.count(kept.count)
        for d in kept { write(d, into: &w) }
        w.int(result.diagnostics.count - kept.count)
        return Array("\(magic) \(version) \(w.bytes.count)\n".utf8) + w.bytes
    }

    /// Decodes an answer of at most `maxBytes` bytes (header included) that reuses no file.
    public static func decode(_ bytes: [UInt8], maxBytes: Int) throws(DecodeError) -> ConfigLoadResult {
        var memo = LoaderMemo()
        return try memo.result(of: decodeAnswer(bytes, maxBytes: maxBytes))
    }

    /// Decodes an answer of at most `maxBytes` bytes (header included), for ``LoaderMemo``.
    public static func decodeAnswer(_ bytes: [UInt8], maxBytes: Int) throws(DecodeError) -> LoaderAnswer {
        var r = try body(bytes, magic: magic, version: version, maxBytes: maxBytes)
        do throws(JobWire.DecodeError) {
            var answer = LoaderAnswer()
            if try r.bool("job set") {
                answer.revision = try r.string("revision")
                let shared = SharedValues()
                for _ in 0..<(try r.count("files")) {
                    var f = LoaderAnswer.File(path: try r.string("file"), digest: try decodeDigest(&r))
                    f.reused = try r.bool("reused")
                    if !f.reused {
                        f.clean = try r.bool("clean")
                        f.queries = try decodeQueries(&r)
                        for _ in 0..<(try r.count("jobs")) { f.jobs.append(try JobWire.decodeJob(&r, shared: shared)) }
                    }
                    answer.files.append(f)
                }
            }
            let count = try r.count("diagnostics")
            guard count <= maxDiagnostics else { throw JobWire.DecodeError("more than \(maxDiagnostics) diagnostics") }
            for _ in 0..<count { answer.diagnostics.append(try decodeDiagnostic(&r)) }
            let omitted = try r.smallInt("omitted")
            guard r.isAtEnd else { throw JobWire.DecodeError("\(r.remaining) bytes after the diagnostics") }
            if omitted > 0, let first = answer.diagnostics.first {
                answer.diagnostics.append(Diagnostic(.note, at: first.location, "\(omitted) more problems not shown"))
            }
            if answer.revision != nil, answer.diagnostics.contains(where: { $0.severity == .error }) {
                throw JobWire.DecodeError("a job set together with errors")
            }
            return answer
        } catch {
            throw DecodeError(error.description)
        }
    }

    /// The body of a message `<magic> <version> <length>\n<body>`, checked against its header.
    static func body(_ bytes: [UInt8], magic: String, version: Int, maxBytes: Int) throws(DecodeError) -> WireReader {
        guard bytes.count <= maxBytes else { throw DecodeError("the answer is larger than \(maxBytes) bytes") }
        guard let newline = bytes.prefix(64).firstIndex(of: 0x0A) else { throw DecodeError("no header line") }
        let header = String(decoding: bytes[..<newline], as: UTF8.self).split(separator: " ")
        guard header.count == 3, header[0] == magic else { throw DecodeError("not a loader answer") }
        guard Int(header[1]) == version else {
            throw DecodeError("answer version \(header[1]), expected \(version) (an upgrade in progress? restart the agent)")
        }
        guard let length = Int(header[2]), length >= 0 else { throw DecodeError("bad length in the header") }
        let body = bytes.count - (newline + 1)
        guard body == length else {
            throw DecodeError(
                body < length ? "the answer is truncated (\(body) of \(length) bytes)" : "\(body - length) bytes after the answer")
        }
        return WireReader(bytes, from: newline + 1, stringBudget: maxBytes)
    }

    static func write(_ digest: FileDigest, into w: inout WireWriter) {
        w.count(digest.size)
        w.uint(digest.hash)
    }

    static func decodeDigest(_ r: inout WireReader) throws(JobWire.DecodeError) -> FileDigest {
        let size = try r.uint("file size")
        guard size <= UInt64(Int32.max) else { throw JobWire.DecodeError("file size: \(size) is out of range") }
        return FileDigest(size: Int(size), hash: try r.uint("file hash"))
    }

    static func write(_ queries: [EnvironmentQuery], into w: inout WireWriter) {
        w.count(queries.count)
        for q in queries {
            w.choice(q.kind)
            w.string(q.name)
            w.bool(q.answer)
        }
    }

    static func decodeQueries(_ r: inout WireReader) throws(JobWire.DecodeError) -> [EnvironmentQuery] {
        var queries: [EnvironmentQuery] = []
        for _ in 0..<(try r.count("queries")) {
            queries.append(EnvironmentQuery(try r.choice("query"), try r.string("query"), answer: try r.bool("query")))
        }
        return queries
    }

    static func write(_ d: Diagnostic, into w: inout WireWriter) {
        w.string(d.severity.rawValue)
        w.string(d.location.file)
        w.int(d.location.line)
        w.int(d.location.column)
        w.string(d.message)
        w.string(d.hint)
        // Version 4: the agent prints the source line under each diagnostic itself.
        w.bool(d.sourceMayHoldSecret)
    }

    static func decodeDiagnostic(_ r: inout WireReader) throws(JobWire.DecodeError) -> Diagnostic {
        var d = Diagnostic(
            try r.enumValue("severity"),
            at: SourceLocation(file: try r.string("file"), line: try r.smallInt("line"), column: try r.smallInt("column")),
            try r.string("message"), hint: try r.optionalString("hint"))
        d.sourceMayHoldSecret = try r.bool("sourceMayHoldSecret")
        return d
    }
}
