import Foundation
import SundialCore
import SundialRuntime
import SundialTesting
import Testing

/// Issue 7's crash loop: the real agent, jobs firing every second, `kill -9` at seeded random
/// moments, restarted each time. Afterwards the database opens, no scheduled instant of a job
/// ran twice, and every run that started is accounted for (finished, or recorded
/// `interrupted`). 50 kills by default (about a minute); `SUNDIAL_LONG_TESTS=1` makes it 300.
@Suite("Agent crash loop", .offPool)
struct CrashLoopTests {
    static let kills = ProcessInfo.processInfo.environment["SUNDIAL_LONG_TESTS"] == "1" ? 300 : 50

    static let config = """
        version: 1
        jobs:
          tick: { schedule: "* * * * * *", shell: sleep 0.3 }
          beat: { every: 1s, command: [/bin/true] }
          slow:
            schedule: "* * * * * *"
            shell: sleep 2
            retry: { attempts: 3, delay: 100ms }
          flaky:
            schedule: "*/2 * * * * *"
            shell: exit 3
            retry: { attempts: 2, delay: 200ms }
          later: { schedule: "*/3 * * * * *", catchup: all, command: [/bin/true] }
        """

    struct Started: Hashable {
        var job: String
        var runID: String
        var scheduledFor: String
        var trigger: String
    }

    @Test(.timeLimit(.minutes(5)))
    func killNineFiftyTimesLosesNoRunAndRepeatsNoInstant() async throws {
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let jobs = root.appendingPathComponent("jobs").path
        let state = root.appendingPathComponent("state").path
        try FileManager.default.createDirectory(atPath: jobs, withIntermediateDirectories: true)
        try Self.config.write(toFile: jobs + "/jobs.yaml", atomically: true, encoding: .utf8)

        var random = SeededRandom(seed: 7_000_007)
        var started: [Started] = []
        var killedWhileStarting = 0
        for round in 0..<Self.kills {
            let agent = try await StdoutAgent.start([jobs, "--state", state], limit: 30)
            // Some kills land during start-up (opening, restoring), most while jobs run: those
            // count their delay from `agent.started`, so that a loaded machine's slower start
            // does not leave too few runs started to say anything.
            let duringStartUp = round % 5 == 0
            if !duringStartUp { _ = await agent.waitFor { !$0.events("agent.started").isEmpty } }
            let delay = 0.02 + random.nextUnit() * (duringStartUp ? 0.15 : 1.2)
            try await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
            let end = await agent.stop(SIGKILL)
            #expect(end.signal == SIGKILL, "round \(round): the agent ended by itself: \(agent.stderrText)")
            if agent.events("agent.started").isEmpty { killedWhileStarting += 1 }
            for e in agent.events("run.started") where e["attempt"] == .int(1) {
                started.append(
                    Started(
                        job: e["job"]?.stringValue ?? "", runID: e["run_id"]?.stringValue ?? "",
                        scheduledFor: e["scheduled_for"]?.stringValue ?? "", trigger: e["trigger"]?.stringValue ?? ""))
            }
        }
        // A last, clean life: restores (recording what was in flight), then stops gracefully.
        let last = try await StdoutAgent.start([jobs, "--state", state], limit: 60)
        #expect(await last.waitFor { !$0.events("agent.started").isEmpty }, "\(last.stderrText)")
        let status = try await CLI.run(["status", "--state", state])
        #expect(status.status == 0, "\(status.stderr)")
        #expect(await last.stop(SIGTERM).exitCode == 0, "\(last.stderrText)")

        // The log: no instant of a scheduled job started twice, across all 51 lives.
        var seen = Set<String>()
        for s in started where s.trigger == "schedule" || s.trigger == "catchup" {
            #expect(seen.insert("\(s.job) \(s.scheduledFor)").inserted, "\(s.job) ran \(s.scheduledFor) twice")
        }
        #expect(started.count > Self.kills, "too few runs started to say anything (\(started.count))")

        // The database is whole (checked here: after a last life that ended cleanly, the store
        // would skip its own check at open) and agrees.
        let probe = try SQLiteConnection(path: state + "/state.db", readOnly: true)
        #expect(try probe.rows("PRAGMA integrity_check").map { try $0.text(0) } == ["ok"])
        probe.close()
        let store = try SQLiteStateStore(path: state + "/state.db")
        defer { try? store.close() }
        var runs: [RunID: RunSummary] = [:]
        for job in ["tick", "beat", "slow", "flaky", "later"] {
            let history = try store.history(job: job, limit: 1000)
            #expect(history.count < 1000)
            for r in history { runs[r.id] = r }
            var instants = Set<Instant>()
            for r in history where r.trigger == .schedule || r.trigger == .catchup {
                #expect(instants.insert(r.scheduledFor ?? r.startedAt).inserted, "\(job): \(r.scheduledFor.map { "\($0)" } ?? "?") twice in the database")
            }
        }
        // Every run the log saw start is in the database, finished: by itself or `interrupted`.
        for s in started {
            let run = runs[RunID(rawValue: s.runID)]
            #expect(run != nil, "run \(s.runID) of \(s.job) started but is not recorded")
            #expect(run?.finishedAt != nil && run?.outcome != nil, "run \(s.runID) of \(s.job) is still in flight")
        }
        #expect(try store.restore().inFlight.isEmpty)
        let interrupted = runs.values.filter { $0.outcome == .interrupted }
        #expect(!interrupted.isEmpty, "no run was ever caught in flight")
        // Retries are bounded across crashes: the attempt count never exceeds the policy.
        #expect(runs.values.filter { $0.job == "slow" }.allSatisfy { $0.attempts <= 3 })
        #expect(runs.values.filter { $0.job == "flaky" }.allSatisfy { $0.attempts <= 2 })
        #expect(runs.values.filter { $0.job == "tick" || $0.job == "beat" || $0.job == "later" }.allSatisfy { $0.attempts <= 1 })
        print("crash loop: \(Self.kills) kills (\(killedWhileStarting) during start-up), \(started.count) runs started, \(interrupted.count) interrupted")
    }
}
