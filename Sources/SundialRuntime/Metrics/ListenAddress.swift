import Glibc

/// A TCP address to listen on, parsed from `--metrics-listen` (`127.0.0.1:9464`,
/// `[::1]:9464`, `localhost:9464`).
///
/// Only literal addresses and `localhost` are accepted: resolving names would make start-up
/// depend on DNS, and the point is to bind exactly where the operator said.
public struct ListenAddress: Hashable, Sendable, CustomStringConvertible {
    public enum Family: Hashable, Sendable { case ipv4, ipv6 }

    public var family: Family
    /// The address in network byte order (4 or 16 bytes).
    public var bytes: [UInt8]
    public var port: UInt16

    public struct ParseError: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Parses `HOST:PORT`.
    /// - Parameter allowNonLoopback: without it, an address outside 127.0.0.0/8 and ::1 is
    ///   refused: the endpoint has no authentication and no TLS, so exposing it is a decision,
    ///   not a default.
    public init(parsing text: String, allowNonLoopback: Bool = false) throws(ParseError) {
        guard let colon = text.lastIndex(of: ":") else {
            throw ParseError(description: "'\(text)' is not HOST:PORT (e.g. 127.0.0.1:9464)")
        }
        var host = String(text[..<colon])
        let portText = String(text[text.index(after: colon)...])
        guard let port = UInt16(portText) else { throw ParseError(description: "'\(portText)' is not a port number (0-65535)") }
        self.port = port
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host == "localhost" { host = "127.0.0.1" }
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            family = .ipv4
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
        } else if inet_pton(AF_INET6, host, &v6) == 1 {
            family = .ipv6
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            throw ParseError(description: "'\(host)' is not an IPv4 or IPv6 address (host names other than localhost are not resolved)")
        }
        if !allowNonLoopback && !isLoopback {
            throw ParseError(
                description:
                    "\(text) is not a loopback address; the metrics endpoint has no authentication. Listen on 127.0.0.1 or ::1, or allow other addresses explicitly (--metrics-listen-any)"
            )
        }
    }

    private init(family: Family, bytes: [UInt8], port: UInt16) {
        self.family = family
        self.bytes = bytes
        self.port = port
    }

    /// 127.0.0.0/8, ::1, or ::ffff:127.0.0.0/104.
    public var isLoopback: Bool {
        switch family {
        case .ipv4: return bytes[0] == 127
        case .ipv6:
            if bytes == Array(repeating: 0, count: 15) + [1] { return true }
            return isIPv4Mapped && bytes[12] == 127
        }
    }

    /// An IPv6 address in `::ffff:0:0/96`, which stands for the IPv4 address in its last 4 bytes.
    public var isIPv4Mapped: Bool {
        family == .ipv6 && bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
    }

    /// The address to bind: an IPv4-mapped address (`[::ffff:127.0.0.1]:9464`) as the IPv4
    /// address it stands for, anything else as it is.
    ///
    /// Why: an IPv6 socket cannot bind a mapped address while it is v6-only (the server's
    /// setting, so `::1` never also means an IPv4 address), which made the agent fail to start
    /// after the address had passed the loopback check; and a dual-stack socket would need IPv6
    /// enabled on the box. The kernel carries connections to a mapped address over IPv4, so an
    /// IPv4 socket on the mapped address receives exactly the clients the operator meant.
    public var bindAddress: ListenAddress {
        guard isIPv4Mapped else { return self }
        return ListenAddress(family: .ipv4, bytes: Array(bytes[12..<16]), port: port)
    }

    public var description: String {
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let af = family == .ipv4 ? AF_INET : AF_INET6
        _ = bytes.withUnsafeBytes { inet_ntop(af, $0.baseAddress, &buf, socklen_t(buf.count)) }
        let host = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return family == .ipv4 ? "\(host):\(port)" : "[\(host)]:\(port)"
    }
}
