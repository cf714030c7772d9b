import CSundialShim
import Foundation
import SundialCore
import SundialRuntime
import SundialTesting
import Synchronization
import Testing

/// A raw connection to the control socket, for sending what the real client never would.
struct RawConnection {
    let fd: Int32
    init(_ path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno)!) }
        var tv = timeval(tv_sec: 5, tv_usec: 0)  // a broken server fails the test instead of hanging it
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }
    func send(_ text: String) { _ = Array(text.utf8).withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
    func send(bytes: [UInt8]) { _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
    /// One reply line, or nil on EOF/timeout.
    func readLine() -> String? {
        var out: [UInt8] = []
        var b: UInt8 = 0
        while read(fd, &b, 1) == 1 {
            if b == UInt8(ascii: "\n") { return String(decoding: out, as: UTF8.self) }
            out.append(b)
        }
        return nil
    }
    func close() { _ = Glibc.close(fd) }
}

@Suite("Control socket", .offPool)
struct ControlSocketTests {
    /// A running server on a fresh socket; `stop()` cleans up.
    struct Fixture {
        let dir = TempDir("ctl")
        var path: String { dir.path + "/sundial.sock" }
        let server: ControlServer
        let handler: FakeControlHandler
        /// The loop serving the socket, as the agent's main thread does.
        let loop: EventLoop
        init(handler: FakeControlHandler = .sample(), options: ControlServer.Options = .init()) throws {
            self.handler = handler
            loop = try EventLoop(name: "test-control")
            server = ControlServer(path: dir.path + "/sundial.sock", handler: handler, options: options)
            try server.start(on: loop)
        }
        func stop() {
            server.stop()
            loop.stop()
            dir.remove()
        }
        var client: ControlClient { ControlClient(path: path, timeout: .seconds(5)) }
    }

    @Test func everyOpRoundTripsThroughTheSocket() async throws {
        let f = try Fixture()
        defer { f.stop() }
        let status = try await f.client.response(to: .status)
        #expect(status.ok)
        let report = try StatusReport(json: status.body)
        #expect(report.revision == "rev-abc" && report.jobs.map(\.id) == ["backup", "heartbeat"])
        #expect(report.jobs[0].last?.outcome == .success(exitCode: 0))
        #expect(report.active.first?.pid == 777)
        #expect(try TriggerReport(json: await f.client.response(to: .trigger(job: "backup")).body).result == .started)
        #expect(try HistoryReport(json: await f.client.response(to: .history(job: "backup", limit: 5)).body).runs.count == 1)
        let why = try WhyReport(json: await f.client.response(to: .why(job: "backup")).body)
        #expect(why.entries.map(\.disposition).first == .skipped(.overlap))
        #expect(try ReloadReport(json: await f.client.response(to: .reload).body).changed == ["backup"])
        #expect(f.handler.requests == [.status, .trigger(job: "backup"), .history(job: "backup", limit: 5), .why(job: "backup"), .reload])
    }

    @Test func theWireFormatIsOneVersionedJSONLine() async throws {
        let f = try Fixture()
        defer { f.stop() }
        let c = try RawConnection(f.path)
        defer { c.close() }
        c.send("{\"v\":1,\"op\":\"trigger\",\"job\":\"backup\"}\n")
        #expect((await offPool { c.readLine() }) == #"{"v":1,"ok":true,"job":"backup","result":"started","run_id":"01JCCCCCCCCCCCCCCCCCCCCCCC","reason":null}"#)
        c.send("{\"v\":1,\"op\":\"history\"}\n")
        #expect((await offPool { c.readLine() }) == #"{"v":1,"ok":false,"error":"history needs a \"job\""}"#)
    }

    @Test func aHandlerFailureIsAnErrorReply() async throws {
        let f = try Fixture(handler: FakeControlHandler(replies: ["trigger": .failure("unknown job nope")]))
        defer { f.stop() }
        let r = try await f.client.response(to: .trigger(job: "nope"))
        #expect(!r.ok && r.error == "unknown job nope")
    }

    @Test(arguments: [
        ("this is not json", "malformed request: not valid JSON"),
        ("[1,2]", "a request must be a JSON object"),
        ("{\"op\":\"status\"}", "missing protocol version \"v\""),
        ("{\"v\":2,\"op\":\"status\"}", "unsupported protocol version 2 (this agent speaks 1)"),
        ("{\"v\":1,\"op\":\"dance\"}", "unknown op \"dance\" (expected status, trigger, history, why, logs, reload, pause, resume or follow)"),
        ("{\"v\":1,\"op\":\"history\",\"job\":\"a\",\"limit\":0}", "\"limit\" must be an integer from 1 to 1000"),
        ("{\"v\":1,\"op\":\"history\",\"job\":\"a\",\"limit\":\"ten\"}", "\"limit\" must be an integer from 1 to 1000"),
        ("{\"v\":1,\"op\":\"why\",\"job\":\"\"}", "why needs a \"job\""),
        ("{\"v\":1,\"op\":\"why\",\"job\":\"\(String(repeating: "a", count: 64))\"}", "\"job\" is longer than 63 bytes, so no job has that id"),
        ("\u{FF}\u{FE}", "malformed request: not valid JSON"),
    ])
    func malformedRequestsGetAnErrorReplyAndTheConnectionKeepsServing(line: String, message: String) async throws {
        let f = try Fixture()
        defer { f.stop() }
        let c = try RawConnection(f.path)
        defer { c.close() }
        c.send(line + "\n")
        let reply = try #require((await offPool { c.readLine() }))
        let parsed = try ControlResponse(line: Array(reply.utf8))
        #expect(!parsed.ok)
        #expect(parsed.error == message)
        c.send("\n{\"v\":1,\"op\":\"status\"}\r\n")  // blank lines are ignored, CRLF accepted
        #expect((await offPool { c.readLine() })?.hasPrefix(#"{"v":1,"ok":true"#) == true)
    }

    @Test func anOversizedRequestGetsAnErrorAndTheServerKeepsServing() async throws {
        var options = ControlServer.Options()
        options.maxRequestBytes = 64 * 1024
        let f = try Fixture(options: options)
        defer { f.stop() }
        let c = try RawConnection(f.path)
        c.send(bytes: [UInt8](repeating: UInt8(ascii: "x"), count: 70 * 1024))
        #expect((await offPool { c.readLine() }) == #"{"v":1,"ok":false,"error":"request too large (at most 65536 bytes per line)"}"#)
        #expect((await offPool { c.readLine() }) == nil)  // closed: no way to find the next line
        c.close()
        #expect(try await f.client.response(to: .status).ok)
    }

    @Test func theSocketFileIsPrivate() async throws {
        let f = try Fixture()
        defer { f.stop() }
        var st = stat()
        #expect(lstat(f.path, &st) == 0)
        #expect(st.st_mode & S_IFMT == S_IFSOCK)
        #expect(st.st_mode & 0o777 == 0o600)
    }

    @Test func aPeerWhoseUidIsNotAllowedIsRefused() async throws {
        var options = ControlServer.Options()
        options.allowedUIDs = [getuid() &+ 12_345]
        let f = try Fixture(options: options)
        defer { f.stop() }
        let r = try await f.client.response(to: .status)
        #expect(!r.ok)
        #expect(r.error == "permission denied: uid \(getuid()) may not control this agent")
        #expect(f.handler.requests.isEmpty)
    }

    @Test(
        .enabled(
            if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")
                && FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "needs root, setpriv and python3"))
    func anotherUserIsRefusedEvenWhenTheFileModeLetsThemIn() async throws {
        let f = try Fixture()
        defer { f.stop() }
        let script = """
            import socket, sys
            s = socket.socket(socket.AF_UNIX); s.settimeout(5)
            try:
                s.connect(sys.argv[1])
            except OSError as e:
                print("connect failed:", e.errno); sys.exit(0)
            try:
                s.sendall(b'{"v":1,"op":"status"}\\n')
            except OSError:
                pass  # refused peers are answered and closed at once
            print(s.makefile().readline().strip())
            """
        // Launched through Sundial's own runner: it owns reaping in this test process.
        func runAsNobody() async throws -> String {
            let argv = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", script, f.path]
            let spec = LaunchSpec(
                job: "nobody", runID: RunID(rawValue: UUID().uuidString), executable: argv[0], arguments: argv,
                environment: ["PATH": "/usr/bin:/bin"], timeoutMs: 20_000)
            let lines = Mutex<[String]>([])
            let handle = await (try TestRunner.shared()).start(spec) { line in
                if line.stream == .stdout { lines.withLock { $0.append(line.text) } }
            }
            _ = await handle.completion()
            return lines.withLock { $0.joined(separator: "\n") }.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        // The directory is 0700 in production; here open it so only the socket's checks remain.
        chmod(f.dir.path, 0o755)
        #expect(try await runAsNobody() == "connect failed: 13")  // EACCES: mode 0600
        chmod(f.path, 0o666)
        #expect(try await runAsNobody() == #"{"v":1,"ok":false,"error":"permission denied: uid 65534 may not control this agent"}"#)
        #expect(f.handler.requests.isEmpty)
    }

    @Test func aSlowHandlerGetsATimeoutReply() async throws {
        var options = ControlServer.Options()
        options.handlerTimeout = .milliseconds(100)
        let f = try Fixture(handler: FakeControlHandler(replies: ["status": .success()], delay: .seconds(30)), options: options)
        defer { f.stop() }
        let r = try await f.client.response(to: .status)
        #expect(r.error == "the agent did not answer status within 100 ms")
    }

    @Test func whenFullTheOldestConnectionWaitingForARequestMakesRoom() async throws {
        var options = ControlServer.Options()
        options.maxClients = 1
        let f = try Fixture(options: options)
        defer { f.stop() }
        let first = try RawConnection(f.path)  // admitted, answered, then idle
        defer { first.close() }
        first.send("{\"v\":1,\"op\":\"status\"}\n")
        #expect((await offPool { first.readLine() })?.contains("\"ok\":true") == true)
        // A newcomer is served; the idle connection is told why it is closed, then closed.
        #expect(try await f.client.response(to: .status).ok)
        #expect(
            (await offPool { first.readLine() })
                == #"{"v":1,"ok":false,"error":"too many clients (at most 1); this connection waited longest for a request and made room for a new one"}"#)
        #expect((await offPool { first.readLine() }) == nil)
        #expect(try await waitUntil { f.server.activeClients == 0 })
    }

    @Test func whenFullOfRequestsBeingAnsweredANewcomerIsTurnedAway() async throws {
        var options = ControlServer.Options()
        options.maxClients = 1
        let f = try Fixture(handler: FakeControlHandler(replies: ["status": .success()], delay: .milliseconds(1500)), options: options)
        defer { f.stop() }
        let first = try RawConnection(f.path)
        defer { first.close() }
        first.send("{\"v\":1,\"op\":\"status\"}\n")
        // The first request is with the agent (not evictable): the newcomer is refused at once.
        #expect(try await waitUntil { f.handler.requests.count == 1 })
        let r = try await f.client.response(to: .status)
        #expect(r.error == "too many clients (at most 1); try again")
        #expect((await offPool { first.readLine() }) == #"{"v":1,"ok":true}"#)
    }

    @Test func anIdleConnectionIsClosedAfterTheTimeout() async throws {
        var options = ControlServer.Options()
        options.requestTimeout = .milliseconds(200)
        let f = try Fixture(options: options)
        defer { f.stop() }
        let c = try RawConnection(f.path)
        defer { c.close() }
        let start = ContinuousClock.now
        #expect((await offPool { c.readLine() }) == nil)
        #expect(ContinuousClock.now - start < .seconds(4))
    }

    @Test func noAgentMeansUnreachable() async throws {
        let dir = TempDir("noagent")
        defer { dir.remove() }
        let error = await #expect(throws: ControlClientError.self) {
            try await ControlClient(path: dir.path + "/sundial.sock", timeout: .seconds(1)).response(to: .status)
        }
        #expect(error?.code == .unreachable)
        #expect(error?.description.hasPrefix("no agent is answering on \(dir.path)/sundial.sock") == true)
    }

    @Test func aStaleSocketIsReplacedButALiveOneOrAFileIsNot() async throws {
        let f = try Fixture()
        defer { f.stop() }
        // A live agent on the path: a second server refuses to start.
        let second = ControlServer(path: f.path, handler: FakeControlHandler())
        let live = #expect(throws: ControlServerError.self) { try second.start(on: f.loop) }
        #expect(live?.description == "control socket \(f.path): another agent is answering on it")
        #expect(try await f.client.response(to: .status).ok)

        // A stale socket (its agent died without removing it): unreachable, then replaced.
        let stale = f.dir.path + "/stale.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in stale.utf8.enumerated() { raw[i] = b } }
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        close(fd)
        await #expect(throws: ControlClientError.self) { try await ControlClient(path: stale, timeout: .seconds(1)).response(to: .status) }
        let replacement = ControlServer(path: stale, handler: FakeControlHandler.sample())
        try replacement.start(on: f.loop)
        #expect(try await ControlClient(path: stale).response(to: .status).ok)
        replacement.stop()
        #expect(!FileManager.default.fileExists(atPath: stale))

        // A regular file is never deleted.
        let file = f.dir.path + "/file.sock"
        _ = FileManager.default.createFile(atPath: file, contents: Data("keep".utf8))
        #expect(throws: ControlServerError.self) { try ControlServer(path: file, handler: FakeControlHandler()).start(on: f.loop) }
        #expect(FileManager.default.fileExists(atPath: file))
    }

    @Test func reportsRoundTripThroughJSON() async throws {
        let h = FakeControlHandler.sample()
        for op in ["status", "trigger", "history", "why", "reload"] {
            let req: ControlRequest =
                switch op {
                case "status": .status
                case "trigger": .trigger(job: "backup")
                case "history": .history(job: "backup", limit: 1)
                case "why": .why(job: "backup")
                default: .reload
                }
            let body = await h.handle(req).body
            let again: JSONValue =
                switch op {
                case "status": try StatusReport(json: body).json
                case "trigger": try TriggerReport(json: body).json
                case "history": try HistoryReport(json: body).json
                case "why": try WhyReport(json: body).json
                default: try ReloadReport(json: body).json
                }
            #expect(again == body, "\(op)")
        }
        #expect(try ControlRequest(json: ControlRequest.history(job: "a", limit: 7).json) == .history(job: "a", limit: 7))
    }

    /// A job id no job file can give (longer than the schema's 63 bytes) is refused by every op
    /// that names a job, before the agent's actor would look for a "did you mean" among all its
    /// jobs; the longest possible id still passes.
    @Test func aJobIDLongerThanAnyJobsIsRefusedByEveryOpThatNamesAJob() throws {
        let long = String(repeating: "a", count: 60_000)
        let longest = String(repeating: "a", count: ControlRequest.maxJobIDBytes)
        for op in ["trigger", "follow", "pause", "resume", "why", "logs", "history"] {
            for id in [long, longest + "b"] {
                #expect(throws: ControlProtocolError("\"job\" is longer than 63 bytes, so no job has that id"), "\(op)") {
                    try ControlRequest(json: ["v": 1, "op": .string(op), "job": .string(id)])
                }
            }
            let accepted = try ControlRequest(json: ["v": 1, "op": .string(op), "job": .string(longest)])
            #expect(accepted.json["job"]?.stringValue == longest, "\(op)")
        }
        #expect(try ControlRequest(json: ["v": 1, "op": "pause", "all": true]) == .pause(job: nil))
    }

}
