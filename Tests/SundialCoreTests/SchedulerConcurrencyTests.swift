import SundialCore
import SundialTesting
import Testing

/// A job every 10 minutes whose runs take 25 minutes: longer than its interval.
@Suite("Scheduler concurrency", .offPool)
struct SchedulerConcurrencyTests {
    func slowJob(_ policy: ConcurrencyPolicy) -> JobSpec {
        job("slow", .every(intervalMs: 10 * minute, offsetMs: 0)) { $0.concurrency = policy }
    }
    let script: [JobID: [SimulatedAttempt]] = ["slow": [succeed(ms: 25 * minute)]]

    @Test("forbid: fires while a run is active are skipped with reason overlap")
    func forbid() {
        let events = simulate([slowJob(.forbid)], to: at(hour), script: script)
        // Runs at 10, 40 (ends 65); fires at 20, 30, 50, 60 overlap.
        #expect(events.named("run.started").map(\.ts) == [at(10 * minute), at(40 * minute)])
        let skipped = events.named("run.skipped")
        #expect(skipped.map(\.reason) == ["overlap", "overlap", "overlap", "overlap"])
        #expect(skipped.map(\.scheduledFor) == [20, 30, 50, 60].map { at($0 * minute).description })
    }

    @Test("allow: every fire starts, runs overlap")
    func allow() {
        let events = simulate([slowJob(.allow)], to: at(hour), script: script)
        #expect(events.named("run.started").count == 6)
        #expect(events.named("run.skipped").isEmpty)
        // At 30 min, the runs of 10, 20 and 30 are all active.
        var sim = Simulator(jobs: jobSet([slowJob(.allow)]), calculator: FakeCalculator(), script: script)
        sim.run(from: t0, to: at(30 * minute)) { _, _ in }
        #expect(sim.scheduler.activeRuns(of: "slow").count == 3)
    }

    @Test("queue: at most one fire waits and starts when the active run ends; further ones skip")
    func queue() {
        let events = simulate([slowJob(.queue)], to: at(hour), script: script)
        let starts = events.named("run.started")
        // 10 runs to 35; 20 waits and starts at 35 (to 60); 30 overlaps (20 is waiting);
        // 40 waits, 50 overlaps; 40 starts at 60; 60 waits.
        #expect(starts.map(\.ts) == [at(10 * minute), at(35 * minute), at(60 * minute)])
        #expect(starts.map(\.scheduledFor) == [10, 20, 40].map { at($0 * minute).description })
        #expect(events.named("run.skipped").map(\.scheduledFor) == [30, 50].map { at($0 * minute).description })
    }

    @Test("replace: the active run is terminated with kill_grace, and the new one starts when it has ended")
    func replace() {
        var spec = slowJob(.replace)
        spec.killGraceMs = 3000
        var s = Scheduler(jobs: jobSet([spec]), calculator: FakeCalculator(), random: SeededRandom(seed: 1))
        _ = s.handle(.start(restored: RestoredState(), reboot: true), at: t0)
        let first = s.handle(.tick, at: at(10 * minute)).launches[0]
        _ = s.handle(.attemptLaunched(runID: first.runID, attempt: 1, pid: 10), at: at(10 * minute))
        let second = s.handle(.tick, at: at(20 * minute))
        #expect(second.launches.isEmpty)
        #expect(second.contains(.terminate(runID: first.runID, graceMs: 3000, reason: .replaced)))
        // A third fire before the first has ended supersedes the waiting second one.
        let third = s.handle(.tick, at: at(30 * minute))
        #expect(third.terminations.isEmpty && third.launches.isEmpty)
        #expect(third.events.named("run.skipped").map(\.scheduledFor) == [at(20 * minute).description])
        let ended = s.handle(
            .attemptFinished(runID: first.runID, attempt: 1, outcome: .signal(15), durationMs: 20 * minute + 2000),
            at: at(30 * minute + 2000))
        #expect(ended.launches.map(\.scheduledFor) == [at(30 * minute)])

        // Through the simulator: each fire replaces the previous run.
        let events = simulate([slowJob(.replace)], to: at(hour), script: script)
        #expect(events.named("run.started").count == 6)
        #expect(events.named("run.finished").map(\.outcome) == ["signal", "signal", "signal", "signal", "signal"])
    }

    @Test("manual trigger honours concurrency: forbid skips, queue waits once")
    func manualTrigger() throws {
        for (policy, expected) in [
            (ConcurrencyPolicy.forbid, [TriggerResult.skipped(.overlap), .skipped(.overlap)]),
            (.queue, [.queued, .skipped(.overlap)]),
        ] {
            var s = makeScheduler([job("m") { $0.concurrency = policy }])
            _ = s.handle(.start(restored: RestoredState(), reboot: true), at: t0)
            let first = s.handle(.trigger("m"), at: at(1))
            let order = try #require(first.launches.first)
            #expect(first.triggerResults == [.started(order.runID)])
            let second = s.handle(.trigger("m"), at: at(2))
            let third = s.handle(.trigger("m"), at: at(3))
            #expect(second.triggerResults + third.triggerResults == expected)
            if policy == .forbid {
                #expect(second.events.named("run.skipped").first?.reason == "overlap")
            }
            let done = s.handle(.attemptFinished(runID: order.runID, attempt: 1, outcome: .success(exitCode: 0), durationMs: 5), at: at(6))
            #expect(done.launches.map(\.trigger) == (policy == .queue ? [.manual] : []))
        }
    }

    @Test("allow is bounded: at most maxActiveRunsPerJob runs of one job")
    func allowBounded() {
        let spec = job("hang", .every(intervalMs: minute, offsetMs: nil)) { $0.concurrency = .allow }
        var sim = Simulator(
            jobs: jobSet([spec]), calculator: FakeCalculator(), script: ["hang": [succeed(ms: 100 * day)]],
            options: SchedulerOptions(maxActiveRunsPerJob: 5))
        let events = sim.events(from: t0, to: at(10 * minute))
        #expect(events.named("run.started").count == 5)
        #expect(events.named("run.skipped").count == 5)
    }
}
