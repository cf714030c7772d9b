import Foundation
import SundialCore
import SundialRuntime
import SundialTesting
import Testing

/// The real `sundial run` against a state directory: catch-up across restarts, a damaged
/// database, a second agent, the client commands and `--hold-until-synced` (issue 7).
@Suite("Agent state and control, end to end", .offPool)
struct AgentStateTests {
    /// A scratch directory with a `jobs/` config folder and a `state/` path.
    struct Scratch {
        let root: URL
        var jobs: String { root.appendingPathComponent("jobs").path }
        var state: String { root.appendingPathComponent("state").path }
        var database: String { state + "/state.db" }
        init() throws {
            root = try CLI.tempDir()
            try FileManager.default.createDirectory(atPath: root.appendingPathComponent("jobs").path, withIntermediateDirectories: true)
        }
        func write(_ yaml: String, as name: String = "jobs.yaml") throws {
            try yaml.write(toFile: jobs + "/" + name, atomically: true, encoding: .utf8)
        }
        func remove() { try? FileManager.default.removeItem(at: root) }
    }

    static func nowSeconds() -> Int64 { Int64(Date().timeIntervalSince1970) }

    // MARK: - Catch-up after downtime, per policy

    /// A previous agent fired each job 33 minutes ago and died; since then three fires of each
    /// (10-minute period) were missed, the newest 3 minutes ago — later than the 60 s tolerance,
    /// so it is a missed fire, not a late one.
    @Test func catchupAfterDowntimeFollowsEachPolicy() async throws {
        let s = try Scratch()
        defer { s.remove() }
        let now = Self.nowSeconds()
        let newestMissed = now - 180
        let offset = ((newestMissed % 600) + 600) % 600
        let lastFired = newestMissed - 3 * 600
        try s.write(
            """
            version: 1
            jobs:
              c-none: { every: 10m, offset: \(offset)s, command: [/bin/true], catchup: none }
              c-latest: { every: 10m, offset: \(offset)s, command: [/bin/true], catchup: latest }
              c-all: { every: 10m, offset: \(offset)s, command: [/bin/true], catchup: all }
              c-window: { every: 10m, offset: \(offset)s, command: [/bin/true], catchup: all, catchup_window: 15m }
            """)
        // The previous agent's state: each job last fired at `lastFired`, alive a minute later.
        try FileManager.default.createDirectory(atPath: s.state, withIntermediateDirectories: true)
        let seeded = try SQLiteStateStore(path: s.database)
        for job in ["c-none", "c-latest", "c-all", "c-window"] {
            try seeded.apply([.fired(job: job, scheduledFor: Instant(unixSeconds: lastFired))])
        }
        try seeded.markAlive(now: Instant(unixSeconds: lastFired + 60))
        try seeded.close()

        let agent = try await StdoutAgent.start([s.jobs, "--state", s.state])
        let done = await agent.waitFor { a in
            a.events("run.finished", job: "c-all").count == 3 && a.events("run.finished", job: "c-window").count == 2
                && a.events("run.finished", job: "c-latest").count == 1 && !a.events("run.skipped", job: "c-none").isEmpty
        }
        #expect(done, "catch-up did not happen: \(agent.stdoutLines.suffix(20))")

        func instants(_ job: String) -> [Int64] {
            agent.events("run.started", job: job).compactMap { e in
                e["trigger"]?.stringValue == "catchup" ? e["scheduled_for"]?.stringValue.flatMap { try? RFC3339.parse($0).instant.unixMillis / 1000 } : nil
            }
        }
        let missed = [newestMissed - 1200, newestMissed - 600, newestMissed]
        #expect(instants("c-none") == [])
        #expect(instants("c-latest") == [newestMissed])
        #expect(instants("c-all") == missed)
        #expect(instants("c-window") == Array(missed.suffix(2)))
        let noneSkip = agent.events("run.skipped", job: "c-none")
        #expect(noneSkip.map { $0["reason"]?.stringValue } == ["missed"])
        #expect(noneSkip.first?["count"] == .int(3))
        #expect(agent.events("run.skipped", job: "c-latest").first?["count"] == .int(2))
        #expect(agent.events("run.skipped", job: "c-all").isEmpty)

        // `why` reads the same story from the ledger.
        let why = try await CLI.run(["why", "c-latest", "--state", s.state])
        #expect(why.status == 0, "\(why.stderr)")
        #expect(why.stdout.contains("missed while the agent was down"))
        #expect(why.stdout.contains("caught up after downtime"))
        #expect(await agent.stop().exitCode == 0)
    }

