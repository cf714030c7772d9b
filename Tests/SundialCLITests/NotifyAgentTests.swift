import Foundation
import Glibc
import SundialCore
import SundialRuntime
import SundialTesting
import Testing

/// `notify:` through the real binary: a failing job reaches a real HTTP receiver on loopback
/// (retried after a 500, signed with the env_file's secret) and a real command (facts on stdin
/// and in SUNDIAL_* variables).
@Suite(.serialized, .timeLimit(.minutes(2)), .offPool) struct NotifyAgentTests {
    @Test func aFailureReachesAWebhookAndACommand() async throws {
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let receiver = try LoopbackHTTPReceiver(statuses: [500, 204])
        defer { receiver.stop() }
        let envFile = root.appendingPathComponent("hook.env").path
        try "HOOK_KEY=s3cret-key\n".write(toFile: envFile, atomically: true, encoding: .utf8)
        chmod(envFile, 0o600)
        let out = root.appendingPathComponent("notified").path
        let conf = root.appendingPathComponent("jobs.yaml").path
        try """
        version: 1
        jobs:
          broken:
            schedule: "@reboot"
            command: [/bin/sh, -c, "exit 3"]
            env_file: \(envFile)
            notify:
              - on: [failure]
                webhook:
                  url: http://127.0.0.1:\(receiver.port)/hooks/sundial?team=ops
                  headers: { Authorization: Bearer t0k }
                  secret_env: HOOK_KEY
                  timeout: 5s
                  retries: 2
              - on: failure
                command: [/bin/sh, -c, 'cat > "$0.json"; env | grep ^SUNDIAL_ | sort > "$0.env"', \(out)]
              - on: success
                command: [/bin/sh, -c, "touch $0", \(out).success]
        """.write(toFile: conf, atomically: true, encoding: .utf8)
        let agent = try await AgentProcess(root: root, config: [conf])
        defer { agent.kill() }

        let finished = try await agent.waitFor("run.finished") { $0.name == "run.finished" }
        let runID = try #require(finished["run_id"]?.stringValue)
        let sent = try await agent.waitFor("the webhook's notify.sent", timeout: 20) {
            $0.name == "notify.sent" && $0["entry"]?.stringValue == "notify[0]"
        }
        #expect(sent["attempts"]?.int == 2 && sent["detail"]?.stringValue == "HTTP 204" && sent["on"]?.stringValue == "failure")
        #expect(sent["target"]?.stringValue == "webhook 127.0.0.1:\(receiver.port)")
        let retrying = agent.events().first { $0.name == "notify.retrying" }
        #expect(retrying?["reason"]?.stringValue == "HTTP 500" && retrying?["delay_ms"]?.int == 1000)
        try await agent.waitFor("the command's notify.sent") { $0.name == "notify.sent" && $0["entry"]?.stringValue == "notify[1]" }

        // The receiver got the same POST twice (the 500, then the 204).
        let requests = receiver.requests
        #expect(requests.count == 2)
        let r = try #require(requests.last)
        #expect(r.requestLine == "POST /hooks/sundial?team=ops HTTP/1.1")
        #expect(r.headers["content-type"] == "application/json" && r.headers["authorization"] == "Bearer t0k")
        #expect(r.headers["host"] == "127.0.0.1:\(receiver.port)")
        #expect(r.headers["x-sundial-signature"] == HMACSHA256.signature(key: Array("s3cret-key".utf8), body: r.body))
        let body = try JSONParser.parse(r.body)
        #expect(body["event"]?.stringValue == "failure" && body["job"]?.stringValue == "broken")
        #expect(body["run_id"]?.stringValue == runID && body["outcome"]?.stringValue == "failure" && body["exit_code"]?.int == 3)
        #expect(body["box"]?.stringValue?.isEmpty == false && body["finished_at"]?.stringValue != nil)

        // The command: the same document on stdin, the facts in its environment.
        let stdin = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: out + ".json"))))
        #expect(stdin["run_id"]?.stringValue == runID && stdin["exit_code"]?.int == 3)
        let env = try String(contentsOfFile: out + ".env", encoding: .utf8)
        #expect(env.contains("SUNDIAL_JOB=broken\n") && env.contains("SUNDIAL_EVENT=failure\n") && env.contains("SUNDIAL_EXIT_CODE=3\n"))
        #expect(env.contains("SUNDIAL_RUN_ID=\(runID)\n") && env.contains("SUNDIAL_OUTCOME=failure\n") && env.contains("SUNDIAL_BOX="))
        #expect(!FileManager.default.fileExists(atPath: out + ".success"))
        _ = await agent.stop()
    }

    @Test func aDeadReceiverAndAFailingCommandAreLoggedWithTheirReasons() async throws {
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        // A port nothing listens on: bound, then closed.
        let closedPort = try {
            let r = try LoopbackHTTPReceiver(statuses: [204])
            r.stop()
            return r.port
        }()
        let conf = root.appendingPathComponent("jobs.yaml").path
        try """
        version: 1
        jobs:
          broken:
            schedule: "@reboot"
            command: [/bin/false]
            notify:
              - { on: failure, webhook: { url: "http://127.0.0.1:\(closedPort)/x", retries: 0, timeout: 2s } }
              - { on: failure, command: [/bin/sh, -c, "echo mail server down >&2; exit 7"] }
        """.write(toFile: conf, atomically: true, encoding: .utf8)
        let agent = try await AgentProcess(root: root, config: [conf])
        defer { agent.kill() }
        let hook = try await agent.waitFor("the webhook's notify.failed", timeout: 15) {
            $0.name == "notify.failed" && $0["entry"]?.stringValue == "notify[0]"
        }
        // libcurl's words, from the delivery child.
        #expect(hook["reason"]?.stringValue?.contains("Failed to connect to 127.0.0.1 port \(closedPort)") == true, "\(hook.jsonText)")
        let command = try await agent.waitFor("the command's notify.failed", timeout: 15) {
            $0.name == "notify.failed" && $0["entry"]?.stringValue == "notify[1]"
        }
        #expect(command["reason"]?.stringValue == "/bin/sh exited 7: mail server down", "\(command.jsonText)")
        _ = await agent.stop()
    }

    @Test func aFailureRightBeforeAStopIsStillDelivered() async throws {
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let out = root.appendingPathComponent("late").path
        let conf = root.appendingPathComponent("jobs.yaml").path
        try """
        version: 1
        jobs:
          broken:
            schedule: "@reboot"
            command: [/bin/false]
            notify: [{ on: failure, command: [/bin/sh, -c, "sleep 1; echo $SUNDIAL_JOB > $0", \(out)] }]
        """.write(toFile: conf, atomically: true, encoding: .utf8)
        let agent = try await AgentProcess(root: root, config: [conf])
        defer { agent.kill() }
        try await agent.waitFor("run.finished") { $0.name == "run.finished" }
        let end = await agent.stop()
        #expect(end.exitCode == 0)
        #expect((try? String(contentsOfFile: out, encoding: .utf8)) == "broken\n")
        let names = agent.events().compactMap(\.name)
        #expect(names.contains("notify.sent") && !names.contains("notify.abandoned"))
    }

    /// Issue 17: deliveries are kept in state.db. The receiver is down while the agent fails a
    /// job and stops (the delivery still retrying); it comes back; the restarted agent sends it.
    @Test func aDeliveryPendingAtAStopIsSentAfterTheRestart() async throws {
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let port = try {
            let r = try LoopbackHTTPReceiver(statuses: [204])
            r.stop()
            return r.port
        }()
        let conf = root.appendingPathComponent("jobs.yaml").path
        try """
        version: 1
        jobs:
          broken:
            schedule: "@reboot"
            command: [/bin/false]
            notify: [{ on: failure, webhook: { url: "http://127.0.0.1:\(port)/hook", retries: 5, timeout: 2s } }]
        """.write(toFile: conf, atomically: true, encoding: .utf8)
        let first = try await AgentProcess(root: root, config: [conf])
        defer { first.kill() }
        let finished = try await first.waitFor("run.finished") { $0.name == "run.finished" }
        let runID = try #require(finished["run_id"]?.stringValue)
        try await first.waitFor("notify.retrying", timeout: 15) { $0.name == "notify.retrying" }
        #expect(await first.stop().exitCode == 0)
        let abandoned = first.events().first { $0.name == "notify.abandoned" }
        #expect(abandoned?["count"]?.int == 1 && abandoned?["message"]?.stringValue?.contains("after the restart") == true)
        #expect(!first.events().contains { $0.name == "notify.sent" || $0.name == "notify.failed" })

        let receiver = try LoopbackHTTPReceiver(statuses: [204], port: port)
        defer { receiver.stop() }
        let second = try await AgentProcess(root: root, config: [conf])
        defer { second.kill() }
        try await second.waitFor("the kept delivery's notify.sent", timeout: 20) {
            $0.name == "notify.sent" && $0["run_id"]?.stringValue == runID
        }
        _ = await second.stop()
        // Once: sent and forgotten, so the stop has nothing left and nothing went out twice.
        let bodies = try receiver.requests.map { try JSONParser.parse($0.body) }
        #expect(bodies.filter { $0["run_id"]?.stringValue == runID && $0["event"]?.stringValue == "failure" }.count == 1)
        // (The log file is shared by both agents: the first's line is the only one.)
        #expect(second.events().filter { $0.name == "notify.abandoned" }.count <= 1)
    }

    @Test func validateAcceptsHTTPSAndChecksCAFile() async throws {
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let conf = root.appendingPathComponent("jobs.yaml").path
        try
            "version: 1\njobs:\n  a:\n    command: [/bin/true]\n    notify: [{ on: failure, webhook: { url: \"https://hooks.example.org/x\", ca_file: /etc/ca.pem } }]\n"
            .write(toFile: conf, atomically: true, encoding: .utf8)
        let r = try await CLI.run(["validate", conf])
        #expect(r.status == 0, "\(r.stderr)\(r.stdout)")
        try
            "version: 1\njobs:\n  a:\n    command: [/bin/true]\n    notify: [{ on: failure, webhook: { url: \"http://hooks.example.org/x\", ca_file: /etc/ca.pem } }]\n"
            .write(toFile: conf, atomically: true, encoding: .utf8)
        let bad = try await CLI.run(["validate", conf])
        #expect(bad.status != 0)
        #expect((bad.stderr + bad.stdout).contains("notify[0]: `ca_file` verifies an https:// receiver, but the url is http://"), "\(bad.stderr)\(bad.stdout)")
    }
}
