import Foundation
import SundialCore
import SundialRuntime
import SundialTesting
import Testing

/// The client commands (`status`, `trigger`, `history`, `why`, `reload`) run as the built binary
/// against a control server in this process with a scripted handler.
@Suite("Client commands", .offPool)
struct ClientCommandTests {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static var binary: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("sundial").path
    }

    /// Runs `sundial args...` through Sundial's own runner (see `CLI.run`), bounded in time.
    static func sundial(_ args: [String], env: [String: String] = [:]) async throws -> Result {
        let r = try await CLI.run(args, timeout: 20, env: env)
        return Result(status: r.status, stdout: r.stdout, stderr: r.stderr)
    }

    struct Agent {
        let dir: String
        let server: ControlServer
        let handler: FakeControlHandler
        let loop: EventLoop
        var socket: String { dir + "/sundial.sock" }
        init(_ handler: FakeControlHandler = .sample()) throws {
            dir = FileManager.default.temporaryDirectory.path + "/cli-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            self.handler = handler
            loop = try EventLoop(name: "test-control")
            server = ControlServer(path: dir + "/sundial.sock", handler: handler)
            try server.start(on: loop)
        }
        func stop() {
            server.stop()
            loop.stop()
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    @Test func statusPrintsJobsAndActiveRuns() async throws {
        let agent = try Agent()
        defer { agent.stop() }
        let r = try await Self.sundial(["status", "--control", agent.socket])
        #expect(r.status == 0, "\(r.stderr)")
        // Times relative to the agent's `now` (72 s after the sample's instant), zones, durations.
        #expect(r.stdout.contains("agent pid 4242, version 0.1.0, config revision rev-abc, up 1 h 1 min (since 2026-05-28T19:26:40.000Z)"), "\(r.stdout)")
        #expect(r.stdout.contains("backup     30 2 * * *  local  in 23 h 58 min  success in 12 s, 1 min ago"), "\(r.stdout)")
        #expect(r.stdout.contains("heartbeat  every 30s   -      disabled        -"))
        #expect(r.stdout.contains("heartbeat  01JBBBBBBBBBBBBBBBBBBBBBBB  2        777  1 min ago"))
    }

    @Test func theStateDirectoryAndSUNDIAL_STATEFindTheSocket() async throws {
        let agent = try Agent()
        defer { agent.stop() }
        let byFlag = try await Self.sundial(["history", "backup", "--limit", "5", "--state", agent.dir])
        #expect(byFlag.status == 0, "\(byFlag.stderr)")
        #expect(byFlag.stdout.contains("01JAAAAAAAAAAAAAAAAAAAAAAA  schedule  success  1         12.0s"))
        let byEnv = try await Self.sundial(["why", "backup"], env: ["SUNDIAL_STATE": agent.dir])
        #expect(byEnv.status == 0, "\(byEnv.stderr)")
        #expect(byEnv.stdout.contains("skipped: the previous run was still active (concurrency)"))
        #expect(byEnv.stdout.contains("next fire: 2026-05-29T20:26:40.000Z"))
        #expect(agent.handler.requests == [.history(job: "backup", limit: 5), .why(job: "backup")])
    }

    @Test func formatJSONPrintsTheReplyLine() async throws {
        let agent = try Agent()
        defer { agent.stop() }
        let r = try await Self.sundial(["trigger", "backup", "--control", agent.socket, "--format", "json"])
        #expect(r.status == 0)
        #expect(r.stdout.hasSuffix("\n") && r.stdout.filter { $0 == "\n" }.count == 1)
        // Key order is not part of the contract (it follows the JSON parser in use).
        let printed = try ControlResponse(line: Array(r.stdout.dropLast().utf8))
        #expect(
            printed.json.isJSONEqual(
                to: ControlResponse.success(TriggerReport(job: "backup", result: .started, runID: RunID(rawValue: "01JCCCCCCCCCCCCCCCCCCCCCCC")).json).json))
    }

    @Test func reloadAndTriggerInText() async throws {
        let agent = try Agent()
        defer { agent.stop() }
        let reload = try await Self.sundial(["reload", "--control", agent.socket])
        #expect(reload.stdout == "configuration reloaded: revision rev-def (1 added, 0 removed, 1 changed)\n  added: new\n  changed: backup\n")
        let trigger = try await Self.sundial(["trigger", "backup", "--control", agent.socket])
        #expect(trigger.stdout == "backup: started run 01JCCCCCCCCCCCCCCCCCCCCCCC\n")
    }

    @Test func aSkippedTriggerOrAnErrorReplyExitsOne() async throws {
        let handler = FakeControlHandler(replies: [
            "trigger": .success(TriggerReport(job: "backup", result: .skipped, reason: "a run is active (concurrency: forbid)").json),
            "history": .failure("unknown job nope"),
        ])
        let agent = try Agent(handler)
        defer { agent.stop() }
        let skipped = try await Self.sundial(["trigger", "backup", "--control", agent.socket])
        #expect(skipped.status == 1)
        #expect(skipped.stdout == "backup: skipped (a run is active (concurrency: forbid))\n")
        let unknown = try await Self.sundial(["history", "nope", "--control", agent.socket])
        #expect(unknown.status == 1)
        #expect(unknown.stderr == "sundial: unknown job nope\n")
    }

    @Test(arguments: ["status", "reload"])
    func noAgentExitsThree(command: String) async throws {
        let dir = FileManager.default.temporaryDirectory.path + "/cli-none-\(UUID().uuidString.prefix(8))"
        let r = try await Self.sundial([command, "--state", dir])
        #expect(r.status == 3)
        // `status` then tries the state database (StoredStateCommandTests), which is not there either.
        #expect(r.stderr.hasPrefix("sundial: no agent is answering on \(dir)/sundial.sock (No such file or directory)"))
        #expect(r.stdout == "")
    }
}
