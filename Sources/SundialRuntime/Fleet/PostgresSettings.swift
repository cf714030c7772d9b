#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How a box reaches the fleet's PostgreSQL (`--fleet URL`, `--fleet-password-file`, timeouts).
///
/// The password never leaves this value except towards libpq: ``masked(_:)`` replaces it (as
/// written in the URL, percent-decoded, or read from the file) by `***` in any text, and every
/// log line and error the fleet code produces passes through it (docs/fleet-database.md).
public struct PostgresSettings: Sendable {
    /// A libpq connection string: `postgresql://user[:password]@host[:port]/db?...` or
    /// `host=... dbname=...`.
    public var url: String
    /// The password from `--fleet-password-file`, given to libpq as its own keyword so that it is
    /// never part of a string that could be printed.
    public var password: String?
    /// libpq's `connect_timeout` (whole seconds, at least 2 as libpq requires).
    public var connectTimeoutSeconds: Int = 5
    /// The server aborts a statement after this long (`statement_timeout`), so a lock wait or a
    /// slow server cannot hold the fleet worker.
    public var statementTimeoutMs: Int64 = 5_000
    /// libpq's `tcp_user_timeout`: a connection whose peer vanished (a cut network, not a
    /// refused connection) fails after this long instead of the kernel's ~15 minutes.
    public var tcpUserTimeoutMs: Int64 = 10_000
    /// `application_name`, shown in `pg_stat_activity`.
    public var applicationName: String = "sundial"

    public init(url: String, password: String? = nil) {
        self.url = url
        self.password = password
    }

    /// Reads a password file: its first line, without the line end. Read once, at start.
    public static func readPasswordFile(_ path: String) throws(FleetSettingsError) -> String {
        // O_NONBLOCK and a regular file only: a FIFO put there must not hang the agent's start.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { throw FleetSettingsError("cannot read the password file \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw FleetSettingsError("cannot read the password file \(path): not a regular file")
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count <= 64 * 1024 {
            let n = read(fd, &buffer, buffer.count)
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { throw FleetSettingsError("cannot read the password file \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        guard bytes.count <= 64 * 1024 else { throw FleetSettingsError("the password file \(path) is larger than 64 KiB: is it the right file?") }
        let line = bytes.split(separator: UInt8(ascii: "\n"), maxSplits: 1, omittingEmptySubsequences: false).first ?? []
        var text = String(decoding: line, as: UTF8.self)
        if text.hasSuffix("\r") { text.removeLast() }
        guard !text.isEmpty else { throw FleetSettingsError("the password file \(path) is empty (its first line is the password)") }
        return text
    }

    /// Every form of the password that could appear in a text: the file's, the URL's as written
    /// and percent-decoded, a `password=` keyword's (URL query or key/value form).
    var secrets: [String] {
        var out: [String] = []
        if let password { out.append(password) }
        for raw in Self.passwordsIn(url) {
            out.append(raw)
            if let decoded = Self.percentDecoded(raw), decoded != raw { out.append(decoded) }
        }
        // Longest first, so that a password containing another one is masked whole.
        return out.filter { !$0.isEmpty }.sorted { $0.count > $1.count }
    }

    /// `text` with every form of the password replaced by `***`.
    public func masked(_ text: String) -> String {
        var text = text
        for secret in secrets { text = Self.replacing(secret, with: "***", in: text) }
        return text
    }

    /// The URL as it may be logged.
    public var maskedURL: String { masked(url) }

    static func passwordsIn(_ url: String) -> [String] {
        var found: [String] = []
        let u = Substring(url)
        if let scheme = u.firstRange(of: "://"), u.hasPrefix("postgres") {
            let rest = u[scheme.upperBound...]
            let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
            let authority = rest[..<authorityEnd]
            if let at = authority.lastIndex(of: "@") {
                let userinfo = authority[..<at]
                if let colon = userinfo.firstIndex(of: ":") { found.append(String(userinfo[userinfo.index(after: colon)...])) }
            }
            if let q = rest.firstIndex(of: "?") {
                for pair in rest[rest.index(after: q)...].split(separator: "&") where pair.hasPrefix("password=") {
                    found.append(String(pair.dropFirst("password=".count)))
                }
            }
        } else {
            // key=value form: password=secret or password='se cret' (with \' and \\ escapes).
            var i = u.startIndex
            while let r = u[i...].firstRange(of: "password") {
                var j = r.upperBound
                while j < u.endIndex, u[j] == " " { j = u.index(after: j) }
                guard j < u.endIndex, u[j] == "=" else {
                    i = r.upperBound
                    continue
                }
                j = u.index(after: j)
                while j < u.endIndex, u[j] == " " { j = u.index(after: j) }
                var value = ""
                if j < u.endIndex, u[j] == "'" {
                    j = u.index(after: j)
                    var raw = ""
                    while j < u.endIndex, u[j] != "'" {
                        if u[j] == "\\", u.index(after: j) < u.endIndex {
                            raw.append(u[j])
                            j = u.index(after: j)
                        }
                        raw.append(u[j])
                        value.append(u[j])
                        j = u.index(after: j)
                    }
                    found.append(raw)
                } else {
                    while j < u.endIndex, u[j] != " " {
                        value.append(u[j])
                        j = u.index(after: j)
                    }
                }
                found.append(value)
                i = j
            }
        }
        return found
    }

    static func percentDecoded(_ s: String) -> String? {
        var out: [UInt8] = []
        var bytes = Array(s.utf8)[...]
        while let b = bytes.popFirst() {
            if b == UInt8(ascii: "%") {
                guard bytes.count >= 2, let v = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16) else { return nil }
                out.append(v)
                bytes = bytes.dropFirst(2)
            } else {
                out.append(b)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    static func replacing(_ needle: String, with replacement: String, in text: String) -> String {
        guard !needle.isEmpty, text.contains(needle) else { return text }
        var result = ""
        var rest = Substring(text)
        while let r = rest.firstRange(of: needle) {
            result += rest[..<r.lowerBound]
            result += replacement
            rest = rest[r.upperBound...]
        }
        result += rest
        return result
    }
}

/// A bad fleet setting (a flag's value, the password file), with what to change.
public struct FleetSettingsError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
