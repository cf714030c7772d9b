import OrderedCollections
import SundialCore
import SundialTesting
import Testing

@Suite("Scheduler basics", .offPool)
struct SchedulerBasicsTests {
    @Test("an interval job fires on its period, and the only wake-up asked for is the next fire")
    func intervalFiresAndWakes() {
        var s = makeScheduler([job("beat", .every(intervalMs: 30_000, offsetMs: nil))])
        let start = s.handle(.start(restored: RestoredState(), reboot: true), at: t0)
        #expect(start.launches.isEmpty)
        #expect(start.wake == at(30_000))
        #expect(start.last == .wake(at: at(30_000)))

        // Woken a little early: nothing happens, same wake-up.
        let early = s.handle(.tick, at: at(29_999))
        #expect(early.launches.isEmpty)
        #expect(early.wake == at(30_000))

        let due = s.handle(.tick, at: at(30_000))
        #expect(due.launches.count == 1)
        let order = due.launches[0]
        #expect(order.attempt == 1 && order.trigger == .schedule && order.scheduledFor == at(30_000))
        #expect(due.wake == at(60_000))
        #expect(due.changes.contains(.fired(job: "beat", scheduledFor: at(30_000))))
    }

    @Test("run.started carries the pid and design §3's fields; run.finished the outcome")
    func startedAndFinishedEvents() throws {
        var s = makeScheduler([job("beat", .every(intervalMs: 30_000, offsetMs: nil))])
        _ = s.handle(.start(restored: RestoredState(), reboot: true), at: t0)
        let order = try #require(s.handle(.tick, at: at(30_000)).launches.first)
        let launched = s.handle(.attemptLaunched(runID: order.runID, attempt: 1, pid: 4242), at: at(30_001))
        let started = try #require(launched.events.first)
        #expect(started.name == "run.started")
        #expect(Array(started.fields.keys) == ["job", "run_id", "attempt", "scheduled_for", "trigger", "pid"])
        #expect(started.job == "beat" && started.runID == order.runID.rawValue)
        #expect(started.int("pid") == 4242 && started.int("attempt") == 1)
        #expect(started.scheduledFor == "2026-01-05T00:00:30.000Z" && started.trigger == "schedule")
        #expect(started.ts == at(30_001))

        let done = s.handle(
            .attemptFinished(runID: order.runID, attempt: 1, outcome: .failure(exitCode: 3), durationMs: 120),
            at: at(30_121))
        let finished = try #require(done.events.first)
        #expect(Array(finished.fields.keys) == ["job", "run_id", "attempt", "outcome", "exit_code", "signal", "duration_ms"])
        #expect(finished.outcome == "failure" && finished.int("exit_code") == 3 && finished["signal"] == .null)
        #expect(finished.int("duration_ms") == 120 && finished.level == .warn)
        #expect(done.changes.contains(.runFinished(runID: order.runID, outcome: .failure(exitCode: 3), at: at(30_121))))
        #expect(s.activeRunCount == 0)
    }

    @Test("a launch failure still logs run.started (without pid) before run.finished launch_failed")
    func launchFailureEvents() throws {
        var s = makeScheduler([job("x")])
        _ = s.handle(.start(restored: RestoredState(), reboot: true), at: t0)
        let trig = s.handle(.trigger("x"), at: at(5))
        let order = try #require(trig.launches.first)
        #expect(order.trigger == .manual)
        let r = s.handle(
            .attemptFinished(
                runID: order.runID, attempt: 1, outcome: .launchFailed(reason: "no such file"),
                durationMs: 0), at: at(6))
        #expect(r.events.map(\.name) == ["run.started", "run.finished"])
        #expect(r.events[0]["pid"] == .null)
        #expect(r.events[1].outcome == "launch_failed" && r.events[1]["reason"] == "no such file")
    }

    @Test("no wake-up at all when nothing is timed (manual and needs jobs only)")
    func noWakeWhenIdle() {
        var s = makeScheduler([job("a"), job("b", needs: [Need(job: "a")])])
        let r = s.handle(.start(restored: RestoredState(), reboot: true), at: t0)
        #expect(r.wake == nil && s.nextWake == nil)
    }

