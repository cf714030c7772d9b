import Foundation
import SundialCore
import SundialRuntime
import SundialTesting
import Testing

/// `sundial run --fleet` and `sundial fleet status|history` as a user runs them (built binary).
@Suite("sundial --fleet (built binary)", .serialized, .offPool)
struct FleetAgentTests {
    static var pgURL: String? {
        guard let v = ProcessInfo.processInfo.environment["SUNDIAL_TEST_PG_URL"], !v.isEmpty else { return nil }
        return v
    }
    static var pgEnabled: Bool { pgURL != nil || ProcessInfo.processInfo.environment["CI"] != nil }

    /// A fresh schema of the test server, as a URL (see SundialRuntimeTests' PGTest).
    static func freshURL() throws -> String {
        guard let base = pgURL else {
            Issue.record("CI is set but SUNDIAL_TEST_PG_URL is not: start a cluster with scripts/pg-test-cluster.sh start")
            throw CancellationError()
        }
        let schema = "c_" + UUID().uuidString.prefix(12).lowercased().filter { $0.isLetter || $0.isNumber }
        let admin = PostgresConnection(settings: PostgresSettings(url: base))
        defer { admin.close() }
        try admin.query("CREATE SCHEMA \(schema)")
        return base + (base.contains("?") ? "&" : "?") + "options=-c%20search_path%3D\(schema)"
    }

    /// Read to its end (a /proc file reports size 0; a sized read would see only its start).
    static func maps(_ pid: Int32) -> String {
        guard let h = FileHandle(forReadingAtPath: "/proc/\(pid)/maps") else { return "" }
        defer { try? h.close() }
        return String(decoding: h.readDataToEndOfFile(), as: UTF8.self)
    }

    static func threads(_ pid: Int32) -> [String] {
        let dir = "/proc/\(pid)/task"
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).compactMap {
            try? String(contentsOfFile: "\(dir)/\($0)/comm", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    @Test func aBadDatabaseIsReportedWithThePasswordMasked() async throws {
        let r = try await CLI.run(["fleet", "status", "--fleet", "postgresql://sundial:topsecret@127.0.0.1:1/fleet"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("postgresql://sundial:***@127.0.0.1:1/fleet"), "\(r.stderr)")
        #expect(!r.stderr.contains("topsecret") && !r.stdout.contains("topsecret"))
        let env = try await CLI.run(["fleet", "history", "job"], env: ["SUNDIAL_FLEET_URL": "host=127.0.0.1 port=1 password=envsecret"])
        #expect(env.status == 1 && env.stderr.contains("password=***") && !env.stderr.contains("envsecret"), "\(env.stderr)")
        let none = try await CLI.run(["fleet", "status"])
        #expect(none.status != 0 && none.stderr.contains("--fleet URL"), "\(none.stderr)")
    }

    @Test func fleetFlagsAreCheckedAtStart() async throws {
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let conf = root.appendingPathComponent("jobs.yaml")
        try JobFiles.file(JobFiles.job("tick")).write(to: conf, atomically: true, encoding: .utf8)
        let state = root.appendingPathComponent("state").path
        let box = try await CLI.run(["run", conf.path, "--state", state, "--box", "b1"])
        #expect(box.status != 0 && box.stderr.contains("--box"), "\(box.stderr)")
        let pw = try await CLI.run([
            "run", conf.path, "--state", state, "--fleet", "postgresql://u@127.0.0.1:1/d",
            "--fleet-password-file", root.appendingPathComponent("missing").path,
        ])
        #expect(pw.status != 0 && pw.stderr.contains("missing"), "\(pw.stderr)")
        let timeout = try await CLI.run(["run", conf.path, "--state", state, "--fleet", "postgresql://u@127.0.0.1:1/d", "--fleet-connect-timeout", "soon"])
        #expect(timeout.status != 0 && timeout.stderr.contains("--fleet-connect-timeout"), "\(timeout.stderr)")
    }

    /// Without --fleet, libpq is not even mapped and no fleet thread exists (the lean figures).
    @Test func anAgentWithoutFleetMapsNoLibpq() async throws {
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let conf = root.appendingPathComponent("conf")
        try FileManager.default.createDirectory(at: conf, withIntermediateDirectories: true)
        try JobFiles.file(JobFiles.job("tick")).write(to: conf.appendingPathComponent("jobs.yaml"), atomically: true, encoding: .utf8)
        let agent = try await AgentProcess(root: root, config: [conf.path], lifetime: 30)
        defer { agent.kill() }
        let maps = Self.maps(agent.pid)
        #expect(maps.contains("libsqlite3"), "the maps were not read whole")
        #expect(!maps.contains("libpq") && !maps.contains("libssl") && !maps.contains("libkrb5"))
        #expect(!Self.threads(agent.pid).contains("sundial-fleet"))
        _ = await agent.stop()
    }

    @Test(.enabled(if: FleetAgentTests.pgEnabled))
    func anAgentWithFleetPublishesItsRunsAndFleetCommandsShowThem() async throws {
        let url = try Self.freshURL()
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let conf = root.appendingPathComponent("conf")
        try FileManager.default.createDirectory(at: conf, withIntermediateDirectories: true)
        try JobFiles.file(JobFiles.job("tick", every: "1s", command: "[/bin/sh, -c, 'echo hello; exit 3']"))
            .write(to: conf.appendingPathComponent("jobs.yaml"), atomically: true, encoding: .utf8)
        // The password from a file, not the URL.
        let parts = url.components(separatedBy: "@")
        let userinfo = parts[0].components(separatedBy: ":")
        let password = userinfo.count == 3 ? userinfo[2] : ""
        let urlWithoutPassword = userinfo.count == 3 ? userinfo[0] + ":" + userinfo[1] + "@" + parts[1...].joined(separator: "@") : url
        let pwFile = root.appendingPathComponent("pw")
        try (password + "\n").write(to: pwFile, atomically: true, encoding: .utf8)
        let agent = try await AgentProcess(
            root: root, config: [conf.path],
            extraArgs: ["--fleet", urlWithoutPassword, "--fleet-password-file", pwFile.path, "--box", "b1"], lifetime: 60)
        defer { agent.kill() }
        let env = ["SUNDIAL_FLEET_URL": urlWithoutPassword]
        var runs: [JSONValue] = []
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let h = try await CLI.run(["fleet", "history", "tick", "--format", "json", "--fleet-password-file", pwFile.path], env: env)
            if h.status == 0, case let .array(a)? = (try? JSONParser.parse(h.stdout))?["runs"], a.count >= 2 {
                runs = a
                break
            }
            try await Task.sleep(for: .milliseconds(300))
        }
        #expect(runs.count >= 2)
        #expect(runs.first?["box"] == .string("b1") && runs.first?["exit_code"] == .int(3))
        if case let .string(tail)? = runs.first?["output_tail"] {
            #expect(tail.contains("hello"))
        } else {
            Issue.record("no output tail: \(runs.first.map { "\($0)" } ?? "")")
        }
        #expect(Self.maps(agent.pid).contains("libpq"))
        #expect(Self.threads(agent.pid).contains("sundial-fleet"))
        let status = try await CLI.run(["fleet", "status", "--fleet-password-file", pwFile.path], env: env)
        #expect(status.status == 0 && status.stdout.contains("b1") && status.stdout.contains("tick"), "\(status.stdout)\(status.stderr)")
        _ = await agent.stop()
        let log = (try? String(contentsOfFile: agent.logPath, encoding: .utf8)) ?? ""
        #expect(!password.isEmpty && !log.contains(password))
    }
}
