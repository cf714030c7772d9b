import Foundation
import SundialCore
import SundialRuntime
import SundialTesting
import Testing

/// The issue's outage tests with the real thing (#19): agents as separate processes, a real
/// PostgreSQL that goes away for everyone (the server stopped) or for one box only (a TCP proxy
/// in front of it that the test stops). Every wait is a poll with a deadline.
@Suite("fleet agents through database outages (built binary)", .serialized, .offPool)
struct FleetOutageTests {
    /// The whole-outage test starts and stops a server of its own with scripts/pg-test-cluster.sh,
    /// which needs PostgreSQL's server binaries and, as root, the `postgres` user: it runs as root
    /// or under CI (where a missing server then fails rather than passes).
    static var ownClusterEnabled: Bool { getuid() == 0 || ProcessInfo.processInfo.environment["CI"] != nil }

    static func query(_ url: String, _ sql: String) throws -> [[String?]] {
        let c = PostgresConnection(settings: PostgresSettings(url: url))
        defer { c.close() }
        return try c.query(sql)
    }

    static func count(_ url: String, _ sql: String) -> Int {
        ((try? query(url, sql))?.first?.first).flatMap { $0 }.flatMap { Int($0) } ?? -1
    }

    /// Milliseconds since the epoch of an event's `scheduled_for` (RFC 3339 with milliseconds).
    static func ms(_ text: String?) -> Int64? {
        guard let text else { return nil }
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: text).map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) }
    }

    static func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    static func writeJobs(_ text: String, in root: URL) throws -> URL {
        let conf = root.appendingPathComponent("conf")
        try FileManager.default.createDirectory(at: conf, withIntermediateDirectories: true)
        try text.write(to: conf.appendingPathComponent("jobs.yaml"), atomically: true, encoding: .utf8)
        return conf
    }

    /// `sqlite3` on an agent's state database, read-only (one value per line).
    static func sqlite(_ db: String, _ sql: String) -> [String] {
        let out = NSTemporaryDirectory() + "sqlite-\(UUID().uuidString.prefix(8)).out"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let status = system("/usr/bin/sqlite3 -readonly '\(db)' \"\(sql)\" </dev/null >'\(out)' 2>&1")
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        if status != 0 { Issue.record("sqlite3 \(db): \(text)") }
        return text.split(separator: "\n").map(String.init)
    }

    // MARK: - Every box cut off: the server stopped for 30 s

    @Test(.enabled(if: FleetOutageTests.ownClusterEnabled))
    func aThirtySecondOutageLosesNoResultAndRunsNoInstantTwice() async throws {
        let cluster = try OutageCluster()
        defer { cluster.destroy() }
        let url = cluster.url
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        // A run of 0.3 s, so that runs in flight when the server stops end during the outage and
        // their results can only reach the database through the outbox.
        let conf = try Self.writeJobs(
            JobFiles.file(
                JobFiles.job(
                    "tick", every: "1s", command: "[/bin/sleep, '0.3']",
                    extra: "    offset: 0s\n    lock: fleet\n")), in: root)
        var agents: [AgentProcess] = []
        defer { for a in agents { a.kill() } }
        for i in 0..<3 {
            let dir = root.appendingPathComponent("box\(i)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            agents.append(
                try await AgentProcess(
                    root: dir, config: [conf.path],
                    extraArgs: ["--fleet", url, "--box", "box\(i)", "--fleet-connect-timeout", "2s"],
                    lifetime: 100))
        }
        // The fleet works before the outage.
        let warm = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < warm, Self.count(url, "SELECT count(DISTINCT scheduled_for) FROM sundial_runs WHERE job = 'tick'") < 3 {
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(Self.count(url, "SELECT count(DISTINCT scheduled_for) FROM sundial_runs WHERE job = 'tick'") >= 3, "no runs before the outage")

        // The outage: every claim from now until the server is back answers `unavailable`, so
        // with `fleet_unavailable: skip` (the default) the instants scheduled from `stoppedAt`
        // until the boxes reconnect after `restartedAt` are skipped by every box (run.skipped
        // `fleet_unavailable`) and run nowhere; runs already started finish and are published later.
        let marks = agents.map { $0.mark() }
        let stoppedAt = Self.nowMs()
        try cluster.stop()
        let outageEnd = ContinuousClock.now + .seconds(30)
        for (a, m) in zip(agents, marks) {
            try await a.waitFor("a fleet_unavailable skip during the outage", after: m, timeout: 25) {
                $0.name == "run.skipped" && $0["reason"]?.stringValue == "fleet_unavailable"
            }
        }
        // The rest of the 30 s: the outage itself is the scenario (nothing is asserted until
        // the server is back and the boxes had time to catch up, polled below).
        if ContinuousClock.now < outageEnd { try await Task.sleep(until: outageEnd) }
        try cluster.start()
        let restartedAt = Self.nowMs()

        // Catch-up: every run any agent started up to a cutoff after the restart reaches
        // `sundial_runs` (its outbox row published), polled with a deadline.
        let cutoff = restartedAt + 5000
        func startedRunIDs() -> [String: String] {
            var ids: [String: String] = [:]
            for (i, a) in agents.enumerated() {
                for e in a.events() where e.name == "run.started" && e["job"]?.stringValue == "tick" {
                    if let id = e["run_id"]?.stringValue, let at = Self.ms(e["scheduled_for"]?.stringValue), at <= cutoff { ids[id] = "box\(i)" }
                }
            }
            return ids
        }
        var missing: [String] = []
        let catchUp = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < catchUp {
            if Self.nowMs() > cutoff + 2000 {
                let published = Set(((try? Self.query(url, "SELECT run_id FROM sundial_runs WHERE job = 'tick'")) ?? []).compactMap { $0.first ?? nil })
                missing = startedRunIDs().keys.filter { !published.contains($0) }.sorted()
                if missing.isEmpty { break }
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(missing.isEmpty, "runs started but never published: \(missing)")
        #expect(startedRunIDs().count >= 3, "too few runs in the logs to compare")
        #expect(
            Self.count(url, "SELECT count(*) FROM sundial_runs WHERE job = 'tick' AND sundial_ms(scheduled_for) > \(restartedAt)") > 0,
            "no run after the restart")
        for a in agents { _ = await a.stop() }

        // Each agent's own history and outbox against the database: every finished local run up
        // to the cutoff is in `sundial_runs`, and no outbox row of them is left.
        let published = Set(try Self.query(url, "SELECT run_id FROM sundial_runs WHERE job = 'tick'").compactMap { $0.first ?? nil })
        var localRuns = 0
        for a in agents {
            let db = a.root.appendingPathComponent("state/state.db").path
            let local = Self.sqlite(db, "SELECT run_id FROM runs WHERE finished_at IS NOT NULL AND scheduled_for <= \(cutoff)")
            localRuns += local.count
            #expect(local.allSatisfy { published.contains($0) }, "\(a.root.lastPathComponent): \(local.filter { !published.contains($0) })")
            #expect(Self.sqlite(db, "SELECT count(*) FROM fleet_outbox WHERE scheduled_for <= \(cutoff)") == ["0"])
        }
        #expect(localRuns > 0)

        // No instant twice: in the database, and in the agents' event logs across all boxes.
        #expect(
            Self.count(url, "SELECT count(*) FROM (SELECT scheduled_for FROM sundial_runs WHERE job = 'tick' GROUP BY scheduled_for HAVING count(*) > 1) d")
                == 0)
        let fromLogs = agents.flatMap { a in
            a.events().filter { $0.name == "run.started" && $0["job"]?.stringValue == "tick" }.compactMap { $0["scheduled_for"]?.stringValue }
        }
        #expect(
            fromLogs.count == Set(fromLogs).count,
            "an instant started on two boxes: \(Dictionary(grouping: fromLogs) { $0 }.filter { $0.value.count > 1 }.keys.sorted())")
        #expect(agents.allSatisfy { a in a.events().filter { $0.name == "run.started" }.allSatisfy { $0["fleet_token"]?.int != nil } })
    }

    // MARK: - One box cut off: a proxy between it and the database, stopped by the test

    @Test(.enabled(if: FleetAgentTests.pgEnabled))
    func aBoxCutOffSkipsOrRunsLocallyWhileTheOthersRunEachInstantOnce() async throws {
        let url = try FleetAgentTests.freshURL()
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        // `tick` follows the default `fleet_unavailable: skip`; `local` runs where the claim
        // cannot be made, without a token.
        let conf = try Self.writeJobs(
            JobFiles.file(
                JobFiles.job("tick", every: "1s", extra: "    offset: 0s\n    lock: fleet\n"),
                JobFiles.job("local", every: "1s", extra: "    offset: 0s\n    lock: fleet\n    fleet_unavailable: run-locally\n")), in: root)
        let proxy = try await LoopbackProxy(to: url, dir: root)
        defer { proxy.kill() }
        var agents: [AgentProcess] = []
        defer { for a in agents { a.kill() } }
        for i in 0..<3 {
            let dir = root.appendingPathComponent("box\(i)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            agents.append(
                try await AgentProcess(
                    root: dir, config: [conf.path],
                    extraArgs: ["--fleet", i == 0 ? proxy.url : url, "--box", "box\(i)", "--fleet-connect-timeout", "2s"],
                    lifetime: 80))
        }
        // box0 reaches the database through the proxy: its fleet works (a claim it won or lost).
        try await agents[0].waitFor("box0 claiming through the proxy", timeout: 20) {
            ($0.name == "run.started" && $0["fleet_token"]?.int != nil)
                || ($0.name == "run.skipped" && ["fleet_claimed", "fleet_busy"].contains($0["reason"]?.stringValue ?? ""))
        }
        let mark = agents[0].mark()
        proxy.kill()
        // The window: instants from 3 s after the cut (time for box0 to notice), 10 of them.
        let instants = 10
        let start = (Self.nowMs() / 1000 + 3) * 1000
        let end = start + Int64(instants - 1) * 1000
        var ran = 0
        let deadline = ContinuousClock.now + .seconds(Double(instants) + 25)
        while ContinuousClock.now < deadline {
            ran = Self.count(
                url, "SELECT count(DISTINCT scheduled_for) FROM sundial_runs WHERE job = 'tick' AND sundial_ms(scheduled_for) BETWEEN \(start) AND \(end)")
            if ran >= instants { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        // The others run each instant exactly once, with a token; box0 none of them.
        #expect(ran == instants, "\(ran) of \(instants) instants ran on the boxes still connected")
        #expect(
            Self.count(
                url,
                """
                SELECT count(*) FROM (SELECT scheduled_for FROM sundial_runs WHERE job = 'tick' AND sundial_ms(scheduled_for) BETWEEN \(start) AND \(end)
                GROUP BY scheduled_for HAVING count(*) > 1) d
                """) == 0)
        #expect(
            Self.count(
                url,
                "SELECT count(*) FROM sundial_runs WHERE job = 'tick' AND sundial_ms(scheduled_for) BETWEEN \(start) AND \(end) AND (box = 'box0' OR token IS NULL)"
            ) == 0)
        // box0 skips its `tick` fires for `fleet_unavailable` and runs `local` without a token.
        let inWindow: (JSONValue) -> Bool = { e in Self.ms(e["scheduled_for"]?.stringValue).map { $0 >= start && $0 <= end } ?? false }
        try await agents[0].waitFor("box0 skipping tick for fleet_unavailable", after: mark, timeout: 5) {
            $0.name == "run.skipped" && $0["job"]?.stringValue == "tick" && $0["reason"]?.stringValue == "fleet_unavailable" && inWindow($0)
        }
        let localRun = try await agents[0].waitFor("box0 running local without a token", after: mark, timeout: 5) {
            $0.name == "run.started" && $0["job"]?.stringValue == "local" && inWindow($0)
        }
        #expect(localRun["fleet_token"] == .null, "\(localRun.jsonText)")
        let box0 = agents[0].events().dropFirst(mark)
        #expect(!box0.contains { $0.name == "run.started" && $0["job"]?.stringValue == "tick" && inWindow($0) })
        let skippedTicks = box0.filter {
            $0.name == "run.skipped" && $0["job"]?.stringValue == "tick" && $0["reason"]?.stringValue == "fleet_unavailable" && inWindow($0)
        }
        let localRuns = box0.filter { $0.name == "run.started" && $0["job"]?.stringValue == "local" && inWindow($0) }
        #expect(skippedTicks.count >= instants - 1, "box0 skipped \(skippedTicks.count) of \(instants)")
        #expect(localRuns.count >= instants - 1 && localRuns.allSatisfy { $0["fleet_token"] == .null }, "box0 ran local \(localRuns.count) times")
        for a in agents { _ = await a.stop() }
    }
}

