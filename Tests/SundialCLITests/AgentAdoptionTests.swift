import Foundation
import SundialCore
import SundialRuntime
import SundialTesting
import Testing

/// The real agent surviving its own crash: runs still alive after a `kill -9` of the agent are
/// adopted (or killed, per `on_agent_restart`) by the next agent, `concurrency` holds across
/// the restart, a recycled pid is never touched, and a removed state directory or a lost
/// database is reported.
@Suite("Agent restart: adoption and the state directory, end to end", .offPool)
struct AgentAdoptionTests {
    typealias Scratch = AgentStateTests.Scratch

    /// Live job processes (process-group leaders) carrying `NAME=VALUE` in their environment,
    /// with their `SUNDIAL_JOB` and `SUNDIAL_RUN_ID`.
    static func jobProcesses(marked name: String, _ value: String) -> [(pid: Int32, job: String, run: String)] {
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init)
        var out: [(Int32, String, String)] = []
        for pid in pids {
            guard let stat = ProcessProbe.stat(pid), !stat.isZombie, stat.processGroup == pid,
                let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ")
            else { continue }
            var env: [String: String] = [:]
            for entry in data.split(separator: 0) {
                let text = String(decoding: entry, as: UTF8.self)
                if let eq = text.firstIndex(of: "=") { env[String(text[..<eq])] = String(text[text.index(after: eq)...]) }
            }
            guard env[name] == value else { continue }
            out.append((pid, env["SUNDIAL_JOB"] ?? "", env["SUNDIAL_RUN_ID"] ?? ""))
        }
        return out
    }

    /// Kills whatever a test left behind (bounded cleanup for failing tests).
    static func killAll(marked name: String, _ value: String) {
        for p in jobProcesses(marked: name, value) { kill(-p.pid, SIGKILL) }
    }

    @Test func aRunAliveAfterAKillNineIsAdoptedAndNeverRunsTwice() async throws {
        let s = try Scratch()
        let mark = UUID().uuidString
        defer {
            Self.killAll(marked: "ADOPT_MARK", mark)
            s.remove()
        }
        try s.write(
            """
            version: 1
            defaults: { env: { ADOPT_MARK: "\(mark)" } }
            jobs:
              long: { command: [sleep, "5"] }
              doomed: { command: [sleep, "30"], on_agent_restart: kill }
            """)
        let first = try await StdoutAgent.start([s.jobs, "--state", s.state], limit: 60)
        #expect(await first.waitFor { !$0.events("agent.started").isEmpty }, "\(first.stderrText)")
        for job in ["long", "doomed"] {
            let r = try await CLI.run(["trigger", job, "--state", s.state])
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        }
        #expect(await first.waitFor { $0.events("run.started").count == 2 })
        let longRun = try #require(first.events("run.started", job: "long").first?["run_id"]?.stringValue)
        let doomedPid = try #require(first.events("run.started", job: "doomed").first?["pid"]?.int)
        #expect(await first.stop(SIGKILL).signal == SIGKILL)

        let second = try await StdoutAgent.start([s.jobs, "--state", s.state], limit: 60)
        defer { _ = kill(second.pid, SIGKILL) }
        #expect(await second.waitFor { $0.events("run.adopted").count == 2 }, "\(second.stdoutLines.suffix(10)) \(second.stderrText)")
        #expect(second.events("run.adopted", job: "long").first?["run_id"]?.stringValue == longRun)
        #expect(second.events("run.adopted", job: "doomed").first?["on_agent_restart"]?.stringValue == "kill")
        // forbid holds across the restart: the trigger is skipped, one copy runs.
        let again = try await CLI.run(["trigger", "long", "--state", s.state])
        #expect(again.status == 1 && again.stdout.contains("skipped"), "\(again.stdout)\(again.stderr)")
        #expect(Self.jobProcesses(marked: "ADOPT_MARK", mark).filter { $0.job == "long" }.map(\.run) == [longRun])
        let status = try await CLI.run(["status", "--state", s.state])
        #expect(status.stdout.contains(longRun), "\(status.stdout)")
        // on_agent_restart: kill — the process is gone and the run recorded interrupted.
        #expect(await second.waitFor { !$0.events("run.finished", job: "doomed").isEmpty })
        #expect(second.events("run.finished", job: "doomed").first?["outcome"]?.stringValue == "interrupted")
        #expect(ProcessProbe.stat(Int32(doomedPid)).map { $0.isZombie } ?? true, "the doomed run still runs")
        // The adopted run ends by itself: recorded once, outcome unknown, adopted.
        #expect(await second.waitFor(timeout: .seconds(10)) { !$0.events("run.finished", job: "long").isEmpty })
        let end = try #require(second.events("run.finished", job: "long").first)
        #expect(end["outcome"]?.stringValue == "unknown" && end["adopted"] == .bool(true) && end["run_id"]?.stringValue == longRun)
        let next = try await CLI.run(["trigger", "long", "--state", s.state])
        #expect(next.status == 0, "\(next.stdout)")
        let history = try await CLI.run(["history", "long", "--state", s.state])
        #expect(history.stdout.contains("unknown (adopted after an agent restart)"), "\(history.stdout)\(history.stderr)")
        #expect(await second.stop(SIGTERM).exitCode == 0, "\(second.stderrText)")
    }

    @Test func aRecycledPIDIsNeitherAdoptedNorKilled() async throws {
        let s = try Scratch()
        defer { s.remove() }
        try s.write("version: 1\njobs:\n  long: { command: [sleep, \"5\"], on_agent_restart: kill }\n")
        // A live process that is not the run's: its pid, but another start time (a recycled pid).
        var stranger = JobSpec(id: "stranger", command: .argv(["sleep", "30"]))
        stranger.workdir = "/tmp"
        let strangerID = RunID(rawValue: "STRANGER-\(UUID().uuidString)")
        let handle = await (try TestRunner.shared()).start(job: stranger, runID: strangerID, attempt: 1) { _ in }
        defer { try? TestRunner.shared().terminate(strangerID, grace: .zero) }
        let strangerPid = try #require(handle.pid)
        var identity = try #require(ProcessProbe.identity(of: strangerPid))
        identity.startTicks += 100
        try FileManager.default.createDirectory(atPath: s.state, withIntermediateDirectories: true)
        let seeded = try SQLiteStateStore(path: s.database)
        let old = RunID(rawValue: "01OLDRUN000000000000000000")
        try seeded.apply([
            .runStarted(RunRecord(id: old, job: "long", trigger: .manual, scheduledFor: nil, startedAt: Instant(unixMillis: 1_000))),
            .processStarted(runID: old, attempt: 1, identity: identity),
        ])
        try seeded.close()

        let agent = try await StdoutAgent.start([s.jobs, "--state", s.state], limit: 30)
        #expect(await agent.waitFor { !$0.events("run.finished").isEmpty }, "\(agent.stderrText)")
        #expect(agent.events("run.finished").first?["outcome"]?.stringValue == "interrupted")
        #expect(agent.events("run.adopted").isEmpty)
        try await Task.sleep(for: .milliseconds(200))
        #expect(handle.completionIfFinished == nil, "the stranger was killed")
        #expect(await agent.stop(SIGTERM).exitCode == 0)
        #expect(handle.completionIfFinished == nil, "the stranger was killed at shutdown")
    }

    @Test func removingTheStateDirectoryStopsTheAgentWithAgentFatal() async throws {
        let s = try Scratch()
        defer { s.remove() }
        try s.write("version: 1\njobs:\n  a: { every: 1h, command: [/bin/true] }\n")
        let agent = try await StdoutAgent.start([s.jobs, "--state", s.state], limit: 30)
        #expect(await agent.waitFor { !$0.events("agent.started").isEmpty })
        // The agent may react while the removal is still walking the directory (and remove its
        // socket first): a vanished entry is not a failure of the removal, so retry (bounded).
        for _ in 0..<20 where FileManager.default.fileExists(atPath: s.state) {
            try? FileManager.default.removeItem(atPath: s.state)
        }
        #expect(!FileManager.default.fileExists(atPath: s.state))
        let end = await agent.handle.completion()  // bounded by the agent's 30 s limit
        #expect(end.exitCode == 1, "\(agent.stderrText)")
        let fatal = try #require(agent.events("agent.fatal").first, "\(agent.stdoutLines.suffix(5))")
        #expect(fatal["level"]?.stringValue == "error")
        #expect(fatal["reason"]?.stringValue?.contains(s.state) == true, "\(fatal)")
    }

    @Test func anEmptyDatabaseInAUsedDirectoryGivesStateReset() async throws {
        let s = try Scratch()
        defer { s.remove() }
        try s.write("version: 1\njobs:\n  a: { every: 1h, command: [/bin/true] }\n")
        let first = try await StdoutAgent.start([s.jobs, "--state", s.state], limit: 30)
        #expect(await first.waitFor { !$0.events("agent.started").isEmpty })
        #expect(first.events("state.reset").isEmpty, "a first start lost nothing")
        #expect(await first.stop().exitCode == 0)
        #expect(FileManager.default.fileExists(atPath: s.state + "/state.id"))
        // A restore gone wrong: the database is emptied.
        try Data().write(to: URL(fileURLWithPath: s.database))
        let second = try await StdoutAgent.start([s.jobs, "--state", s.state], limit: 30)
        #expect(await second.waitFor { !$0.events("agent.started").isEmpty })
        let reset = try #require(second.events("state.reset").first, "\(second.stdoutLines.prefix(5))")
        #expect(reset["level"]?.stringValue == "warn")
        #expect(reset["reason"]?.stringValue?.contains("is empty (0 bytes)") == true)
        #expect(await second.stop().exitCode == 0)
    }
}
