import Foundation
import SundialCore
import SundialRuntime
import SundialTesting
import Synchronization
import Testing

/// Clients that connect and then trickle bytes must not lock anyone out of the control socket
/// (found by probing: 16 such clients kept `sundial status` refused indefinitely), and each is
/// closed when its one deadline passes, however often it sends a byte.
@Suite("Control socket: slow clients", .timeLimit(.minutes(1)), .offPool)
struct ControlSlowClientTests {
    @Test func aStatusRequestIsAnsweredWithin1sWhile64SlowClientsAreConnected() async throws {
        let f = try ControlSocketTests.Fixture()
        defer { f.stop() }
        let slow = try (0..<64).map { _ in try RawConnection(f.path) }
        defer { slow.forEach { $0.close() } }
        let trickler = Trickler(slow.map(\.fd), every: .milliseconds(200))
        defer { trickler.stop() }
        #expect(try await waitUntil { f.server.activeClients == 64 })

        let start = ContinuousClock.now
        let reply = try await ControlClient(path: f.path, timeout: .seconds(5)).response(to: .status)
        let elapsed = ContinuousClock.now - start
        #expect(reply.ok, "\(reply.error ?? "")")
        #expect(elapsed < .seconds(1), "status took \(elapsed) with 64 slow clients connected")
        #expect(trickler.sent > 0)
    }

    @Test func aTricklingClientIsClosedAtItsDeadlineNotKeptAliveByEachByte() async throws {
        var options = ControlServer.Options()
        options.requestTimeout = .milliseconds(500)
        let f = try ControlSocketTests.Fixture(options: options)
        defer { f.stop() }
        let c = try RawConnection(f.path)
        defer { c.close() }
        c.send("{\"v\":1,")
        // A byte every 100 ms: a per-read timeout of 500 ms would never fire.
        let trickler = Trickler([c.fd], every: .milliseconds(100))
        defer { trickler.stop() }
        let start = ContinuousClock.now
        let closed = await offPool { waitForEOF(c.fd, within: .seconds(5)) }
        #expect(closed, "the server kept a trickling client for 5 s")
        #expect(ContinuousClock.now - start < .seconds(3))
        #expect(try await waitUntil { f.server.activeClients == 0 })
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        let f = try ControlSocketTests.Fixture()
        defer { f.stop() }
        let c = try RawConnection(f.path)
        defer { c.close() }
        c.send("{\"v\":1,\"op\":\"trigger\",\"job\":\"backup\"}\n{\"v\":1,\"op\":\"dance\"}\n{\"v\":1,\"op\":\"reload\"}\n")
        #expect((await offPool { c.readLine() })?.contains("\"result\":\"started\"") == true)
        #expect((await offPool { c.readLine() })?.contains("unknown op \\\"dance\\\"") == true)
        #expect((await offPool { c.readLine() })?.contains("\"changed\":[\"backup\"]") == true)
    }

    @Test func noThreadPerConnectionAndStopClosesEveryConnection() async throws {
        let before = threadNames().filter { $0 == "sundial-client" }.count
        let f = try ControlSocketTests.Fixture()
        let conns = try (0..<8).map { _ in try RawConnection(f.path) }
        defer { conns.forEach { $0.close() } }
        #expect(try await waitUntil { f.server.activeClients == 8 })
        // No thread per connection (the old design started one for each).
        #expect(threadNames().filter { $0 == "sundial-client" }.count == before)
        f.stop()
        #expect(f.server.activeClients == 0)
        // Stopped: every connection was closed.
        for c in conns { #expect(await offPool { waitForEOF(c.fd, within: .seconds(5)) }) }
    }
}

/// Sends one space to each of `fds` every `interval` on a thread of its own until stopped
/// (bounded: it gives up after 30 s whatever happens).
final class Trickler: Sendable {
    private let stopped = Atomic<Bool>(false)
    private let count = Atomic<Int>(0)
    var sent: Int { count.load(ordering: .relaxed) }

    init(_ fds: [Int32], every interval: Duration) {
        let micros = useconds_t(interval.components.seconds * 1_000_000 + interval.components.attoseconds / 1_000_000_000_000)
        Thread.detachNewThread { [self] in
            let end = ContinuousClock.now + .seconds(30)
            while !stopped.load(ordering: .relaxed), ContinuousClock.now < end {
                var b = UInt8(ascii: " ")
                for fd in fds where send(fd, &b, 1, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) == 1 {
                    count.add(1, ordering: .relaxed)
                }
                usleep(micros)
            }
        }
    }

    func stop() { stopped.store(true, ordering: .relaxed) }
}

/// Reads (discarding) until the peer closes `fd`; false if it is still open after `within`.
func waitForEOF(_ fd: Int32, within: Duration) -> Bool {
    let deadline = ContinuousClock.now + within
    var buffer = [UInt8](repeating: 0, count: 4096)
    while ContinuousClock.now < deadline {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 50) > 0 else { continue }
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) { return true }
    }
    return false
}
