import Foundation
import SundialCore
import SundialRuntime
import SundialTesting
import Synchronization
import Testing

/// The agent's own crash, 50 times: the real agent is killed with SIGKILL at seeded random
/// moments while jobs of 1–3 s run under `forbid`, `queue` and `allow`, restarted each time and
/// sent `sundial trigger`s over the control socket. Throughout, /proc is sampled: a `forbid`
/// job never has two live copies. At the end no job process is left over, no scheduled
/// instant ran twice, and every run has exactly one recorded outcome. About 1–2 minutes.
@Suite("Agent crash loop with runs in flight (adoption)", .offPool)
struct AdoptionCrashLoopTests {
    static let kills = ProcessInfo.processInfo.environment["SUNDIAL_LONG_TESTS"] == "1" ? 200 : 50

    static func config(mark: String) -> String {
        """
        version: 1
        defaults: { env: { CRASH_MARK: "\(mark)" } }
        jobs:
          solo: { every: 1s, command: [sleep, "2"], concurrency: forbid }
          line: { every: 2s, command: [sleep, "1.5"], concurrency: queue }
          many: { every: 1s, command: [sleep, "1"], concurrency: allow }
          hand: { command: [sleep, "3"], concurrency: forbid }
        """
    }

    /// Samples the live copies of the `forbid` jobs until stopped; keeps the worst seen.
    final class Sampler: Sendable {
        let worst = Mutex<[String: [String]]>([:])
        let samples = Atomic<Int>(0)
        let stopped = Atomic<Bool>(false)

        /// Samples every 25 ms until stopped, on a thread of its own: a scan of /proc takes
        /// tens of milliseconds, and done from a task it would keep one of the test pool's two
        /// threads busy for the whole test, starving the tests running beside it.
        func run(mark: String) async {
            await offPool { [self] in
                while !stopped.load(ordering: .acquiring) {
                    let live = AgentAdoptionTests.jobProcesses(marked: "CRASH_MARK", mark)
                    for job in ["solo", "hand"] {
                        let runs = live.filter { $0.job == job }.map(\.run)
                        if runs.count > 1 { worst.withLock { if ($0[job]?.count ?? 0) < runs.count { $0[job] = runs } } }
                    }
                    samples.add(1, ordering: .relaxed)
                    usleep(25_000)
                }
            }
        }
    }