/// A PostgreSQL server of the test's own (scripts/pg-test-cluster.sh), stopped and restarted by
/// the test without disturbing the shared one. Deleted by ``destroy()``.
final class OutageCluster {
    let dir = NSTemporaryDirectory() + "sundial-pg-outage-\(UUID().uuidString.prefix(8))"
    private(set) var url = ""

    init() throws { try start() }

    /// Starts the server (the same port again on a restart) and reads its URL.
    func start() throws {
        let out = try Self.script(["start", dir])
        guard let line = out.split(separator: "\n").last(where: { $0.hasPrefix("export ") }),
            let u = line.split(separator: " ").first(where: { $0.hasPrefix("SUNDIAL_TEST_PG_URL=") })
        else { throw OutageError("pg-test-cluster.sh start printed no URL: \(out)") }
        url = String(u.dropFirst("SUNDIAL_TEST_PG_URL=".count))
    }

    func stop() throws { try Self.script(["stop", dir]) }
    func destroy() { _ = try? Self.script(["destroy", dir]) }

    struct OutageError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    /// system(3) rather than Foundation's Process, whose SIGCHLD-based wait the runtime's signal
    /// handling in this process can starve; output to a file, not a pipe, because the server
    /// that `start` launches must not inherit it.
    @discardableResult
    static func script(_ args: [String]) throws -> String {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let out = NSTemporaryDirectory() + "pg-script-\(UUID().uuidString.prefix(8)).out"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let command = (["/bin/bash", repo + "/scripts/pg-test-cluster.sh"] + args).map { "'\($0)'" }.joined(separator: " ")
        let status = system("\(command) </dev/null >'\(out)' 2>&1")
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        guard status == 0 else { throw OutageError("pg-test-cluster.sh \(args.joined(separator: " ")) failed (\(status)): \(text)") }
        return text
    }
}

