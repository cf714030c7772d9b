import SundialCore
import SundialTesting
import Testing

@Suite("Scheduler reload and shutdown", .offPool)
struct SchedulerLifecycleTests {
    @Test("reload: an unchanged job keeps its exact timing (jitter included) while a changed one is re-planned")
    func reloadKeepsUnchangedTiming() {
        let steady = job("steady", .cron("@hourly")) { $0.jitterMs = 10 * minute }
        let beat = job("beat", .every(intervalMs: 7 * minute, offsetMs: nil))
        let moving = job("moving", .cron("@hourly"))
        var moved = moving
        moved.schedule = .cron("grid:\(hour)+\(30 * minute)")
        var beatChangedCommand = beat
        beatChangedCommand.command = .argv(["/bin/echo", "hi"])

        var s = makeScheduler([steady, beat, moving])
        _ = s.handle(.start(restored: RestoredState(), reboot: true), at: t0)
        let steadyWake = s.plannedFire(of: "steady")
        let before = s.handle(.tick, at: at(20 * minute))
        _ = before
        let r = s.handle(.configReplaced(jobSet([steady, beatChangedCommand, moved])), at: at(25 * minute))
        #expect(r.launches.isEmpty)
        #expect(s.plannedFire(of: "steady") == steadyWake)
        #expect(s.plannedFire(of: "moving") == at(30 * minute))
        // beat keeps its phase (counted from the agent's start): 28 min.
        #expect(s.plannedFire(of: "beat") == at(28 * minute))

        // Same config, reload or not: steady runs at exactly the same (jittered) instants.
        func steadyStarts(reload: Bool) -> [Instant] {
            let inputs = reload ? [SimulatedInput(at: at(25 * minute), .event(.configReplaced(jobSet([steady, moved]))))] : []
            return simulate([steady, moving], to: at(5 * hour + 15 * minute), inputs: inputs).named("run.started", job: "steady").map(\.ts)
        }
        #expect(steadyStarts(reload: true) == steadyStarts(reload: false))
        #expect(steadyStarts(reload: true).count == 5)
    }

    @Test("reload: a removed job's active run finishes and is recorded, and it fires no more")
    func removedJobRunFinishes() {
        let doomed = job("doomed", .cron("@hourly")) { $0.retry = RetryPolicy(attempts: 3, backoff: .fixed, delayMs: 1000) }
        let other = job("other", .cron("@hourly"))
        let inputs = [SimulatedInput(at: at(hour + 10 * minute), .event(.configReplaced(jobSet([other]))))]
        let events = simulate(
            [doomed, other], to: at(5 * hour), script: ["doomed": [SimulatedAttempt(.failure(exitCode: 1), durationMs: 30 * minute)]],
            inputs: inputs)
        #expect(events.named("run.started", job: "doomed").count == 1)
        let finished = events.named("run.finished", job: "doomed")
        #expect(finished.count == 1 && finished[0].ts == at(hour + 30 * minute))
        // No retry for a job that no longer exists.
        #expect(events.named("run.retry_scheduled").isEmpty)
        #expect(events.named("run.started", job: "other").count == 5)
    }

    @Test("reload: re-adding a removed job does not repeat an instant it already fired")
    func readdNoRepeat() {
        let h = job("h", .cron("@hourly"))
        var s = makeScheduler([h])
        _ = s.handle(.start(restored: RestoredState(), reboot: true), at: t0)
        _ = s.handle(.tick, at: at(hour))
        _ = s.handle(.configReplaced(jobSet([])), at: at(hour + 1000))
        #expect(s.plannedFire(of: "h") == nil)
        // The wall clock steps back 10 minutes; the job is added again.
        _ = s.handle(.clockStepped(fromWall: at(hour + 2000), toWall: at(50 * minute)), at: at(50 * minute))
        _ = s.handle(.configReplaced(jobSet([h])), at: at(51 * minute))
        #expect(s.plannedFire(of: "h") == at(2 * hour))
    }

