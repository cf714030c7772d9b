import SundialCore
import SundialTesting
import Testing

@Suite("Scheduler clock steps and downtime", .offPool)
struct SchedulerClockTests {
    func hourly(_ policy: CatchupPolicy) -> JobSpec {
        job("h", .cron("@hourly")) { $0.catchup = policy }
    }

    /// At 10:30 the wall clock jumps to 13:30: 11:00, 12:00 and 13:00 were never seen.
    let stepForward = [SimulatedInput(at: at(10 * hour + 30 * minute), .stepClock(byMs: 3 * hour))]

    @Test("+3 h with catchup none: one missed summary, no burst, then on schedule")
    func forwardNone() {
        let events = simulate([hourly(.none)], to: at(16 * hour), inputs: stepForward)
        let starts = events.named("run.started").map(\.scheduledFor!)
        #expect(starts == ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 16] as [Int64]).map { at($0 * hour).description })
        let skipped = events.named("run.skipped")
        #expect(skipped.count == 1 && skipped[0].reason == "missed" && skipped[0].int("count") == 3)
        #expect(skipped[0].scheduledFor == at(11 * hour).description && skipped[0].ts == at(13 * hour + 30 * minute))
    }

    @Test("+3 h with catchup latest: one catch-up run for 13:00, the others missed")
    func forwardLatest() {
        let events = simulate([hourly(.latest)], to: at(16 * hour), inputs: stepForward)
        let catchups = events.named("run.started").filter { $0.trigger == "catchup" }
        #expect(catchups.map(\.scheduledFor) == [at(13 * hour).description])
        #expect(catchups[0].ts == at(13 * hour + 30 * minute))
        #expect(events.named("run.skipped").map { $0.int("count") } == [2])
    }

    @Test("+3 h with catchup all: each missed fire runs, one after the other")
    func forwardAll() {
        let events = simulate([hourly(.all)], to: at(16 * hour), script: ["h": [succeed(ms: 10 * minute)]], inputs: stepForward)
        let catchups = events.named("run.started").filter { $0.trigger == "catchup" }
        #expect(catchups.map(\.scheduledFor) == [11, 12, 13].map { at($0 * hour).description })
        let t: Int64 = at(13 * hour + 30 * minute).unixMillis
        let expected: [Int64] = [t, t + 10 * minute, t + 20 * minute]
        #expect(catchups.map { $0.ts.unixMillis } == expected)
        #expect(events.named("run.skipped").isEmpty)
    }

    @Test("catchup all is bounded by catchup_window and 100 runs")
    func allBounded() {
        let spec = job("m", .cron("grid:\(minute)")) {
            $0.catchup = .all
            $0.catchupWindowMs = 3 * hour
        }
        // Down for 10 hours: 600 missed fires, 180 in the window, at most 100 run.
        let restored = RestoredState(lastFired: ["m": at(0)], lastSeen: at(0))
        let events = simulate([spec], from: at(10 * hour + 30_000), to: at(12 * hour), restored: restored)
        let catchups = events.named("run.started").filter { $0.trigger == "catchup" }
        // 10:00 is only 30 s late: it runs normally, after the 100 newest missed fires.
        #expect(catchups.count == 100)
        #expect(catchups.last?.scheduledFor == at(10 * hour - minute).description)
        #expect(catchups.first?.scheduledFor == at(10 * hour - 100 * minute).description)
        let scheduled = events.named("run.started").filter { $0.trigger == "schedule" }
        #expect(scheduled.first?.scheduledFor == at(10 * hour).description)
        let skipped = events.named("run.skipped")
        #expect(skipped.count == 1)
        #expect(skipped.first?.int("count") == 499 && skipped.first?.scheduledFor == at(minute).description)
    }

    @Test("−1 h: nothing that fired fires again; intervals keep real elapsed time")
    func backward() {
        let jobs = [hourly(.all), job("beat", .every(intervalMs: 20 * minute, offsetMs: nil))]
        let step = [SimulatedInput(at: at(10 * hour + 30 * minute), .stepClock(byMs: -hour))]
        let events = simulate(jobs, to: at(14 * hour), inputs: step)
        let h = events.named("run.started", job: "h").map(\.scheduledFor!)
        #expect(Set(h).count == h.count)
        #expect(h == (1...14).map { at(Int64($0) * hour).description })
        // 11:00 fired only when the wall clock reached 11:00 again, i.e. 1 h 30 min after the step.
        #expect(events.named("run.started", job: "h").first { $0.scheduledFor == at(11 * hour).description }?.ts == at(11 * hour))

        // beat fired at 10:20 (wall); its next fire, 20 real minutes later, is at 9:40 wall.
        let beat = events.named("run.started", job: "beat").map(\.ts)
        let i = beat.firstIndex(of: at(10 * hour + 20 * minute))!
        #expect(beat[i + 1] == at(9 * hour + 40 * minute))
        #expect(events.named("run.skipped").isEmpty)
    }

    @Test("forward step: intervals keep real elapsed time, no catch-up for them")
    func forwardInterval() {
        let step = [SimulatedInput(at: at(10 * minute), .stepClock(byMs: 3 * hour))]
        let events = simulate([job("beat", .every(intervalMs: 15 * minute, offsetMs: nil))], to: at(4 * hour), inputs: step)
        let ts = events.named("run.started").map(\.ts)
        #expect(ts.prefix(3) == [at(3 * hour + 15 * minute), at(3 * hour + 30 * minute), at(3 * hour + 45 * minute)])
        #expect(events.named("run.skipped").isEmpty)
    }

