import OrderedCollections
import SundialCore

/// The loader child's answer to the agent: a validated job set, or positioned diagnostics.
///
/// The agent parses job files in a short-lived child process (OpenSSH's privilege-separation
/// pattern: untrusted input is parsed where a crash or a runaway allocation cannot hurt the
/// process that supervises jobs). This is the format of what comes back over the pipe:
///
///     SUNDIAL-LOADER 1 <length>\n<length bytes of JSON>
///
/// A versioned header, so an agent and a child from different builds (an upgrade in progress)
/// refuse each other instead of misreading; an exact length, so a truncated answer (a child
/// killed mid-write) is told from a complete one; and a bound the reader checks before it
/// allocates. Decoding treats the bytes as untrusted: anything malformed is a ``DecodeError``.
public enum LoaderWire {
    public static let version = 1
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
        // Written straight to bytes (``JSONWriter``): the same JSON as encoding the tree
        // `{"job_set", "diagnostics", "omitted"}`, at a fraction of the cost for a large set.
        var w = JSONWriter(capacity: 1024 + (result.jobSet?.jobs.count ?? 0) * 1024)
        w.beginObject()
        w.key("job_set")
        if result.isValid, let set = result.jobSet { JobWire.write(set, into: &w) } else { w.null() }
        w.key("diagnostics")
        w.value(.array(kept.map(encode)))
        w.key("omitted")
        w.int(Int64(result.diagnostics.count - kept.count))
        w.endObject()
        let json = w.bytes
        return Array("\(magic) \(version) \(json.count)\n".utf8) + json
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
        let body = bytes[(newline + 1)...]
        guard body.count == length else {
            throw DecodeError(
                body.count < length
                    ? "the answer is truncated (\(body.count) of \(length) bytes)"
                    : "\(body.count - length) bytes after the answer")
        }
        let json: JSONValue
        do { json = try JSONParser.parse(Array(body)) } catch { throw DecodeError("invalid JSON: \(error)") }
        do throws(JobWire.DecodeError) {
            let o = try JobWire.object(json, "answer")
            var diagnostics = try JobWire.array(o["diagnostics"], "diagnostics").map { v throws(JobWire.DecodeError) in try decodeDiagnostic(v) }
            guard diagnostics.count <= maxDiagnostics else { throw JobWire.DecodeError("more than \(maxDiagnostics) diagnostics") }
            let omitted = try JobWire.smallInt(o["omitted"], "omitted")
            if omitted > 0, let first = diagnostics.first {
                diagnostics.append(Diagnostic(.note, at: first.location, "\(omitted) more problems not shown"))
            }
            var set: JobSet?
            if let s = o["job_set"], s != .null {
                set = try JobWire.decodeSet(s)
                guard !diagnostics.contains(where: { $0.severity == .error }) else {
                    throw JobWire.DecodeError("a job set together with errors")
                }
            }
            return ConfigLoadResult(jobSet: set, diagnostics: diagnostics)
        } catch {
            throw DecodeError(error.description)
        }
    }

    static func encode(_ d: Diagnostic) -> JSONValue {
        [
            "severity": .string(d.severity.rawValue), "file": .string(d.location.file),
            "line": .int(Int64(d.location.line)), "column": .int(Int64(d.location.column)),
            "message": .string(d.message), "hint": d.hint.map(JSONValue.string) ?? .null,
        ]
    }

    static func decodeDiagnostic(_ v: JSONValue) throws(JobWire.DecodeError) -> Diagnostic {
        let o = try JobWire.object(v, "diagnostic")
        return Diagnostic(
            try JobWire.enumValue(o["severity"], "severity"),
            at: SourceLocation(
                file: try JobWire.string(o["file"], "file"), line: try JobWire.smallInt(o["line"], "line"),
                column: try JobWire.smallInt(o["column"], "column")),
            try JobWire.string(o["message"], "message"), hint: try JobWire.optionalString(o["hint"], "hint"))
    }
}
