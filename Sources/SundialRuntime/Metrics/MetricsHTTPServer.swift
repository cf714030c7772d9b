import CSundialShim
import Glibc
import SundialCore

/// A deliberately tiny HTTP/1.1 server for `GET /metrics` on a loopback address.
///
/// Hand-written on sockets rather than SwiftNIO or Hummingbird: those would add minutes of
/// build time and megabytes of binary to an agent that answers one scrape every 15 seconds on
/// an edge box. What it does, and no more:
/// - `GET /metrics` (and `HEAD`) → 200 with the exposition; other paths → 404; other methods
///   → 405; a malformed request → 400; a request head over ``maxRequestBytes`` → 431.
/// - One connection at a time, `Connection: close` on every response; a client gets
///   ``ioTimeoutMillis`` in total to send its request and receive the answer, so a stalled
///   client delays a scrape by at most that, and connections beyond the listen backlog
///   (``backlog``) wait in or are refused by the kernel. Memory is bounded by
///   ``maxRequestBytes`` plus one response.
/// It runs on the metrics exporter's thread, never on Swift's cooperative pool (its calls block).
public final class MetricsHTTPServer {
    public static let maxRequestBytes = 8192
    public static let ioTimeoutMillis: Int32 = 2000
    public static let backlog: Int32 = 16

    public let address: ListenAddress
    /// The listening socket.
    public let fd: Int32
    /// The bound port (the requested one, or the kernel's choice when 0 was asked).
    public let port: UInt16