    @Test("reload: disabling a job stops its fires; needs of a changed job are kept when still listed")
    func reloadDisable() {
        let beat = job("beat", .every(intervalMs: minute, offsetMs: nil))
        var off = beat
        off.enabled = false
        let inputs = [SimulatedInput(at: at(10 * minute + 1), .event(.configReplaced(jobSet([off]))))]
        let events = simulate([beat], to: at(hour), inputs: inputs)
        #expect(events.named("run.started").count == 10)
    }

    @Test("shutdown with runs in flight: terminate each, finish waiting retries, record every outcome, then complete")
    func shutdownInFlight() throws {
        let jobs = [
            job("a", .cron("@hourly")),
            job("b", .cron("@hourly")) { $0.retry = RetryPolicy(attempts: 3, backoff: .fixed, delayMs: hour) },
            job("c", .cron("@hourly")),
        ]
        var s = makeScheduler(jobs)
        _ = s.handle(.start(restored: RestoredState(), reboot: true), at: t0)
        let launches = s.handle(.tick, at: at(hour)).launches
        #expect(launches.count == 3)
        for (i, o) in launches.enumerated() {
            _ = s.handle(.attemptLaunched(runID: o.runID, attempt: 1, pid: Int32(100 + i)), at: at(hour))
        }
        let b = launches.first { $0.job.id == "b" }!
        let failed = s.handle(.attemptFinished(runID: b.runID, attempt: 1, outcome: .failure(exitCode: 1), durationMs: 5), at: at(hour + 5))
        #expect(failed.events.named("run.retry_scheduled").count == 1)

        let stop = s.handle(.shutdown(graceMs: 30_000), at: at(hour + 10))
        let others = launches.filter { $0.job.id != "b" }.map(\.runID)
        #expect(Set(stop.terminations) == Set(others))
        #expect(stop.contains(.terminate(runID: others[0], graceMs: 30_000, reason: .shutdown)))
        #expect(stop.changes.contains(.runFinished(runID: b.runID, outcome: .failure(exitCode: 1), at: at(hour + 10))))
        #expect(!stop.shutdownCompleted)
        #expect(stop.wake == nil)

        // Nothing fires any more, not even manual triggers.
        #expect(s.handle(.tick, at: at(2 * hour)).launches.isEmpty)
        #expect(s.handle(.trigger("a"), at: at(2 * hour)).triggerResults == [.shuttingDown])

        let first = s.handle(.attemptFinished(runID: others[0], attempt: 1, outcome: .signal(15), durationMs: 10), at: at(hour + 20))
        #expect(first.events.named("run.finished").first?.outcome == "signal" && !first.shutdownCompleted)
        let last = s.handle(.attemptFinished(runID: others[1], attempt: 1, outcome: .signal(9), durationMs: 30_010), at: at(hour + 30_020))
        #expect(last.shutdownCompleted)
        #expect(last.events.named("run.retry_scheduled").isEmpty)
        #expect(s.isStopped && s.activeRunCount == 0)
    }