/// A loopback TCP forwarder (python3, a child of the test) between one agent and PostgreSQL.
/// ``kill()`` cuts that agent off: its open connections are reset and new ones refused, while
/// every other box keeps its direct connection.
final class LoopbackProxy: Sendable {
    let url: String
    let handle: RunHandle

    static let script = """
        import socket, sys, threading
        target = (sys.argv[1], int(sys.argv[2]))
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        with open(sys.argv[3] + ".tmp", "w") as f:
            f.write(str(server.getsockname()[1]))
        import os; os.rename(sys.argv[3] + ".tmp", sys.argv[3])
        def pump(a, b):
            try:
                while True:
                    data = a.recv(65536)
                    if not data:
                        break
                    b.sendall(data)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        while True:
            client, _ = server.accept()
            try:
                upstream = socket.create_connection(target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
        """

    /// Starts the forwarder to the host and port of `target` (a `postgresql://` URL) and waits
    /// (bounded) for the port it listens on; `url` is `target` through it.
    init(to target: String, dir: URL) async throws {
        guard let at = target.range(of: "@"), let slash = target[at.upperBound...].firstIndex(of: "/") else {
            throw OutageCluster.OutageError("not a postgresql://user:pw@host:port/db URL: \(target)")
        }
        let hostPort = target[at.upperBound..<slash]
        let parts = hostPort.split(separator: ":")
        let host = String(parts[0])
        let port = parts.count > 1 ? String(parts[1]) : "5432"
        let scriptPath = dir.appendingPathComponent("proxy.py").path
        let portFile = dir.appendingPathComponent("proxy.port").path
        try Self.script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        let spec = LaunchSpec(
            job: "proxy-under-test", runID: RunID(rawValue: UUID().uuidString), executable: "/usr/bin/python3",
            arguments: ["/usr/bin/python3", scriptPath, host, port, portFile],
            environment: ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"],
            workdir: dir.path, timeoutMs: 120_000, killGraceMs: 1000)
        var launch = spec
        launch.useCgroup = false
        handle = await (try TestRunner.shared()).start(launch) { _ in }
        let deadline = ContinuousClock.now + .seconds(10)
        var listening: String?
        while ContinuousClock.now < deadline, handle.completionIfFinished == nil {
            if let p = try? String(contentsOfFile: portFile, encoding: .utf8), !p.isEmpty {
                listening = p
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        guard let listening else { throw OutageCluster.OutageError("the proxy did not start") }
        url = String(target[..<at.upperBound]) + "127.0.0.1:" + listening + String(target[slash...])
    }

    /// Cuts the connection: the forwarder and every socket it holds go at once.
    func kill() {
        if handle.completionIfFinished == nil, let pid = handle.pid { _ = Glibc.kill(pid, SIGKILL) }
    }
}