    @Test(.timeLimit(.minutes(5)))
    func fiftyKillsWithLongRunsInFlight() async throws {
        let root = try CLI.tempDir()
        let mark = UUID().uuidString
        defer {
            AgentAdoptionTests.killAll(marked: "CRASH_MARK", mark)
            try? FileManager.default.removeItem(at: root)
        }
        let jobs = root.appendingPathComponent("jobs").path
        let state = root.appendingPathComponent("state").path
        try FileManager.default.createDirectory(atPath: jobs, withIntermediateDirectories: true)
        try Self.config(mark: mark).write(toFile: jobs + "/jobs.yaml", atomically: true, encoding: .utf8)

        let sampler = Sampler()
        let sampling = Task { await sampler.run(mark: mark) }
        var random = SeededRandom(seed: 50_000_017)
        var events: [JSONValue] = []
        var adopted = 0
        for round in 0..<Self.kills {
            let agent = try await StdoutAgent.start([jobs, "--state", state], limit: 30)
            // Most kills come after the triggers, some during start-up.
            if round % 7 != 3 {
                _ = await agent.waitFor(timeout: .seconds(10)) { !$0.events("agent.started").isEmpty }
                for job in ["hand", "solo", "line", "many"] where random.nextUnit() < 0.6 {
                    let r = try await CLI.run(["trigger", job, "--state", state], timeout: 10)
                    #expect(r.status == 0 || r.status == 1, "round \(round): trigger \(job): \(r.stderr)")
                }
            }
            let delay = 0.02 + random.nextUnit() * 0.9
            try await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
            let end = await agent.stop(SIGKILL)
            #expect(end.signal == SIGKILL, "round \(round): the agent ended by itself: \(agent.stderrText)")
            events += agent.events
            adopted += agent.events("run.adopted").count
        }
        // A last, clean life: adopts what still runs, lets it end, and stops gracefully.
        let last = try await StdoutAgent.start([jobs, "--state", state], limit: 60)
        #expect(await last.waitFor { !$0.events("agent.started").isEmpty }, "\(last.stderrText)")
        adopted += last.events("run.adopted").count
        let quiet = await last.waitFor(timeout: .seconds(8)) { _ in
            AgentAdoptionTests.jobProcesses(marked: "CRASH_MARK", mark).allSatisfy { $0.job != "hand" }
        }
        #expect(quiet)
        #expect(await last.stop(SIGTERM).exitCode == 0, "\(last.stderrText)")
        events += last.events
        sampler.stopped.store(true, ordering: .releasing)
        await sampling.value

        // No job process is left over: the clean stop ended every run, adopted ones included.
        var leftovers: [(pid: Int32, job: String, run: String)] = []
        let clean = await waitUntilAsync(seconds: 5) {
            leftovers = AgentAdoptionTests.jobProcesses(marked: "CRASH_MARK", mark)
            return leftovers.isEmpty
        }
        #expect(clean, "left over: \(leftovers)")
        // A forbid job never had two live copies.
        #expect(sampler.worst.withLock { $0 }.isEmpty, "two copies at once: \(sampler.worst.withLock { $0 })")
        #expect(sampler.samples.load(ordering: .relaxed) > 100)
        #expect(adopted > 0, "no run was ever adopted")

        // The log: no scheduled instant started twice, across all lives.
        var seen = Set<String>()
        for e in events where e.name == "run.started" && e["attempt"] == .int(1) {
            guard let trigger = e["trigger"]?.stringValue, trigger == "schedule" || trigger == "catchup" else { continue }
            let key = "\(e["job"]?.stringValue ?? "") \(e["scheduled_for"]?.stringValue ?? "")"
            #expect(seen.insert(key).inserted, "\(key) started twice")
        }
        // The database: every run that started has exactly one outcome; none is in flight.
        let store = try SQLiteStateStore(path: state + "/state.db")
        defer { try? store.close() }
        var runs: [String: RunSummary] = [:]
        for job in ["solo", "line", "many", "hand"] {
            for r in try store.history(job: job, limit: 1000) {
                #expect(runs.updateValue(r, forKey: r.id.rawValue) == nil, "run \(r.id) twice")
            }
        }
        #expect(try store.restore().inFlight.isEmpty)
        var instants = Set<String>()
        for r in runs.values where r.trigger == .schedule || r.trigger == .catchup {
            #expect(instants.insert("\(r.job) \(r.scheduledFor.map { "\($0)" } ?? "?")").inserted, "\(r.job) ran an instant twice")
        }
        let startedIDs = Set(events.filter { $0.name == "run.started" }.compactMap { $0["run_id"]?.stringValue })
        for id in startedIDs {
            let run = runs[id]
            #expect(run?.outcome != nil && run?.finishedAt != nil, "run \(id) has no recorded outcome")
        }
        // Adopted runs end `unknown` (or `interrupted` when stopped): never a made-up success.
        for e in events where e.name == "run.finished" && e["adopted"] == .bool(true) {
            #expect(["unknown", "interrupted", "timeout"].contains(e["outcome"]?.stringValue ?? ""), "\(e)")
        }
        print(
            "adoption crash loop: \(Self.kills) kills, \(startedIDs.count) runs, \(adopted) adoptions, "
                + "\(sampler.samples.load(ordering: .relaxed)) samples of /proc")
    }
}

/// Polls `condition` every 20 ms for up to `seconds`.
func waitUntilAsync(seconds: Double, _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}