    /// The runner ignores a stop for a run it does not know yet, and a launch is prepared off the
    /// actor (`user:`, `group:`, `env_file`), so a stop decided while an attempt is `launching`
    /// can reach the runner before its start. The stop is sent again once the attempt reports
    /// it was launched (and only then, and only once): without it the run went on to its end
    /// and the agent's stop waited for it.
    @Test("a stop decided while an attempt is launching is sent again when it is launched")
    func stopWhileLaunchingIsRepeatedAtLaunch() throws {
        var s = makeScheduler([
            job("a", .cron("@hourly")),
            job("r", .cron("@hourly")) {
                $0.concurrency = .replace
                $0.killGraceMs = 2_000
            },
        ])
        _ = s.handle(.start(restored: RestoredState(), reboot: true), at: t0)
        let launches = s.handle(.tick, at: at(hour)).launches
        let a = try #require(launches.first { $0.job.id == "a" })
        let r = try #require(launches.first { $0.job.id == "r" })
        // `replace`: a manual run stops r while r's start is still being prepared.
        #expect(s.handle(.trigger("r"), at: at(hour + 1)).terminations == [r.runID])
        let rLaunched = s.handle(.attemptLaunched(runID: r.runID, attempt: 1, pid: 200), at: at(hour + 2))
        #expect(rLaunched.terminations == [r.runID])
        #expect(rLaunched.contains(.terminate(runID: r.runID, graceMs: 2_000, reason: .replaced)))

        // The agent stops while a's start is still being prepared.
        let stop = s.handle(.shutdown(graceMs: 30_000), at: at(hour + 10))
        #expect(stop.contains(.terminate(runID: a.runID, graceMs: 30_000, reason: .shutdown)))
        let launched = s.handle(.attemptLaunched(runID: a.runID, attempt: 1, pid: 100), at: at(hour + 20))
        #expect(launched.terminations == [a.runID])
        #expect(launched.contains(.terminate(runID: a.runID, graceMs: 30_000, reason: .shutdown)))
        #expect(launched.events.named("run.started").count == 1)
        // Once is enough: a later report of the same attempt changes nothing.
        #expect(s.handle(.attemptLaunched(runID: a.runID, attempt: 1, pid: 100), at: at(hour + 21)).terminations.isEmpty)
    }

    @Test("a stop of a running attempt is sent once")
    func stopOfARunningAttemptIsSentOnce() throws {
        var s = makeScheduler([job("a", .cron("@hourly"))])
        _ = s.handle(.start(restored: RestoredState(), reboot: true), at: t0)
        let a = try #require(s.handle(.tick, at: at(hour)).launches.first)
        _ = s.handle(.attemptLaunched(runID: a.runID, attempt: 1, pid: 100), at: at(hour))
        #expect(s.handle(.shutdown(graceMs: 500), at: at(hour + 10)).terminations == [a.runID])
        #expect(s.handle(.attemptLaunched(runID: a.runID, attempt: 1, pid: 100), at: at(hour + 20)).terminations.isEmpty)
    }

    @Test("shutdown with nothing running completes at once; queued fires are recorded skipped")
    func shutdownIdle() {
        var s = makeScheduler([job("q") { $0.concurrency = .queue }])
        _ = s.handle(.start(restored: RestoredState(), reboot: true), at: t0)
        let order = s.handle(.trigger("q"), at: at(1)).launches[0]
        #expect(s.handle(.trigger("q"), at: at(2)).triggerResults == [.queued])
        let stop = s.handle(.shutdown(graceMs: 1000), at: at(3))
        #expect(stop.events.named("run.skipped").map(\.reason) == ["shutdown"])
        #expect(stop.terminations == [order.runID])
        let done = s.handle(.attemptFinished(runID: order.runID, attempt: 1, outcome: .signal(15), durationMs: 2), at: at(4))
        #expect(done.launches.isEmpty && done.shutdownCompleted)

        var idle = makeScheduler([job("h", .cron("@hourly"))])
        _ = idle.handle(.start(restored: RestoredState(), reboot: true), at: t0)
        #expect(idle.handle(.shutdown(graceMs: 1000), at: at(5)) == [.shutdownComplete])
    }

    @Test("the timer heap stays bounded under reload churn")
    func reloadChurnBounded() {
        var jobs = (0..<50).map { job("j\($0)", .cron("@daily")) }
        var s = makeScheduler(jobs)
        _ = s.handle(.start(restored: RestoredState(), reboot: true), at: t0)
        for i in 0..<2000 {
            jobs[i % 50].schedule = .cron("grid:\(day)+\(i * 1000)")
            _ = s.handle(.configReplaced(jobSet(jobs)), at: at(Int64(i)))
        }
        #expect(s.plannedFire(of: "j0") == at(1_950_000))
        #expect(s.nextWake == at(1_950_000))
        #expect(s.timerHeapCount <= 50 + 1100)
    }
}
