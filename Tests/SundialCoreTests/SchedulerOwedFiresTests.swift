import SundialCore
import SundialTesting
import Testing

/// Fires still waiting when the agent stops cleanly (a `catchup: all` backlog, a fire queued
/// under `concurrency: queue`) are owed to the next start, which runs them as the job's
/// `catchup` says: a package upgrade in the middle of a backlog must not drop the rest of it.
@Suite("Scheduler: fires owed across a clean stop", .offPool)
struct SchedulerOwedFiresTests {
    /// An hourly job that missed the fires at -4 h … 0 h while the agent was down.
    func hourly(_ catchup: CatchupPolicy, _ configure: (inout JobSpec) -> Void = { _ in }) -> JobSpec {
        job("h", .cron("@hourly")) {
            $0.catchup = catchup
            configure(&$0)
        }
    }

    let downtime = RestoredState(lastFired: ["h": at(-5 * hour)], lastSeen: at(-5 * hour))

    @Test("a clean stop in a catch-up backlog owes the fires not started, and the next start runs them first, oldest first")
    func backlogSurvivesACleanStop() throws {
        var s = makeScheduler([hourly(.all)])
        let started = s.handle(.start(restored: downtime, reboot: false), at: at(minute))
        #expect(started.launches.map(\.scheduledFor) == [at(-4 * hour)])
        let stop = s.handle(.shutdown(graceMs: 0), at: at(2 * minute))
        let owed = stop.changes.compactMap { if case let .owed(job, t) = $0, job == "h" { t } else { nil } }
        #expect(owed == [-3, -2, -1, 0].map { at($0 * hour) })
        // Still reported as skipped by this agent's stop.
        #expect(stop.events.named("run.skipped").map(\.reason) == Array(repeating: "shutdown", count: 4))

        // The next start, ten minutes later: no fire missed in between, so only the owed ones run.
        var next = makeScheduler([hourly(.all)])
        let restored = RestoredState(lastFired: ["h": at(0)], lastSeen: at(2 * minute), owed: ["h": owed])
        let first = next.handle(.start(restored: restored, reboot: false), at: at(10 * minute))
        let settled = first.firstIndex { $0 == .persist(.owedSettled(job: "h")) }
        let launched = first.firstIndex { if case .launch = $0 { true } else { false } }
        #expect(settled != nil && launched != nil && settled! < launched!, "settled before anything launches")
        var ran = first.launches
        while let run = ran.last, ran.count < 10 {
            let r = next.handle(.attemptFinished(runID: run.runID, attempt: 1, outcome: .success(exitCode: 0), durationMs: 5), at: at(11 * minute))
            if r.launches.isEmpty { break }
            ran += r.launches
        }
        #expect(ran.map(\.scheduledFor) == owed)
        #expect(ran.allSatisfy { $0.trigger == .catchup })
    }

    @Test("owed fires go before the downtime's own catch-ups, and the backlog stays within maxCatchupRuns")
    func owedFiresGoFirstWithinTheBound() {
        var s = makeScheduler([hourly(.all)], options: SchedulerOptions(maxCatchupRuns: 3))
        let restored = RestoredState(
            lastFired: ["h": at(-3 * hour)], lastSeen: at(-3 * hour), owed: ["h": [at(-6 * hour), at(-5 * hour), at(-4 * hour)]])
        var ran = s.handle(.start(restored: restored, reboot: false), at: at(30 * minute)).launches
        for _ in 0..<10 {
            guard let run = ran.last else { break }
            let r = s.handle(.attemptFinished(runID: run.runID, attempt: 1, outcome: .success(exitCode: 0), durationMs: 5), at: at(31 * minute))
            if r.launches.isEmpty { break }
            ran += r.launches
        }
        // The owed fires come first. The first has started when the downtime's three (-2 h,
        // -1 h, 0 h) are found, so one place is left: the newest of them takes it, and the other
        // two are recorded missed.
        #expect(ran.map(\.scheduledFor) == [at(-6 * hour), at(-5 * hour), at(-4 * hour), at(0)])
    }

    @Test("catchup none owes nothing; a start settles what an earlier configuration owed and runs none of it")
    func catchupNoneOwesNothing() {
        let queued = job("q", .cron("@hourly")) { $0.concurrency = .queue }
        var s = makeScheduler([queued])
        _ = s.handle(.start(restored: RestoredState(), reboot: false), at: at(-1))
        let first = s.handle(.tick, at: at(0))
        #expect(first.launches.count == 1)
        _ = s.handle(.tick, at: at(hour))  // queued behind the first, still running
        let stop = s.handle(.shutdown(graceMs: 0), at: at(hour + 1))
        #expect(!stop.changes.contains { if case .owed = $0 { true } else { false } })

        var next = makeScheduler([hourly(.none)])
        let r = next.handle(.start(restored: RestoredState(lastFired: ["h": at(0)], owed: ["h": [at(0)]]), reboot: false), at: at(minute))
        #expect(r.changes.contains(.owedSettled(job: "h")))
        #expect(r.launches.isEmpty)
    }

    @Test("a fire queued under concurrency: queue is owed to the next start when catchup is not none")
    func queuedFireIsOwed() {
        let queued = hourly(.latest) { $0.concurrency = .queue }
        var s = makeScheduler([queued])
        _ = s.handle(.start(restored: RestoredState(), reboot: false), at: at(-1))
        #expect(s.handle(.tick, at: at(0)).launches.count == 1)
        _ = s.handle(.tick, at: at(hour))
        let stop = s.handle(.shutdown(graceMs: 0), at: at(hour + 1))
        #expect(stop.changes.contains(.owed(job: "h", scheduledFor: at(hour))))
    }