    @Test("@reboot fires once at start when reboot is true, never on reload")
    func rebootJobs() {
        let jobs = [job("boot", .reboot)]
        var s = makeScheduler(jobs)
        let r = s.handle(.start(restored: RestoredState(), reboot: true), at: t0)
        #expect(r.launches.map(\.job.id) == ["boot"])
        var changed = jobs[0]
        changed.description = "changed"
        #expect(s.handle(.configReplaced(jobSet([changed])), at: at(1000)).launches.isEmpty)

        var quiet = makeScheduler(jobs)
        #expect(quiet.handle(.start(restored: RestoredState(), reboot: false), at: t0).launches.isEmpty)
    }

    @Test("enabled: false never fires; its needs being met logs skipped disabled; a manual trigger runs it")
    func disabledJobs() {
        let events = simulate(
            [
                job("off", .every(intervalMs: minute, offsetMs: nil)) { $0.enabled = false },
                job("up", .every(intervalMs: hour, offsetMs: nil)),
                job("down", needs: [Need(job: "up")]) { $0.enabled = false },
            ], to: at(2 * hour))
        #expect(events.named("run.started", job: "off").isEmpty)
        #expect(events.named("run.started", job: "down").isEmpty)
        #expect(events.named("run.skipped", job: "down").map(\.reason) == ["disabled", "disabled"])

        var s = makeScheduler([job("off", .every(intervalMs: minute, offsetMs: nil)) { $0.enabled = false }])
        #expect(s.handle(.start(restored: RestoredState(), reboot: true), at: t0).wake == nil)
        let r = s.handle(.trigger("off"), at: at(10))
        #expect(r.launches.count == 1)
        if case .started = r.triggerResults.first {} else { Issue.record("manual trigger of a disabled job should start") }
    }

    @Test("jitter delays each fire by a random amount in [0, jitter), reproducibly for a seed")
    func jitter() {
        let spec = job("j", .cron("@hourly")) { $0.jitterMs = 5 * minute }
        let events = simulate([spec], to: at(48 * hour + 10 * minute))
        let starts = events.named("run.started")
        #expect(starts.count == 48)
        var distinct = Set<Int64>()
        for e in starts {
            let scheduled = e.scheduledFor!
            let delay = e.ts.unixMillis % hour
            #expect(delay >= 0 && delay < 5 * minute, "\(scheduled) started at \(e.ts)")
            #expect(scheduled.hasSuffix(":00:00.000Z"))
            distinct.insert(delay)
        }
        #expect(distinct.count > 40)
        #expect(simulate([spec], to: at(48 * hour + 10 * minute)).map(\.ts) == events.map(\.ts))
    }

    @Test("a fire handled up to 60 s late runs normally; later, it is missed and follows catchup")
    func lateTolerance() {
        var s = makeScheduler([job("h", .cron("@hourly"))])
        _ = s.handle(.start(restored: RestoredState(), reboot: true), at: t0)
        let late = s.handle(.tick, at: at(hour + 59_000))
        #expect(late.launches.map(\.trigger) == [.schedule])
        // The next fire (02:00) is handled at 03:30: both 02:00 and 03:00 are missed.
        let stalled = s.handle(.tick, at: at(3 * hour + 30 * minute))
        #expect(stalled.launches.isEmpty)
        let skipped = stalled.events.named("run.skipped")
        #expect(skipped.map(\.reason) == ["missed"] && skipped[0].int("count") == 2)
        #expect(skipped[0].scheduledFor == at(2 * hour).description)
        #expect(stalled.wake == at(4 * hour))
        #expect(s.lastFire(of: "h") == at(3 * hour))
    }

    @Test("events before start are ignored; unknown run ids are ignored")
    func robustness() {
        var s = makeScheduler([job("h", .cron("@hourly"))])
        #expect(s.handle(.tick, at: t0).isEmpty)
        _ = s.handle(.start(restored: RestoredState(), reboot: true), at: t0)
        let bogus = RunID(rawValue: "01BOGUS")
        let r = s.handle(.attemptFinished(runID: bogus, attempt: 1, outcome: .success(exitCode: 0), durationMs: 1), at: at(1))
        #expect(r == [.wake(at: at(hour))])
        #expect(s.handle(.trigger("nope"), at: at(2)).triggerResults == [.unknownJob])
    }
}
