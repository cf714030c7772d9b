import Foundation
import SundialCore
import SundialRuntime
import SundialTesting
import Synchronization
import Testing

/// A handler that starts a stream for `follow` and hands the stream to the test.
final class StreamingHandler: ControlHandler {
    let streams = Mutex<[ControlStream]>([])
    func handle(_ request: ControlRequest) async -> ControlResponse { .failure("not streaming") }
    func handle(_ request: ControlRequest, stream: ControlStream) async -> ControlResponse {
        guard case let .follow(job) = request else { return await handle(request) }
        if job == "nope" { return .failure("unknown job nope") }
        streams.withLock { $0.append(stream) }
        return .success(["job": .string(job), "run_id": .null, "stream": .bool(true)])
    }
    /// The stream of the `n`th follow, waiting (bounded) for it to arrive.
    func stream(_ n: Int = 0) async throws -> ControlStream {
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            if let s = streams.withLock({ $0.count > n ? $0[n] : nil }) { return s }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw CancellationError()
    }
}

/// Polls `condition` every 10 ms until it holds or `seconds` pass.
func eventually(_ seconds: Double = 5, _ condition: () -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

@Suite("Control socket streams (trigger --wait, logs -f)", .offPool)
struct ControlStreamTests {
    struct Fixture {
        let dir = TempDir("ctls")
        var path: String { dir.path + "/sundial.sock" }
        let server: ControlServer
        let handler = StreamingHandler()
        let loop: EventLoop
        init(options: ControlServer.Options = .init()) throws {
            loop = try EventLoop(name: "test-control")
            server = ControlServer(path: dir.path + "/sundial.sock", handler: handler, options: options)
            try server.start(on: loop)
        }
        func stop() {
            server.stop()
            loop.stop()
            dir.remove()
        }

        /// The first follow's stream; if it never comes, stops the server before throwing. A
        /// test's `async let` client is awaited when the test leaves its scope, before the
        /// `defer` that stops the server, and a streaming client with keepalives ends only
        /// when the server closes: without this, a failed wait would hang the whole run.
        func streamOrStop() async throws -> ControlStream {
            do { return try await handler.stream() } catch {
                stop()
                throw error
            }
        }
    }

    @Test func newRequestsRoundTripAndBadOnesAreRefused() throws {
        let requests: [ControlRequest] = [
            .pause(job: "a"), .pause(job: nil), .resume(job: "a"), .resume(job: nil),
            .triggerAndWait(job: "a", output: false), .triggerAndWait(job: "a", output: true),
            .follow(job: "a"),
        ]
        for r in requests { #expect(try ControlRequest(line: Array(r.line.dropLast())) == r) }
        #expect(ControlRequest.triggerAndWait(job: "a", output: true).op == "trigger")
        #expect(ControlRequest.follow(job: "a").streams && !ControlRequest.trigger(job: "a").streams)
        for bad in [
            #"{"v":1,"op":"pause"}"#, #"{"v":1,"op":"pause","job":"a","all":true}"#,
            #"{"v":1,"op":"resume","job":""}"#, #"{"v":1,"op":"trigger","job":"a","wait":"soon"}"#,
            #"{"v":1,"op":"follow"}"#,
        ] {
            #expect(throws: ControlProtocolError.self, "\(bad)") { try ControlRequest(line: Array(bad.utf8)) }
        }
        let end = ControlStreamMessage.ended(.init(runID: RunID(rawValue: "r1"), job: "a", outcome: .signal(9), attempts: 2, durationMs: 1500))
        for m in [
            end, .keepalive, .dropped(reason: "slow"), .started(runID: RunID(rawValue: "r1"), attempt: 2),
            .output(runID: RunID(rawValue: "r1"), attempt: 1, stream: "stderr", line: "héllo \"x\"", truncated: true),
        ] {
            #expect(try ControlStreamMessage(line: Array(m.line.dropLast())) == m)
        }
    }

    @Test(arguments: [
        (RunOutcome.success(exitCode: 0), Int32(0)), (.success(exitCode: 3), 0), (.failure(exitCode: 3), 3), (.failure(exitCode: 0), 1),
        (.signal(9), 137), (.timeout, 124), (.launchFailed(reason: "x"), 127), (.interrupted, 1), (.unknown, 1),
    ])
    func exitStatusOfARun(outcome: RunOutcome, status: Int32) {
        #expect(ControlStreamMessage.RunEnd(runID: RunID(rawValue: "r"), job: "a", outcome: outcome, attempts: 1, durationMs: nil).exitStatus == status)
    }

    @Test func aClientReceivesTheStreamUntilTheRunEnds() async throws {
        let f = try Fixture()
        defer { f.stop() }
        let got = Mutex<[ControlStreamMessage]>([])
        let replyBody = Mutex<JSONValue?>(nil)
        let client = ControlClient(path: f.path, timeout: .seconds(5))
        async let end = client.streamed(
            .follow(job: "backup"), onReply: { r in replyBody.withLock { $0 = r.body } },
            onMessage: { m in got.withLock { $0.append(m) } })
        let stream = try await f.streamOrStop()
        let id = RunID(rawValue: "r1")
        #expect(stream.send(.started(runID: id, attempt: 1)))
        #expect(stream.send(.output(runID: id, attempt: 1, stream: "stdout", line: "one", truncated: false)))
        let last = ControlStreamMessage.RunEnd(runID: id, job: "backup", outcome: .failure(exitCode: 4), attempts: 1, durationMs: 20)
        stream.finish(with: .ended(last))
        #expect(try await end == .ended(last))
        #expect(got.withLock { $0 }.count == 3)
        #expect(replyBody.withLock { $0 }?["stream"] == .bool(true))
        #expect(!stream.isOpen)
        #expect(try await eventually { f.server.activeClients == 0 })
    }

    @Test func anErrorReplyStartsNoStream() async throws {
        let f = try Fixture()
        defer { f.stop() }
        let ok = Mutex<Bool?>(nil)
        let end = try await ControlClient(path: f.path, timeout: .seconds(5)).streamed(
            .follow(job: "nope"), onReply: { r in ok.withLock { $0 = r.ok } }, onMessage: { _ in })
        #expect(end == .noStream)
        #expect(ok.withLock { $0 } == false)
    }

    @Test func aSilentStreamGetsKeepalives() async throws {
        var options = ControlServer.Options()
        options.keepaliveInterval = .milliseconds(150)
        let f = try Fixture(options: options)
        defer { f.stop() }
        let keepalives = Atomic<Int>(0)
        let client = ControlClient(path: f.path, timeout: .seconds(5))
        async let end = client.streamed(
            .follow(job: "quiet"), idleTimeout: .seconds(2), onReply: { _ in },
            onMessage: { m in
                if m == .keepalive { keepalives.add(1, ordering: .relaxed) }
            })
        let stream = try await f.streamOrStop()
        #expect(try await eventually { keepalives.load(ordering: .relaxed) >= 3 })
        stream.finish()
        #expect(try await end == .closed)
    }

    @Test func aClientThatLeavesClosesItsStream() async throws {
        let f = try Fixture()
        defer { f.stop() }
        let c = try RawConnection(f.path)
        c.send("{\"v\":1,\"op\":\"follow\",\"job\":\"a\"}\n")
        #expect(await offPool { c.readLine() }?.contains("\"stream\":true") == true)
        let stream = try await f.handler.stream()
        #expect(stream.isOpen)
        c.close()
        #expect(try await eventually { !stream.isOpen })
        #expect(!stream.send(.keepalive))
    }

    /// A client that stops reading never slows the sender: each send returns at once, the
    /// stream overflows its byte limit, and the connection is dropped.
    @Test func aSlowSubscriberIsDroppedWithoutBlockingTheAgent() async throws {
        var options = ControlServer.Options()
        options.maxStreamQueueBytes = 64 * 1024
        options.writeTimeout = .seconds(3)
        let f = try Fixture(options: options)
        defer { f.stop() }
        let c = try RawConnection(f.path)
        defer { c.close() }
        // A small receive buffer, so the kernel cannot absorb the stream for the client.
        var small: Int32 = 4096
        setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        c.send("{\"v\":1,\"op\":\"follow\",\"job\":\"a\"}\n")
        #expect(await offPool { c.readLine() }?.contains("\"stream\":true") == true)
        let stream = try await f.handler.stream()
        let line = String(repeating: "x", count: 1000)
        var slowest: Duration = .zero
        var sent = 0
        for _ in 0..<20_000 {
            let t = ContinuousClock.now
            let accepted = stream.send(.output(runID: RunID(rawValue: "r"), attempt: 1, stream: "stdout", line: line, truncated: false))
            slowest = max(slowest, ContinuousClock.now - t)
            if !accepted { break }
            sent += 1
        }
        #expect(sent < 20_000, "the stream never overflowed")
        #expect(!stream.isOpen)
        #expect(slowest < .milliseconds(100), "a send waited \(slowest)")
        #expect(stream.queuedBytes == 0)
        // The server says why (after whatever was already on its way) and closes the connection.
        let sawDropped = await offPool { () -> Bool in
            var seen = false
            while let l = c.readLine() { if l.contains("\"kind\":\"dropped\"") { seen = true } }
            return seen
        }
        #expect(sawDropped)
        #expect(try await eventually { f.server.activeClients == 0 })
    }
}
