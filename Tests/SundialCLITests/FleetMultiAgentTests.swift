import Foundation
import SundialCore
import SundialRuntime
import SundialTesting
import Testing

/// The tests with the real thing: several agents as separate processes (different box
/// names, the same job files) sharing one PostgreSQL.
@Suite("fleet of agents on PostgreSQL (built binary)", .serialized, .enabled(if: FleetAgentTests.pgEnabled), .offPool)
struct FleetMultiAgentTests {
    /// Instants to watch: the 300 under CI, fewer on a developer's machine.
    static var instants: Int {
        if let v = ProcessInfo.processInfo.environment["SUNDIAL_FLEET_INSTANTS"], let n = Int(v) { return n }
        return ProcessInfo.processInfo.environment["CI"] != nil ? 300 : 20
    }

    static func query(_ url: String, _ sql: String) throws -> [[String?]] {
        let c = PostgresConnection(settings: PostgresSettings(url: url))
        defer { c.close() }
        return try c.query(sql)
    }

    @Test func fiveAgentsRunEachPerSecondInstantExactlyOnce() async throws {
        let url = try FleetAgentTests.freshURL()
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let conf = root.appendingPathComponent("conf")
        try FileManager.default.createDirectory(at: conf, withIntermediateDirectories: true)
        try JobFiles.file(JobFiles.job("tick", every: "1s", command: "[/bin/true]", extra: "    offset: 0s\n    lock: fleet\n"))
            .write(to: conf.appendingPathComponent("jobs.yaml"), atomically: true, encoding: .utf8)
        var agents: [AgentProcess] = []
        defer { for a in agents { a.kill() } }
        for i in 0..<5 {
            let dir = root.appendingPathComponent("box\(i)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            agents.append(
                try await AgentProcess(
                    root: dir, config: [conf.path], extraArgs: ["--fleet", url, "--box", "box\(i)"],
                    lifetime: Double(Self.instants) + 90))
        }
        // The window: instants after every agent is up, for `instants` seconds.
        let start = (Int64(Date().timeIntervalSince1970) + 2) * 1000
        let end = start + Int64(Self.instants - 1) * 1000
        let deadline = Date().addingTimeInterval(Double(Self.instants) + 40)
        var published = 0
        while Date() < deadline {
            let n = try Self.query(
                url, "SELECT count(DISTINCT scheduled_for) FROM sundial_runs WHERE job = 'tick' AND sundial_ms(scheduled_for) BETWEEN \(start) AND \(end)")
            published = Int(n.first?.first.flatMap { $0 } ?? "0") ?? 0
            if published >= Self.instants { break }
            try await Task.sleep(for: .seconds(1))
        }
        #expect(published == Self.instants, "\(published) of \(Self.instants) instants ran")
        let doubled = try Self.query(
            url,
            """
            SELECT count(*) FROM (SELECT scheduled_for FROM sundial_runs WHERE job = 'tick' AND sundial_ms(scheduled_for) BETWEEN \(start) AND \(end)
            GROUP BY scheduled_for HAVING count(*) > 1) d
            """)
        #expect(doubled.first?.first == "0")
        // Every run carries its claim's fencing token, and more than one box took part.
        let boxes = try Self.query(
            url,
            "SELECT count(DISTINCT box), count(*) FILTER (WHERE token IS NULL) FROM sundial_runs WHERE job = 'tick' AND sundial_ms(scheduled_for) BETWEEN \(start) AND \(end)"
        )
        #expect(Int(boxes.first?[0] ?? "0") ?? 0 > 1)
        #expect(boxes.first?[1] == "0")
        for a in agents { _ = await a.stop() }
    }

    /// `kill -9` of the box running a fleet instant: its lease expires on the database's clock
    /// and another box takes the instant over with a higher token (`on_lost: rerun`).
    @Test func killingTheHolderHandsItsInstantOverPerOnLost() async throws {
        let url = try FleetAgentTests.freshURL()
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let conf = root.appendingPathComponent("conf")
        try FileManager.default.createDirectory(at: conf, withIntermediateDirectories: true)
        try JobFiles.file(
            JobFiles.job(
                "slow", every: "20s", command: "[/bin/sleep, '8']",
                extra: "    offset: 0s\n    lock: fleet\n    on_lost: rerun\n    lease: 3s\n")
        )
        .write(to: conf.appendingPathComponent("jobs.yaml"), atomically: true, encoding: .utf8)
        var agents: [String: AgentProcess] = [:]
        defer { for a in agents.values { a.kill() } }
        for i in 0..<3 {
            let dir = root.appendingPathComponent("box\(i)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            agents["box\(i)"] = try await AgentProcess(root: dir, config: [conf.path], extraArgs: ["--fleet", url, "--box", "box\(i)"], lifetime: 120)
        }
        // The first running claim: its holder is killed outright.
        var held: [String?] = []
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            held =
                try Self.query(url, "SELECT box, token, sundial_ms(scheduled_for) FROM sundial_claims WHERE job = 'slow' AND state = 'running' LIMIT 1").first
                ?? []
            if !held.isEmpty { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let holder = try #require(held.first.flatMap { $0 })
        let token = try #require(held[1].flatMap { Int64($0) })
        let at = try #require(held[2].flatMap { $0 })
        agents[holder]?.signal(SIGKILL)
        // Another box takes it over once the lease expired and a scan found it (15 s ± 50 %).
        var now: [String?] = []
        let takeover = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < takeover {
            now = try Self.query(url, "SELECT box, token FROM sundial_claims WHERE job = 'slow' AND sundial_ms(scheduled_for) = \(at)").first ?? []
            if let b = now.first.flatMap({ $0 }), b != holder { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        let newBox = now.first.flatMap { $0 }
        #expect(newBox != nil && newBox != holder, "the instant stayed with the killed box \(holder)")
        #expect((now.count > 1 ? now[1].flatMap { Int64($0) } : nil) ?? 0 > token)
        for (box, a) in agents where box != holder { _ = await a.stop() }
    }
}