    /// Real restarts with per-second schedules: SIGTERM, then `kill -9`. No instant runs twice;
    /// `catchup: all` runs what the downtime missed, `none` logs it as missed.
    @Test func restartsWithShortSchedulesNeverRepeatAnInstant() async throws {
        let s = try Scratch()
        defer { s.remove() }
        try s.write(
            """
            version: 1
            jobs:
              s-none: { schedule: "*/2 * * * * *", command: [/bin/true] }
              s-all: { schedule: "*/2 * * * * *", catchup: all, command: [/bin/true] }
              beat: { every: 1s, command: [/bin/true] }
            """)
        var started: [JSONValue] = []
        for (round, signal) in [SIGTERM, SIGKILL, SIGTERM].enumerated() {
            let agent = try await StdoutAgent.start([s.jobs, "--state", s.state])
            let ran = await agent.waitFor { a in
                a.events("run.finished", job: "s-none").count >= 1 && a.events("run.finished", job: "s-all").count >= 2
            }
            #expect(ran, "round \(round): \(agent.stdoutLines.suffix(10)) \(agent.stderrText)")
            if round > 0 {
                // Downtime of 4 s: at least one even second of each job was missed.
                #expect(
                    agent.events("run.started", job: "s-all").contains { $0["trigger"]?.stringValue == "catchup" },
                    "round \(round): no catch-up for s-all")
                #expect(
                    agent.events("run.skipped", job: "s-none").contains { $0["reason"]?.stringValue == "missed" },
                    "round \(round): no missed summary for s-none")
                #expect(!agent.events("run.started", job: "s-none").contains { $0["trigger"]?.stringValue == "catchup" })
            }
            started += agent.events("run.started")
            let end = await agent.stop(signal)
            #expect(end.signal == (signal == SIGKILL ? SIGKILL : nil) && (signal == SIGKILL || end.exitCode == 0))
            if round < 2 { try await Task.sleep(for: .seconds(4)) }
        }
        var seen = Set<String>()
        for e in started where e["attempt"] == .int(1) && e["job"]?.stringValue != "beat" {
            let key = "\(e["job"]?.stringValue ?? "?") \(e["scheduled_for"]?.stringValue ?? "?")"
            #expect(seen.insert(key).inserted, "ran twice: \(key)")
        }
        #expect(seen.count >= 6)
    }

    /// `@reboot` runs at the first start of a boot only: restarts in the same boot (SIGTERM as
    /// a package upgrade does, or a crash) do not run it again. The heartbeat job shows each
    /// agent got far enough to have fired it.
    @Test func atRebootIsNotRerunByRestartsWithinTheSameBoot() async throws {
        let s = try Scratch()
        defer { s.remove() }
        try s.write(
            """
            version: 1
            jobs:
              boot: { schedule: "@reboot", command: [/bin/true] }
              beat: { every: 1s, command: [/bin/true] }
            """)
        var bootRuns: [Int] = []
        for signal in [SIGTERM, SIGKILL, SIGTERM] {
            let agent = try await StdoutAgent.start([s.jobs, "--state", s.state])
            let ran = await agent.waitFor { a in a.events("run.finished", job: "beat").count >= 1 }
            #expect(ran, "\(agent.stdoutLines.suffix(10)) \(agent.stderrText)")
            bootRuns.append(agent.events("run.started", job: "boot").count)
            _ = await agent.stop(signal)
        }
        #expect(bootRuns == [1, 0, 0])
    }

    /// A pause survives a restart (and a crash): the next agent skips the job's fires as
    /// `paused` from its first tick, until `resume`.
    @Test func aPauseSurvivesRestarts() async throws {
        let s = try Scratch()
        defer { s.remove() }
        try s.write(
            """
            version: 1
            jobs:
              beat: { every: 1s, command: [/bin/true] }
              other: { every: 1s, command: [/bin/true] }
            """)
        let first = try await StdoutAgent.start([s.jobs, "--state", s.state])
        #expect(await first.waitFor { $0.events("run.finished", job: "beat").count >= 1 })
        let pause = try await CLI.run(["pause", "beat", "--state", s.state])
        #expect(pause.status == 0, "\(pause.stderr)")
        _ = await first.stop(SIGKILL)
        for signal in [SIGTERM, SIGTERM] {
            let agent = try await StdoutAgent.start([s.jobs, "--state", s.state])
            let skipped = await agent.waitFor { a in
                a.events("run.skipped", job: "beat").contains { $0["reason"]?.stringValue == "paused" }
                    && a.events("run.finished", job: "other").count >= 2
            }
            #expect(skipped, "\(agent.stdoutLines.suffix(10))")
            #expect(agent.events("run.started", job: "beat").isEmpty, "a paused job ran after a restart")
            _ = await agent.stop(signal)
        }
        let last = try await StdoutAgent.start([s.jobs, "--state", s.state])
        #expect(await last.waitFor { $0.events("run.finished", job: "other").count >= 1 })
        let resume = try await CLI.run(["resume", "beat", "--state", s.state])
        #expect(resume.status == 0, "\(resume.stderr)")
        #expect(await last.waitFor { $0.events("run.finished", job: "beat").count >= 1 })
        _ = await last.stop(SIGTERM)
    }

    // MARK: - Damaged database, second agent

    @Test(arguments: ["garbage", "truncated"])
    func aDamagedDatabaseStopsTheAgentUntilResetState(kind: String) async throws {
        let s = try Scratch()
        defer { s.remove() }
        try s.write("version: 1\njobs:\n  a: { every: 1h, command: [/bin/true] }\n")
        try FileManager.default.createDirectory(atPath: s.state, withIntermediateDirectories: true)
        if kind == "garbage" {
            try Data(repeating: 0x5A, count: 64 * 1024).write(to: URL(fileURLWithPath: s.database))
        } else {
            // A real database, cut in the middle (as a full disk or a bad copy would leave it).
            let store = try SQLiteStateStore(path: s.database)
            for i in 0..<2000 {
                let id = RunID(rawValue: String(format: "01J%023d", i))
                try store.apply([.runStarted(RunRecord(id: id, job: "a", trigger: .manual, scheduledFor: nil, startedAt: Instant(unixSeconds: Int64(i))))])
            }
            try store.close()
            let size = try #require(try FileManager.default.attributesOfItem(atPath: s.database)[.size] as? Int)
            let fh = try FileHandle(forWritingTo: URL(fileURLWithPath: s.database))
            try fh.truncate(atOffset: UInt64(size / 2))
            try fh.close()
        }
        let refused = try await CLI.run(["run", s.jobs, "--state", s.state], timeout: 20)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("corrupt") || refused.stderr.contains("not a Sundial database"), "\(refused.stderr)")
        #expect(refused.stderr.contains("--reset-state"))

        let agent = try await StdoutAgent.start([s.jobs, "--state", s.state, "--reset-state"])
        #expect(await agent.waitFor { !$0.events("agent.started").isEmpty }, "\(agent.stderrText)")
        #expect(agent.stderrText.contains("moved the old state database aside to \(s.database).corrupt-"))
        let kept = try FileManager.default.contentsOfDirectory(atPath: s.state).filter {
            $0.hasPrefix("state.db.corrupt-") && !$0.hasSuffix("-wal") && !$0.hasSuffix("-shm")
        }
        #expect(kept.count == 1)
        #expect(await agent.stop().exitCode == 0)
    }

    /// `--reset-state` left in a unit file wiped sound state at every restart: `@reboot` ran
    /// again in the same boot, a running job was neither adopted nor stopped. A sound database
    /// is kept.
    @Test func resetStateKeepsASoundDatabase() async throws {
        let s = try Scratch()
        defer { s.remove() }
        try s.write("version: 1\njobs:\n  a: { every: 1h, command: [/bin/true] }\n")
        let first = try await StdoutAgent.start([s.jobs, "--state", s.state])
        #expect(await first.waitFor { !$0.events("agent.started").isEmpty }, "\(first.stderrText)")
        #expect(try await CLI.run(["trigger", "a", "--wait", "--state", s.state], timeout: 20).status == 0)
        #expect(await first.stop().exitCode == 0)

        let again = try await StdoutAgent.start([s.jobs, "--state", s.state, "--reset-state"])
        #expect(await again.waitFor { !$0.events("agent.started").isEmpty }, "\(again.stderrText)")
        #expect(again.stderrText.contains("the state database is sound; it is kept"), "\(again.stderrText)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.state).allSatisfy { !$0.contains(".corrupt-") })
        let history = try await CLI.run(["history", "a", "--state", s.state])
        #expect(history.stdout.contains("manual"), "the run before the restart is still there: \(history.stdout)")
        #expect(await again.stop().exitCode == 0)
    }

    /// Two state directories sharing one database through a link: the directory lock did not
    /// see it, both agents ran, and planned fires were recorded twice.
    @Test func aSecondAgentOnTheSameDatabaseThroughALinkIsRefused() async throws {
        let s = try Scratch()
        defer { s.remove() }
        try s.write("version: 1\njobs:\n  a: { every: 1h, command: [/bin/true] }\n")
        let first = try await StdoutAgent.start([s.jobs, "--state", s.state])
        #expect(await first.waitFor { !$0.events("agent.started").isEmpty }, "\(first.stderrText)")
        // The database is private whatever the umask (it holds queued webhook URLs and output).
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: s.database)[.posixPermissions] as? Int)
        #expect(mode == 0o600, "state.db mode \(String(mode, radix: 8))")
        let other = s.state + "-other"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: other) }
        try FileManager.default.createSymbolicLink(atPath: other + "/state.db", withDestinationPath: s.database)
        let second = try await CLI.run(["run", s.jobs, "--state", other, "--control", other + "/s.sock"], timeout: 20)
        #expect(second.status == 1)
        #expect(second.stderr.contains("another agent is using the state database"), "\(second.stderr)")
        #expect(await first.stop().exitCode == 0)
    }

    @Test func aSecondAgentOnTheSameStateExitsOneNamingTheHolder() async throws {
        let s = try Scratch()
        defer { s.remove() }
        try s.write("version: 1\njobs:\n  a: { every: 1h, command: [/bin/true] }\n")
        let first = try await StdoutAgent.start([s.jobs, "--state", s.state])
        #expect(await first.waitFor { !$0.events("agent.started").isEmpty })
        let second = try await CLI.run(["run", s.jobs, "--state", s.state], timeout: 20)
        #expect(second.status == 1)
        #expect(second.stderr.contains("pid \(first.pid)"), "\(second.stderr)")
        // The first agent is untouched: it still answers.
        let status = try await CLI.run(["status", "--state", s.state])
        #expect(status.status == 0 && status.stdout.contains("agent pid \(first.pid)"))
        #expect(await first.stop().exitCode == 0)
    }

    // MARK: - Client commands against a real agent

    @Test func clientCommandsTalkToARunningAgent() async throws {
        let s = try Scratch()
        defer { s.remove() }
        try s.write(
            """
            version: 1
            jobs:
              hourly: { description: On the hour, schedule: "0 * * * *", timezone: UTC, command: [/bin/true] }
              slow: { shell: sleep 30, concurrency: forbid }
              quick: { command: [/bin/echo, done] }
            """)
        let socket = s.root.appendingPathComponent("ctl.sock").path
        let agent = try await StdoutAgent.start([s.jobs, "--state", s.state, "--control", socket])
        #expect(await agent.waitFor { !$0.events("agent.started").isEmpty })
        func sundial(_ args: String...) async throws -> CLI.Result { try await CLI.run(args + ["--control", socket]) }

        let status = try await sundial("status")
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.contains("agent pid \(agent.pid), version"))
        #expect(status.stdout.contains("hourly  0 * * * *"))
        #expect(status.stdout.contains("no active runs"))
        let json = try await sundial("status", "--format", "json")
        let report = try StatusReport(json: try ControlResponse(line: Array(json.stdout.utf8.dropLast())).body)
        #expect(report.jobs.map(\.id) == ["hourly", "slow", "quick"])
        #expect(report.jobs[0].next.map { $0.unixMillis % 3_600_000 == 0 } == true)
        #expect(report.jobs[0].description == "On the hour")

        let quick = try await sundial("trigger", "quick")
        #expect(quick.status == 0 && quick.stdout.hasPrefix("quick: started run "))
        let slow = try await sundial("trigger", "slow")
        #expect(slow.status == 0)
        let again = try await sundial("trigger", "slow")
        #expect(again.status == 1 && again.stdout == "slow: skipped (a run is active (concurrency: forbid))\n")
        let unknown = try await sundial("trigger", "nope")
        #expect(unknown.status == 1 && unknown.stderr == "sundial: unknown job nope\n")
        #expect(await agent.waitFor { !$0.events("run.finished", job: "quick").isEmpty })

        let active = try await sundial("status")
        #expect(active.stdout.contains("active runs:") && active.stdout.contains("slow"))
        let history = try await sundial("history", "quick", "--limit", "5")
        let row = history.stdout.split(separator: "\n").dropFirst().first ?? ""
        #expect(history.status == 0 && row.contains("manual") && row.contains("success"), "\(history.stdout)")
        let why = try await sundial("why", "hourly")
        #expect(why.status == 0 && why.stdout.contains("next fire: 20"), "\(why.stdout)")
        // Odd job names are just unknown jobs.
        for name in ["../../etc/passwd", String(repeating: "x", count: 5000), "\u{1F600}", "'; DROP TABLE runs; --"] {
            let odd = try await sundial("history", name)
            // Longer than any job id can be: refused before the agent looks for it.
            let said = name.utf8.count > 63 ? "is longer than 63 bytes, so no job has that id" : "unknown job"
            #expect(odd.status == 1 && odd.stderr.contains(said), "\(odd.stderr.prefix(200))")
        }

        try s.write("version: 1\njobs:\n  extra: { every: 1h, command: [/bin/true] }\n", as: "more.yaml")
        let reload = try await sundial("reload")
        #expect(reload.status == 0)
        #expect(reload.stdout.contains("1 added, 0 removed, 0 changed") && reload.stdout.contains("added: extra"), "\(reload.stdout)")
        try s.write("version: 1\njobs:\n  extra: { every: soon, command: [/bin/true] }\n", as: "more.yaml")
        let rejected = try await sundial("reload")
        #expect(rejected.status == 1)
        #expect(rejected.stderr.contains("more.yaml:3:"), "\(rejected.stderr)")

        #expect(await agent.stop().exitCode == 0)
        #expect(!FileManager.default.fileExists(atPath: socket), "the socket outlived the agent")
        // No agent: `status` shows the state directory's state.db instead, saying so.
        let gone = try await CLI.run(["status", "--control", socket, "--state", s.state])
        #expect(gone.status == 0 && gone.stderr.hasPrefix("sundial: no agent is answering on \(socket)"), "\(gone.stderr)")
        #expect(gone.stderr.contains("showing \(s.database) as of its last commit") && gone.stdout.contains("quick "), "\(gone.stdout)")
    }

    // MARK: - --hold-until-synced

    @Test func holdUntilSyncedHoldsCalendarJobsOnlyWhileTheKernelSaysUnsynchronised() async throws {
        let s = try Scratch()
        defer { s.remove() }
        try s.write(
            """
            version: 1
            jobs:
              cal: { schedule: "* * * * * *", command: [/bin/true] }
              beat: { every: 1s, command: [/bin/true] }
            """)
        let synced = try #require(ClockSync.kernelSaysSynchronised() as Bool?)
        let agent = try await StdoutAgent.start([s.jobs, "--state", s.state, "--hold-until-synced"])
        #expect(await agent.waitFor { $0.events("run.finished", job: "beat").count >= 3 }, "\(agent.stderrText)")
        if synced {
            #expect(agent.events("clock.synced").first?["held_ms"] == .int(0))
            #expect(!agent.events("run.started", job: "cal").isEmpty)
        } else {
            #expect(agent.events("clock.unsynced").count == 1)
            #expect(agent.events("run.started", job: "cal").isEmpty)
            #expect(agent.events("clock.synced").isEmpty)
        }
        #expect(await agent.stop().exitCode == 0)
    }
}