    @Test("waiting retries move with a clock step (they are real durations)")
    func retryAcrossStep() {
        let spec = job("r", .cron("@hourly")) { $0.retry = RetryPolicy(attempts: 2, backoff: .fixed, delayMs: 10 * minute) }
        let step = [SimulatedInput(at: at(hour + minute), .stepClock(byMs: -30 * minute))]
        let events = simulate([spec], to: at(90 * minute), script: ["r": [fail(), ok]], inputs: step)
        #expect(events.named("run.started", job: "r").map(\.ts) == [at(hour), at(hour + 10 * minute - 30 * minute)])
    }

    @Test("restart: an instant already fired is not fired again; the next one is")
    func restartNoDoubleFire() {
        let restored = RestoredState(lastFired: ["h": at(10 * hour)], lastSeen: at(10 * hour + 20 * minute))
        // Back up at 10:00:30 (the clock was a bit behind): 10:00 already fired.
        let events = simulate([hourly(.all)], from: at(10 * hour + 30_000), to: at(12 * hour), restored: restored)
        #expect(events.named("run.started").map(\.scheduledFor) == [11, 12].map { at($0 * hour).description })
    }

    @Test("restart after downtime: none → missed summary, latest → one catch-up, all → each")
    func downtimeCatchup() {
        let restored = RestoredState(lastFired: ["h": at(5 * hour)], lastSeen: at(5 * hour + 10 * minute))
        let from = at(10 * hour + 30 * minute)
        let none = simulate([hourly(.none)], from: from, to: at(11 * hour), restored: restored)
        #expect(none.named("run.skipped").map { $0.int("count") } == [5])
        #expect(none.named("run.started").map(\.scheduledFor) == [at(11 * hour).description])

        let latest = simulate([hourly(.latest)], from: from, to: at(11 * hour), restored: restored)
        #expect(latest.named("run.started").map(\.trigger) == ["catchup", "schedule"])
        #expect(latest.named("run.started").map(\.scheduledFor) == [at(10 * hour).description, at(11 * hour).description])

        let all = simulate([hourly(.all)], from: from, to: at(11 * hour), restored: restored)
        #expect(all.named("run.started").filter { $0.trigger == "catchup" }.map(\.scheduledFor) == [6, 7, 8, 9, 10].map { at($0 * hour).description })

        // A fire within the late tolerance is not missed: it runs normally.
        let justLate = simulate(
            [hourly(.none)], from: at(10 * hour + 20_000), to: at(10 * hour + minute),
            restored: RestoredState(lastFired: ["h": at(9 * hour)], lastSeen: at(9 * hour + 59 * minute)))
        #expect(justLate.named("run.started").map(\.trigger) == ["schedule"])
        #expect(justLate.named("run.skipped").isEmpty)
    }

    @Test("a restart years later with a per-second schedule stays bounded")
    func hugeDowntimeBounded() {
        let spec = job("s", .cron("grid:1000")) { $0.catchup = .latest }
        var s = makeScheduler([spec])
        let restored = RestoredState(lastFired: ["s": Instant(unixMillis: t0.unixMillis - 3 * 365 * day)])
        let r = s.handle(.start(restored: restored, reboot: true), at: at(500))
        #expect(r.launches.map(\.scheduledFor) == [t0])
        #expect(r.events.named("run.skipped").map { $0.int("count") } == [1000])
        #expect(r.wake == at(1000))
    }

    @Test("in-flight runs are recorded interrupted on start, and retried when the policy retries")
    func interruptedRuns() throws {
        let retrying = job("etl", .cron("@daily")) { $0.retry = RetryPolicy(attempts: 3, backoff: .fixed, delayMs: 5000) }
        let plain = job("once", .cron("@daily"))
        let id1 = RunID(rawValue: "01KAAAAAAAAAAAAAAAAAAAAAAA")
        let id2 = RunID(rawValue: "01KBBBBBBBBBBBBBBBBBBBBBBB")
        let restored = RestoredState(
            lastFired: ["etl": at(0), "once": at(0)],
            inFlight: [
                RunRecord(id: id1, job: "etl", trigger: .schedule, scheduledFor: at(0), startedAt: at(0)),
                RunRecord(id: id2, job: "once", trigger: .schedule, scheduledFor: at(0), startedAt: at(0)),
            ],
            lastSeen: at(minute))
        var s = makeScheduler([retrying, plain])
        let r = s.handle(.start(restored: restored, reboot: true), at: at(hour))
        let finished = r.events.named("run.finished")
        #expect(finished.map(\.outcome) == ["interrupted", "interrupted"])
        #expect(finished.map(\.runID) == [id1.rawValue, id2.rawValue])
        #expect(r.events.named("run.retry_scheduled").map(\.runID) == [id1.rawValue])
        #expect(r.changes.contains(.runFinished(runID: id2, outcome: .interrupted, at: at(hour))))
        #expect(!r.changes.contains(.runFinished(runID: id1, outcome: .interrupted, at: at(hour))))
        #expect(r.wake == at(hour + 5000))
        let retry = s.handle(.tick, at: at(hour + 5000))
        let order = try #require(retry.launches.first)
        #expect(order.runID == id1 && order.attempt == 2 && order.trigger == .retry && order.scheduledFor == at(0))
        // The interrupted run still holds the job (forbid) until it ends.
        #expect(s.activeRuns(of: "etl") == [id1])
    }
}
