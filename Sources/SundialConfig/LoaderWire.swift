import OrderedCollections
import SundialCore

/// The loader child's answer to the agent: a validated job set, or positioned diagnostics.
///
/// The agent parses job files in a short-lived child process (OpenSSH's privilege-separation
/// pattern: untrusted input is parsed where a crash or a runaway allocation cannot hurt the
/// process that supervises jobs). This is the format of what comes back over the pipe:
///
///     SUNDIAL-LOADER 2 <length>\n<length bytes of binary body>
///
/// A versioned header, so an agent and a child from different builds (an upgrade in progress)
/// refuse each other instead of misreading; an exact length, so a truncated answer (a child
/// killed mid-write) is told from a complete one; and a bound the reader checks before it
/// allocates. The body is ``WireWriter``'s binary form (version 1 was JSON; why it changed is
/// there): a flag and the job set, the diagnostics, the number of diagnostics left out.
/// Decoding treats the bytes as untrusted: anything malformed is a ``DecodeError``.
public enum LoaderWire {
    public static let version = 2
    static let magic = "SUNDIAL-LOADER"
    /// The most diagnostics an answer carries; the agent logs at most 1,000 errors anyway.
    public static let maxDiagnostics = 1000

    public struct DecodeError: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
        init(_ d: String) { description = d }
    }

    /// Encodes a load's outcome. Sources are not sent: whoever prints excerpts reads the files.
    public static func encode(_ result: ConfigLoadResult) -> [UInt8] {
        let kept = result.diagnostics.prefix(maxDiagnostics)
        var w = WireWriter(capacity: 1024 + (result.jobSet?.jobs.count ?? 0) * 256)
        let set = result.isValid ? result.jobSet : nil
        w.bool(set != nil)
        if let set { JobWire.write(set, into: &w) }
        w.count(kept.count)
        for d in kept { write(d, into: &w) }
        w.int(result.diagnostics.count - kept.count)
        return Array("\(magic) \(version) \(w.bytes.count)\n".utf8) + w.bytes
    }

    /// Decodes an answer of at most `maxBytes` bytes (header included).
    public static func decode(_ bytes: [UInt8], maxBytes: Int) throws(DecodeError) -> ConfigLoadResult {
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
        do throws(JobWire.DecodeError) {
            var r = WireReader(bytes, from: newline + 1)
            let set = try r.bool("job set") ? try JobWire.decodeSet(&r) : nil
            let count = try r.count("diagnostics")
            guard count <= maxDiagnostics else { throw JobWire.DecodeError("more than \(maxDiagnostics) diagnostics") }
            var diagnostics: [Diagnostic] = []
            for _ in 0..<count { diagnostics.append(try decodeDiagnostic(&r)) }
            let omitted = try r.smallInt("omitted")
            guard r.isAtEnd else { throw JobWire.DecodeError("\(r.remaining) bytes after the diagnostics") }
            if omitted > 0, let first = diagnostics.first {
                diagnostics.append(Diagnostic(.note, at: first.location, "\(omitted) more problems not shown"))
            }
            if set != nil, diagnostics.contains(where: { $0.severity == .error }) {
                throw JobWire.DecodeError("a job set together with errors")
            }
            return ConfigLoadResult(jobSet: set, diagnostics: diagnostics)
        } catch {
            throw DecodeError(error.description)
        }
    }

    static func write(_ d: Diagnostic, into w: inout WireWriter) {
        w.string(d.severity.rawValue)
        w.string(d.location.file)
        w.int(d.location.line)
        w.int(d.location.column)
        w.string(d.message)
        w.string(d.hint)
    }

    static func decodeDiagnostic(_ r: inout WireReader) throws(JobWire.DecodeError) -> Diagnostic {
        Diagnostic(
            try r.enumValue("severity"),
            at: SourceLocation(file: try r.string("file"), line: try r.smallInt("line"), column: try r.smallInt("column")),
            try r.string("message"), hint: try r.optionalString("hint"))
    }
}
