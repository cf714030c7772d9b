import CSundialShim
import Foundation
import Glibc
import SundialCore
import SundialTesting
import Testing

@testable import SundialRuntime

/// Idle or trickling TCP clients must not delay a scrape (found by probing: five idle
/// connections made a scrape take 9–10 s, fifty made it time out), and an IPv4-mapped loopback
/// address must work (it passed the loopback check, then failed to bind).
///
/// The blocking socket calls run off Swift's cooperative pool (``offPool(_:)``): tests run in
/// parallel, and a pool thread blocked here would delay other suites' async work.
@Suite("Metrics endpoint: slow clients", .timeLimit(.minutes(1)), .offPool)
struct MetricsSlowClientTests {
    @Test func aScrapeIsAnsweredWithin1sWhile64IdleConnectionsAreOpen() async throws {
        let exporter = try MetricsExporter(filePath: nil, listen: "127.0.0.1:0", version: "1")
        try exporter.start()
        defer { exporter.stop() }
        let port = try #require(exporter.port)
        let idle = try (0..<64).map { _ in try TCPConnection(port: port) }
        defer { idle.forEach { $0.close() } }

        let (answer, elapsed) = try await offPoolResult { () throws -> (String, Duration) in
            let start = ContinuousClock.now
            let answer = try TCPConnection(port: port).exchange("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            return (answer, ContinuousClock.now - start)
        }.get()
        #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(elapsed < .seconds(1), "the scrape took \(elapsed) with 64 idle connections open")
    }

    @Test func whenFullTheOldestIdleConnectionMakesRoomForAScrape() async throws {
        let exporter = try MetricsExporter(filePath: nil, listen: "127.0.0.1:0", version: "1")
        try exporter.start()
        defer { exporter.stop() }
        let port = try #require(exporter.port)
        var idle: [TCPConnection] = []
        defer { idle.forEach { $0.close() } }
        for _ in 0..<(MetricsHTTPServer.maxConnections + 8) { idle.append(try TCPConnection(port: port)) }
        let first = idle[0]
        let answer = try await offPoolResult { try TCPConnection(port: port).exchange("GET /metrics HTTP/1.1\r\n\r\n") }.get()
        #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"))
        // The first ones in were turned out with a 503.
        #expect(try await offPoolResult { try first.readAll() }.get().hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"))
    }

    @Test func aTricklingClientIsClosedAtItsDeadlineNotKeptAliveByEachByte() async throws {
        let exporter = try MetricsExporter(filePath: nil, listen: "127.0.0.1:0", version: "1")
        try exporter.start()
        defer { exporter.stop() }
        let c = try TCPConnection(port: try #require(exporter.port))
        defer { c.close() }
        c.send("GET /metrics HTTP/1.1\r\n")
        let trickler = Trickler([c.fd], every: .milliseconds(100))  // a header that never ends
        defer { trickler.stop() }
        let start = ContinuousClock.now
        let fd = c.fd
        #expect(await offPool { waitForEOF(fd, within: .seconds(10)) }, "the server kept a trickling client for 10 s")
        let elapsed = ContinuousClock.now - start
        #expect(elapsed < .milliseconds(MetricsHTTPServer.requestTimeoutMillis + 2000), "closed after \(elapsed)")
        #expect(trickler.sent > 0)
    }

    @Test func anIPv4MappedLoopbackAddressIsServed() async throws {
        let address = try ListenAddress(parsing: "[::ffff:127.0.0.1]:9464")
        #expect(address.isLoopback && address.isIPv4Mapped)
        #expect(address.description == "[::ffff:127.0.0.1]:9464")
        #expect(address.bindAddress.description == "127.0.0.1:9464")
        #expect(try ListenAddress(parsing: "[::1]:9464").bindAddress.description == "[::1]:9464")

        let exporter = try MetricsExporter(filePath: nil, listen: "[::ffff:127.0.0.1]:0", version: "1")
        try exporter.start()
        defer { exporter.stop() }
        let port = try #require(exporter.port)
        let v4 = try await offPoolResult { try TCPConnection(port: port).exchange("GET /metrics HTTP/1.1\r\n\r\n") }.get()
        #expect(v4.hasPrefix("HTTP/1.1 200 OK\r\n"))
        // The address as the operator wrote it, from a dual-stack IPv6 client (where IPv6 exists).
        if let v6 = try? TCPConnection(port: port, mappedIPv6: true) {
            #expect(try await offPoolResult { try v6.exchange("GET /metrics HTTP/1.1\r\n\r\n") }.get().hasPrefix("HTTP/1.1 200 OK\r\n"))
        }
    }
}

/// A blocking TCP client to 127.0.0.1 (or `::ffff:127.0.0.1`) with 5 s send/receive timeouts, so
/// a broken server fails the test instead of hanging it.
struct TCPConnection: Sendable {
    let fd: Int32

    init(port: UInt16, mappedIPv6: Bool = false) throws {
        fd = socket(mappedIPv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc: Int32
        if mappedIPv6 {
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = port.bigEndian
            _ = inet_pton(AF_INET6, "::ffff:127.0.0.1", &sa.sin6_addr)
            rc = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        } else {
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = port.bigEndian
            sa.sin_addr.s_addr = inet_addr("127.0.0.1")
            rc = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        guard rc == 0 else {
            let e = errno
            Glibc.close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: e) ?? .EIO)
        }
    }

    func send(_ text: String) { _ = Array(text.utf8).withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }

    /// Everything until the server closes (throws on a receive timeout or error).
    func readAll() throws -> String {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            if n == 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Sends `request`, reads the whole response, closes.
    func exchange(_ request: String) throws -> String {
        defer { close() }
        send(request)
        return try readAll()
    }

    func close() { _ = Glibc.close(fd) }
}

/// ``offPool(_:)`` for throwing socket code: the error comes back in the result.
func offPoolResult<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async -> Result<T, any Error> {
    await offPool { () -> Result<T, any Error> in Result { try body() } }
}