    public struct StartError: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Binds and listens.
    /// - Throws: `StartError` when the socket cannot be created, bound (address in use, not
    ///   local) or listened on.
    public init(address: ListenAddress) throws(StartError) {
        self.address = address
        let af = address.family == .ipv4 ? AF_INET : AF_INET6
        let fd = socket(af, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw StartError(description: "cannot create a socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var rc: Int32
        switch address.family {
        case .ipv4:
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = address.port.bigEndian
            withUnsafeMutableBytes(of: &sa.sin_addr) { $0.copyBytes(from: address.bytes) }
            rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        case .ipv6:
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = address.port.bigEndian
            withUnsafeMutableBytes(of: &sa.sin6_addr) { $0.copyBytes(from: address.bytes) }
            rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw StartError(description: "cannot listen on \(address): \(String(cString: strerror(e)))")
        }
        guard listen(fd, Self.backlog) == 0 else {
            let e = errno
            close(fd)
            throw StartError(description: "cannot listen on \(address): \(String(cString: strerror(e)))")
        }
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        let port: UInt16 = withUnsafeBytes(of: &storage) { raw in
            // sin_port and sin6_port both sit at offset 2, in network byte order.
            UInt16(raw[2]) << 8 | UInt16(raw[3])
        }
        self.fd = fd
        self.port = port
    }

    deinit { close(fd) }

    /// Accepts and answers the connections waiting now, at most `limit` of them.
    /// - Parameter render: produces the exposition; called once per `GET /metrics`.
    public func acceptPending(limit: Int = 8, render: () -> String) {
        for _ in 0..<limit {
            let c = sundial_accept_nonblocking(fd)
            if c < 0 { return } // EAGAIN: nothing waiting; other errors: try again on the next poll
            serve(c, render: render)
            close(c)
        }
    }

    // MARK: - One connection

    private func serve(_ c: Int32, render: () -> String) {
        let deadline = Self.monotonicMillis() + Int64(Self.ioTimeoutMillis)
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 2048)
        var head: HTTPRequestHead.ParseResult = .incomplete
        while case .incomplete = head {
            guard Self.wait(c, events: Int16(POLLIN), until: deadline) else { return }
            let n = chunk.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
            if n < 0 { if errno == EINTR || errno == EAGAIN { continue } else { return } }
            if n == 0 { return }
            buffer += chunk[0..<n]
            head = HTTPRequestHead.parse(buffer, limit: Self.maxRequestBytes)
        }
        let response: [UInt8]
        switch head {
        case .incomplete: return
        case let .invalid(status, reason): response = Self.response(status: status, reason: reason, body: reason + "\n", head: false)
        case let .request(method, target):
            let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? target
            if method != "GET" && method != "HEAD" {
                response = Self.response(status: 405, reason: "Method Not Allowed", body: "only GET and HEAD\n", head: false, extra: "Allow: GET, HEAD\r\n")
            } else if path != "/metrics" {
                response = Self.response(status: 404, reason: "Not Found", body: "metrics are at /metrics\n", head: method == "HEAD")
            } else {
                response = Self.response(status: 200, reason: "OK", body: render(), head: method == "HEAD", contentType: PrometheusText.contentType)
            }
        }
        var offset = 0
        while offset < response.count {
            guard Self.wait(c, events: Int16(POLLOUT), until: deadline) else { return }
            let n = response.withUnsafeBytes { send(c, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 { if errno == EINTR || errno == EAGAIN { continue } else { return } }
            offset += n
        }
        shutdown(c, Int32(SHUT_WR))
    }

    static func response(status: Int, reason: String, body: String, head: Bool,
                         contentType: String = "text/plain; charset=utf-8", extra: String = "") -> [UInt8] {
        let bodyBytes = Array(body.utf8)
        var text = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(bodyBytes.count)\r\n"
        text += extra + "Connection: close\r\nCache-Control: no-store\r\n\r\n"
        return Array(text.utf8) + (head ? [] : bodyBytes)
    }

    /// Waits until `fd` is ready for `events` or the deadline passes (false then).
    static func wait(_ fd: Int32, events: Int16, until deadline: Int64) -> Bool {
        while true {
            let left = deadline - monotonicMillis()
            guard left > 0 else { return false }
            var p = pollfd(fd: fd, events: events, revents: 0)
            let rc = poll(&p, 1, Int32(min(left, 60_000)))
            if rc > 0 { return true }
            if rc < 0 && errno != EINTR { return false }
        }
    }

    static func monotonicMillis() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

/// The request line of an HTTP/1.x request, parsed once the head (up to the blank line) has
/// arrived. Headers are read past but not interpreted: `/metrics` needs none of them.
public enum HTTPRequestHead {
    public enum ParseResult: Equatable, Sendable {
        case incomplete
        case request(method: String, target: String)
        case invalid(status: Int, reason: String)
    }

    public static func parse(_ bytes: [UInt8], limit: Int) -> ParseResult {
        guard let end = headEnd(bytes) else {
            return bytes.count >= limit ? .invalid(status: 431, reason: "Request Header Fields Too Large") : .incomplete
        }
        guard end <= limit else { return .invalid(status: 431, reason: "Request Header Fields Too Large") }
        let lineEnd = bytes.firstIndex(of: 0x0A) ?? end
        var line = bytes[..<lineEnd]
        if line.last == 0x0D { line = line.dropLast() }
        let parts = line.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3,
              let method = String(validating: parts[0], as: UTF8.self), !method.isEmpty,
              method.utf8.allSatisfy({ $0 >= 0x41 && $0 <= 0x5A }),
              let target = String(validating: parts[1], as: UTF8.self), target.hasPrefix("/"),
              let version = String(validating: parts[2], as: UTF8.self), version == "HTTP/1.1" || version == "HTTP/1.0"
        else { return .invalid(status: 400, reason: "Bad Request") }
        return .request(method: method, target: target)
    }

    /// Index just past the `\r\n\r\n` (or bare `\n\n`) ending the head.
    static func headEnd(_ b: [UInt8]) -> Int? {
        var i = 0
        while i < b.count {
            if b[i] == 0x0A {
                if i + 1 < b.count, b[i + 1] == 0x0A { return i + 2 }
                if i + 2 < b.count, b[i + 1] == 0x0D, b[i + 2] == 0x0A { return i + 3 }
            }
            i += 1
        }
        return nil
    }
}