    @Test("catchup latest runs the newest owed fire, unless the downtime missed one of its own")
    func latestRunsOneRun() {
        let owed = [at(-2 * hour), at(-hour)]
        var quiet = makeScheduler([hourly(.latest)])
        let r = quiet.handle(
            .start(restored: RestoredState(lastFired: ["h": at(-hour)], lastSeen: at(-hour + minute), owed: ["h": owed]), reboot: false),
            at: at(-hour + 5 * minute))
        #expect(r.launches.map(\.scheduledFor) == [at(-hour)])

        var missed = makeScheduler([hourly(.latest)])
        let m = missed.handle(
            .start(restored: RestoredState(lastFired: ["h": at(-hour)], lastSeen: at(-hour + minute), owed: ["h": owed]), reboot: false),
            at: at(2 * hour + 30 * minute))
        // One run only: the downtime's catch-up of 2 h, which covers the owed ones.
        #expect(m.launches.map(\.scheduledFor) == [at(2 * hour)])
        #expect(m.changes.contains(.owedSettled(job: "h")))
    }

    @Test("while calendar jobs are held (clock not synchronised), owed fires wait, unsettled, for the release")
    func heldCalendarWaits() {
        var s = makeScheduler([hourly(.all)])
        _ = s.handle(.holdCalendar(true), at: at(10 * minute))
        let restored = RestoredState(lastFired: ["h": at(0)], lastSeen: at(minute), owed: ["h": [at(-hour), at(0)]])
        let r = s.handle(.start(restored: restored, reboot: false), at: at(10 * minute))
        #expect(r.launches.isEmpty)
        #expect(!r.changes.contains(.owedSettled(job: "h")), "a stop during the hold must find them still owed")
        let released = s.handle(.holdCalendar(false), at: at(12 * minute))
        #expect(released.changes.contains(.owedSettled(job: "h")))
        #expect(released.launches.map(\.scheduledFor) == [at(-hour)])
    }

    @Test("owed fires older than catchup_window are not run, and a removed job's are settled and recorded")
    func windowAndRemovedJobs() {
        var s = makeScheduler([hourly(.all) { $0.catchupWindowMs = 2 * hour }])
        let restored = RestoredState(
            lastFired: ["h": at(0), "gone": at(0)], lastSeen: at(minute),
            owed: ["h": [at(-3 * hour), at(-2 * hour), at(-hour)], "gone": [at(0)]])
        let r = s.handle(.start(restored: restored, reboot: false), at: at(10 * minute))
        #expect(r.launches.map(\.scheduledFor) == [at(-hour)])
        #expect(r.changes.contains(.owedSettled(job: "h")) && r.changes.contains(.owedSettled(job: "gone")))
        // What is not run is recorded: one missed summary per job, the job gone included.
        let missed = r.events.named("run.skipped").filter { $0.reason == "missed" }
        #expect(missed.map(\.job) == ["gone", "h"])
        #expect(missed.first { $0.job == "h" }?.int("count") == 2)
    }

    @Test("owed fires of a job removed, or no longer on the calendar, are recorded missed, not dropped silently")
    func removedOrChangedJobsRecordTheirOwedFires() {
        var s = makeScheduler([job("beat", .every(intervalMs: hour, offsetMs: nil)) { $0.catchup = .all }])
        let restored = RestoredState(lastSeen: at(minute), owed: ["gone": [at(-hour), at(0)], "beat": [at(0)]])
        let r = s.handle(.start(restored: restored, reboot: false), at: at(10 * minute))
        #expect(r.launches.isEmpty)
        let missed = r.events.named("run.skipped").filter { $0.reason == "missed" }
        #expect(Set(missed.compactMap(\.job)) == ["gone", "beat"])
        #expect(missed.first { $0.job == "gone" }?.int("count") == 2)
    }

    @Test("a job the previous agent never fired catches up only the downtime, not the minute before it")
    func aNewJobCatchesUpOnlyTheDowntime() {
        // Every 10 s; the previous agent was last seen at 0 (it never had this job); restart at +35 s.
        var s = makeScheduler([job("new", .cron("grid:10000")) { $0.catchup = .all }])
        var ran = s.handle(.start(restored: RestoredState(lastSeen: at(0)), reboot: false), at: at(35_000)).launches
        for _ in 0..<10 {
            guard let run = ran.last else { break }
            let r = s.handle(.attemptFinished(runID: run.runID, attempt: 1, outcome: .success(exitCode: 0), durationMs: 1), at: at(35_001))
            if r.launches.isEmpty { break }
            ran += r.launches
        }
        #expect(ran.map(\.scheduledFor).allSatisfy { $0 > at(0) })
        #expect(ran.map(\.scheduledFor) == [at(10_000), at(20_000), at(30_000)])
    }

    @Test("catchup latest keeps to catchup_window too: an owed fire older than it is recorded missed, not run")
    func latestKeepsToTheWindow() {
        var late = makeScheduler([hourly(.latest) { $0.catchupWindowMs = 30 * minute }])
        let l = late.handle(
            .start(restored: RestoredState(lastFired: ["h": at(0)], lastSeen: at(minute), owed: ["h": [at(0)]]), reboot: false),
            at: at(40 * minute))
        #expect(l.launches.isEmpty)
        #expect(l.events.named("run.skipped").map(\.reason) == ["missed"])
        #expect(l.changes.contains(.owedSettled(job: "h")))
    }
}
