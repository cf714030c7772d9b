import SundialCore
import SundialTesting
import Testing

/// `sundial pause` / `resume` (issue 17): a paused job's fires come, are recorded as skipped
/// (`paused`) and do not run; `job.paused` / `job.resumed` are logged on changes only.
@Suite("Scheduler pause and resume", .offPool)
struct SchedulerPauseTests {
    let hourly = job("hourly", .cron("@hourly"))

    func finish(_ s: inout Scheduler, _ launches: [LaunchOrder], at now: Instant) -> [SchedulerAction] {
        var out: [SchedulerAction] = []
        for l in launches {
            out += s.handle(.attemptFinished(runID: l.runID, attempt: l.attempt, outcome: .success(exitCode: 0), durationMs: 5), at: now)
        }
        return out
    }

    @Test("a paused job's fires are skipped with reason paused, in the ledger too, until it is resumed")
    func pausedFiresAreSkippedAndRecorded() {
        var s = makeScheduler([hourly])
        _ = s.handle(.start(restored: RestoredState(), reboot: true), at: t0)
        let pause = s.handle(.pause("hourly"), at: at(10 * minute))
        #expect(pause.events.map(\.name) == ["job.paused"])
        #expect(pause.events.first?.job == "hourly")
        #expect(s.isPaused("hourly") && s.pausedJobs == ["hourly"])
        // Pausing again changes nothing and logs nothing.
        #expect(s.handle(.pause("hourly"), at: at(11 * minute)).events.isEmpty)
        // Still armed: the fire comes, and is skipped.
        #expect(s.plannedFire(of: "hourly") == at(hour))
        let fire = s.handle(.tick, at: at(hour))
        #expect(fire.launches.isEmpty)
        #expect(fire.events.map(\.name) == ["run.skipped"])
        #expect(fire.events.first?.reason == "paused")
        #expect(fire.changes.contains(.planned(LedgerEntry(job: "hourly", scheduledFor: at(hour), disposition: .skipped(.paused), at: at(hour)))))
        #expect(s.plannedFire(of: "hourly") == at(2 * hour))

        let resume = s.handle(.resume("hourly"), at: at(hour + 5 * minute))
        #expect(resume.events.map(\.name) == ["job.resumed"])
        #expect(!s.isPaused("hourly"))
        #expect(s.handle(.resume("hourly"), at: at(hour + 6 * minute)).events.isEmpty)
        #expect(s.handle(.tick, at: at(2 * hour)).launches.map(\.job.id) == ["hourly"])
    }

    @Test("pausing skips what was already waiting to start (a catch-up backlog), as paused")
    func pauseSkipsTheWaitingBacklog() {
        var s = makeScheduler([job("h", .cron("@hourly")) { $0.catchup = .all }])
        let first = s.handle(.start(restored: RestoredState(lastFired: ["h": at(-4 * hour)], lastSeen: at(-4 * hour)), reboot: false), at: at(minute))
        let running = try? #require(first.launches.first)
        let paused = s.handle(.pause("h"), at: at(2 * minute))
        #expect(paused.events.named("run.skipped").map(\.reason) == ["paused", "paused", "paused"])
        let after = s.handle(
            .attemptFinished(runID: running!.runID, attempt: 1, outcome: .success(exitCode: 0), durationMs: 5), at: at(3 * minute))
        #expect(after.launches.isEmpty)
    }

    @Test("a manual trigger still runs a paused job (an explicit request)")
    func triggerRunsAPausedJob() {
        var s = makeScheduler([hourly])
        _ = s.handle(.start(restored: RestoredState(), reboot: true), at: t0)
        _ = s.handle(.pause("hourly"), at: t0)
        let trigger = s.handle(.trigger("hourly"), at: at(minute))
        #expect(trigger.launches.count == 1)
        #expect(s.isPaused("hourly"))
    }

    @Test("a paused needs-only job is skipped (paused) when its upstream succeeds; an unknown job cannot be paused")
    func pausedNeedsOnlyJob() {
        let report = job("report", needs: [Need(job: "hourly")])
        var s = makeScheduler([hourly, report])
        _ = s.handle(.start(restored: RestoredState(), reboot: true), at: t0)
        #expect(s.handle(.pause("nope"), at: t0).events.isEmpty)
        #expect(!s.isPaused("nope"))
        _ = s.handle(.pause("report"), at: t0)
        let fire = s.handle(.tick, at: at(hour))
        let done = finish(&s, fire.launches, at: at(hour + minute))
        #expect(done.launches.isEmpty)
        #expect(done.events.named("run.skipped", job: "report").map(\.reason) == ["paused"])
    }

    @Test("the paused set handed back at start holds: catch-up of a paused job is skipped too")
    func restoredPauseHoldsThroughCatchup() {
        let all = job("all", .cron("@hourly")) { $0.catchup = .all }
        var s = makeScheduler([all, hourly])
        // The previous agent fired 00:00 and was last seen at 00:30; this one starts at 03:10.
        let restored = RestoredState(lastFired: ["all": t0, "hourly": t0], lastSeen: at(30 * minute), paused: ["all", "gone"])
        let start = s.handle(.start(restored: restored, reboot: true), at: at(3 * hour + 10 * minute))
        #expect(s.isPaused("all") && s.isPaused("gone") && !s.isPaused("hourly"))
        #expect(start.launches.map(\.job.id) == [])
        #expect(start.events.named("run.skipped", job: "all").map(\.reason) == ["paused", "paused", "paused"])
        #expect(start.events.named("run.skipped", job: "hourly").map(\.reason) == ["missed"])
        // An id no longer configured can still be resumed (to clear it).
        #expect(s.handle(.resume("gone"), at: at(3 * hour + 20 * minute)).events.map(\.name) == ["job.resumed"])
    }
}
