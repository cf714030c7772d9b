import Foundation
import SundialCore
import SundialRuntime
import SundialTesting
import Testing

/// `logs` replies are megabytes (a run keeps up to 16 MiB of output, each control byte six in
/// JSON). A probe with 128 clients asking `logs` at once stalled the agent for 22 s (a 1 s job
/// missed 21 fires, `status` timed out) and took 1 GB: every reply was read and encoded at
/// once, encoded on the loop thread, and held until each client's write deadline.
@Suite("Control socket: large replies", .timeLimit(.minutes(1)), .offPool)
struct ControlLargeReplyTests {
    static func logs(_ job: String) -> String { "{\"v\":1,\"op\":\"logs\",\"job\":\"\(job)\"}\n" }

    @Test func logsRequestsAreAnsweredOneAtATime() async throws {
        let handler = FakeControlHandler(replies: ["logs": .success(["lines": "x"]), "status": .success()], delay: .milliseconds(100))
        let f = try ControlSocketTests.Fixture(handler: handler)
        defer { f.stop() }
        let clients = try (0..<4).map { _ in try RawConnection(f.path) }
        defer { clients.forEach { $0.close() } }
        for c in clients { c.send(Self.logs("a")) }
        for c in clients {
            let line = await offPool { c.readLine() }
            #expect(line?.contains("\"ok\":true") == true, "\(line ?? "no reply")")
        }
        #expect(handler.mostAtOnce("logs") == 1)
        // Requests with bounded replies are not queued behind them.
        for c in clients { c.send(Self.logs("a")) }
        let status = try await f.client.response(to: .status)
        #expect(status.ok)
        #expect(handler.mostAtOnce("status") == 2, "status waited for the logs requests")
        for c in clients { _ = await offPool { c.readLine() } }
    }

    /// Waiters keep their request slots until their turn: a burst of `logs` held all 128 and
    /// turned `status` away. At most 8 wait; more are refused at once.
    @Test func fewLogsRequestsMayWait() async throws {
        let handler = FakeControlHandler(replies: ["logs": .success(["lines": "x"]), "status": .success()], delay: .milliseconds(300))
        let f = try ControlSocketTests.Fixture(handler: handler)
        defer { f.stop() }
        let clients = try (0..<12).map { _ in try RawConnection(f.path) }
        defer { clients.forEach { $0.close() } }
        for c in clients { c.send(Self.logs("a")) }
        var busy = 0
        var served = 0
        for c in clients {
            let line = await offPool { c.readLine() } ?? ""
            if line.contains("the agent is busy answering 8 other") { busy += 1 } else if line.contains("\"ok\":true") { served += 1 }
        }
        // One answered, eight waiting, the others refused (a few more may be served if the
        // first ones end while the burst is still being read).
        #expect(busy >= 1 && served >= 9 && busy + served == 12, "busy \(busy), served \(served)")
    }

    @Test func repliesHeldForClientsThatDoNotReadAreBounded() async throws {
        var options = ControlServer.Options()
        options.maxHeldReplyBytes = 2 * 1024 * 1024
        let big = JSONValue.string(String(repeating: "a", count: 1536 * 1024))
        let f = try ControlSocketTests.Fixture(handler: FakeControlHandler(replies: ["logs": .success(["lines": big])]), options: options)
        defer { f.stop() }
        // A client that asks and does not read: most of its 1.5 MiB reply stays with the server.
        let idle = try RawConnection(f.path)
        defer { idle.close() }
        idle.send(Self.logs("a"))
        // Its request handled: `logs` requests are answered one at a time and each reply is
        // posted before the next is let in, so the first reply is held before the second's.
        #expect(try await waitUntil { f.handler.requests.count == 1 })
        let second = try RawConnection(f.path)
        defer { second.close() }
        second.send(Self.logs("a"))
        let line = await offPool { second.readLine() }
        #expect(line?.contains("the agent is busy sending") == true, "\(String((line ?? "no reply").prefix(200)))")
        // Once the first client has taken its reply, the next one is served in full.
        let first = await offPool { Self.readLine(idle.fd) }
        #expect(first > 1536 * 1024)
        let third = try RawConnection(f.path)
        defer { third.close() }
        third.send(Self.logs("a"))
        #expect(await offPool { Self.readLine(third.fd) } > 1536 * 1024)
    }

    /// The length of one reply line, read in large chunks (`RawConnection.readLine` reads a
    /// byte per call: seconds for 4 MiB); 0 on EOF or timeout.
    static func readLine(_ fd: Int32) -> Int {
        var count = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { return 0 }
            if let newline = buffer[..<n].firstIndex(of: UInt8(ascii: "\n")) { return count + newline }
            count += n
        }
    }
}
