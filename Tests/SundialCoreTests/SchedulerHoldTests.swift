import SundialCore
import SundialTesting
import Testing

/// `--hold-until-synced` (design §2 "Clock steps"): calendar jobs wait for a trusted clock,
/// intervals do not.
@Suite("Scheduler calendar hold", .offPool)
struct SchedulerHoldTests {
    let hourly = job("hourly", .cron("@hourly"))
    let beat = job("beat", .every(intervalMs: 10 * minute, offsetMs: nil))
    let aligned = job("aligned", .every(intervalMs: 10 * minute, offsetMs: 0))

    @Test("held from the start: intervals counted from the start run, wall-clock jobs are not armed")
    func heldFromStart() {
        var s = makeScheduler([hourly, beat, aligned])
        _ = s.handle(.holdCalendar(true), at: t0)
        let start = s.handle(.start(restored: RestoredState(), reboot: true), at: t0)
        #expect(start.launches.isEmpty)
        #expect(s.plannedFire(of: "hourly") == nil && s.plannedFire(of: "aligned") == nil)
        #expect(s.plannedFire(of: "beat") == at(10 * minute))
        var started: [JobID] = []
        for m in stride(from: Int64(10), through: 120, by: 10) {
            let launches = s.handle(.tick, at: at(m * minute)).launches
            started += launches.map(\.job.id)
            for l in launches {
                _ = s.handle(.attemptFinished(runID: l.runID, attempt: 1, outcome: .success(exitCode: 0), durationMs: 5), at: at(m * minute))
            }
        }
        #expect(started == Array(repeating: "beat", count: 12))
    }

    @Test(
        "the release applies catchup to what was missed since the previous agent was last seen",
        arguments: [CatchupPolicy.none, .latest, .all])
    func releaseAppliesCatchup(policy: CatchupPolicy) {
        let h = job("h", .cron("@hourly")) { $0.catchup = policy }
        var s = makeScheduler([h])
        _ = s.handle(.holdCalendar(true), at: t0)
        // The previous agent fired 00:00 and was last seen at 00:30; this one starts at 01:10 on a
        // stale clock and is told the clock is good at 03:20.
        let restored = RestoredState(lastFired: ["h": t0], lastSeen: at(30 * minute))
        _ = s.handle(.start(restored: restored, reboot: true), at: at(hour + 10 * minute))
        #expect(s.handle(.tick, at: at(2 * hour)).launches.isEmpty)
        let release = s.handle(.holdCalendar(false), at: at(3 * hour + 20 * minute))
        let events = release.events
        switch policy {
        case .none:
            #expect(release.launches.isEmpty)
            let missed = events.named("run.skipped")
            #expect(missed.count == 1 && missed[0].reason == "missed" && missed[0].int("count") == 3)
        case .latest:
            #expect(release.launches.map(\.scheduledFor) == [at(3 * hour)])
            #expect(release.launches.map(\.trigger) == [.catchup])
        case .all:
            // One after the other: the first now, the rest as each ends.
            #expect(release.launches.map(\.scheduledFor) == [at(hour)])
            #expect(release.launches.map(\.trigger) == [.catchup])
        }
        // Armed again on the real schedule.
        #expect(s.plannedFire(of: "h") == at(4 * hour))
        #expect(release.wake != nil)
    }

    @Test("held while running: the armed calendar fire is dropped; nothing fires until the release")
    func holdWhileRunning() {
        var s = makeScheduler([hourly, beat])
        _ = s.handle(.start(restored: RestoredState(), reboot: true), at: t0)
        #expect(s.plannedFire(of: "hourly") == at(hour))
        _ = s.handle(.holdCalendar(true), at: at(minute))
        #expect(s.plannedFire(of: "hourly") == nil)
        let ticks = s.handle(.tick, at: at(hour))
        #expect(!ticks.launches.contains { $0.job.id == "hourly" })
        // A reload while held re-plans nothing on the wall clock.
        _ = s.handle(.configReplaced(jobSet([hourly, beat, aligned])), at: at(hour + minute))
        #expect(s.plannedFire(of: "aligned") == nil && s.plannedFire(of: "hourly") == nil)
        // A manual trigger is not a calendar fire: it runs.
        #expect(s.handle(.trigger("hourly"), at: at(hour + 2 * minute)).triggerResults.count == 1)
        _ = s.handle(.holdCalendar(false), at: at(hour + 5 * minute))
        #expect(s.plannedFire(of: "hourly") == at(2 * hour))
        #expect(s.plannedFire(of: "aligned") == at(hour + 10 * minute))
    }

    @Test("holding and releasing twice changes nothing; a release before start only clears the flag")
    func idempotent() {
        var s = makeScheduler([hourly])
        _ = s.handle(.holdCalendar(false), at: t0)
        _ = s.handle(.start(restored: RestoredState(), reboot: true), at: t0)
        #expect(s.plannedFire(of: "hourly") == at(hour))
        _ = s.handle(.holdCalendar(true), at: at(1))
        _ = s.handle(.holdCalendar(true), at: at(2))
        #expect(s.timerHeapCount <= 1)
        _ = s.handle(.holdCalendar(false), at: at(3))
        _ = s.handle(.holdCalendar(false), at: at(4))
        #expect(s.plannedFire(of: "hourly") == at(hour))
        #expect(s.handle(.tick, at: at(hour)).launches.map(\.job.id) == ["hourly"])
    }
}
