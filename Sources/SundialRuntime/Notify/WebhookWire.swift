import SundialCore

/// What the agent and its webhook child (`sundial internal-webhook`) say to each other: the
/// request on the child's standard input, one answer line on its standard output.
///
/// The request is NUL-separated text fields and then the body, so that no header value or
/// URL needs escaping (validation refuses line breaks, and neither holds a NUL): a version
/// tag, the URL, the `ca_file` (empty: the system store), libcurl's timeout in milliseconds,
/// the number of header lines, the header lines, then the body to the end.
///
/// Both ends are the same binary (`/proc/self/exe`), so the version tag only catches a
/// foreign program standing in for the child.
public enum WebhookWire {
    static let tag = "sundial-webhook 1"
    /// A request larger than this is refused before a child is started (the body is a few
    /// hundred bytes of JSON, headers at most 32).
    public static let maxRequestBytes = 1 << 20
    /// The longest answer line read from the child.
    public static let maxAnswerBytes = 4096

    public struct Request: Hashable, Sendable {
        public var url: String
        public var caFile: String?
        public var timeoutMs: Int64
        public var headers: [String]
        public var body: [UInt8]

        public init(url: String, caFile: String?, timeoutMs: Int64, headers: [String], body: [UInt8]) {
            self.url = url
            self.caFile = caFile
            self.timeoutMs = timeoutMs
            self.headers = headers
            self.body = body
        }
    }

    /// The child's answer.
    public enum Answer: Hashable, Sendable {
        /// The server answered with this HTTP status.
        case status(Int)
        /// No answer: libcurl's reason (resolve, connect, TLS verification, timeout).
        case failed(String)
        /// libcurl could not be loaded (dlerror's text).
        case noLibrary(String)
    }

    public struct DecodeError: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
        init(_ d: String) { description = d }
    }

    public static func encode(_ r: Request) -> [UInt8] {
        var out: [UInt8] = []
        for field in [tag, r.url, r.caFile ?? "", String(r.timeoutMs), String(r.headers.count)] + r.headers {
            out += field.utf8
            out.append(0)
        }
        return out + r.body
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> Request {
        guard bytes.count <= maxRequestBytes else { throw DecodeError("the request is larger than \(maxRequestBytes) bytes") }
        var cursor = 0
        func field(_ what: String) throws(DecodeError) -> String {
            guard let end = bytes[cursor...].firstIndex(of: 0) else { throw DecodeError("the request ends before its \(what)") }
            defer { cursor = end + 1 }
            return String(decoding: bytes[cursor..<end], as: UTF8.self)
        }
        guard try field("version") == tag else { throw DecodeError("not a \(tag) request") }
        let url = try field("url")
        let caFile = try field("ca_file")
        guard let timeout = Int64(try field("timeout")), timeout > 0 else { throw DecodeError("the timeout is not a positive number") }
        guard let count = Int(try field("header count")), (0...256).contains(count) else { throw DecodeError("the header count is out of range") }
        var headers: [String] = []
        for i in 0..<count { headers.append(try field("header \(i + 1)")) }
        return Request(url: url, caFile: caFile.isEmpty ? nil : caFile, timeoutMs: timeout, headers: headers, body: Array(bytes[cursor...]))
    }

    /// One line: `status 204`, `failed <reason>` or `nolib <reason>`, control characters made
    /// `?` so that a reason quoting the server cannot forge a second line.
    public static func encode(_ a: Answer) -> [UInt8] {
        let line: String
        switch a {
        case let .status(code): line = "status \(code)"
        case let .failed(reason): line = "failed " + printable(reason)
        case let .noLibrary(reason): line = "nolib " + printable(reason)
        }
        return Array(line.utf8.prefix(maxAnswerBytes - 1)) + [0x0A]
    }

    public static func decode(answer bytes: [UInt8]) throws(DecodeError) -> Answer {
        guard let end = bytes.firstIndex(of: 0x0A) else { throw DecodeError(bytes.isEmpty ? "no answer" : "an unfinished answer") }
        let line = String(decoding: bytes[..<end], as: UTF8.self)
        let (word, rest) = line.firstIndex(of: " ").map { (line[..<$0], String(line[line.index(after: $0)...])) } ?? (line[...], "")
        switch word {
        case "status":
            guard let code = Int(rest), (100...999).contains(code) else { throw DecodeError("a bad status `\(printable(rest))`") }
            return .status(code)
        case "failed": return .failed(rest)
        case "nolib": return .noLibrary(rest)
        default: throw DecodeError("an unknown answer `\(printable(String(line.prefix(80))))`")
        }
    }

    static func printable(_ s: String) -> String {
        String(s.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : Character($0) })
    }
}
