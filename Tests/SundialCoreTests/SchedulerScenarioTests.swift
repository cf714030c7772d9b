import SundialCore
import SundialTesting
import Testing

@Suite("Scheduler scenarios", .offPool)
struct SchedulerScenarioTests {
    @Test("a week of mixed schedules: every fire runs exactly once, in order")
    func weekOfMixedSchedules() {
        let week = 7 * day
        let jobs = [
            job("hourly", .cron("@hourly")),
            job("daily", .cron("grid:\(day)+\(2 * hour + 30 * minute)")),
            job("quarter", .every(intervalMs: 15 * minute, offsetMs: nil)),
            job("aligned", .every(intervalMs: 10 * minute, offsetMs: 5 * minute)),
            job("once", .at([at(36 * hour), at(100 * hour), at(9 * day)])),
            job("boot", .reboot),
            job("manual"),
            job("slow", .cron("@hourly")) { $0.concurrency = .allow },
        ]
        let events = simulate(jobs, to: at(week), script: ["slow": [succeed(ms: 90 * minute)]])
        let starts = events.named("run.started")
        let counts = Dictionary(grouping: starts, by: { $0.job! }).mapValues(\.count)
        #expect(counts["hourly"] == 168)
        #expect(counts["daily"] == 7)
        #expect(counts["quarter"] == 672)
        #expect(counts["aligned"] == 1008)
        #expect(counts["once"] == 2)
        #expect(counts["boot"] == 1)
        #expect(counts["manual"] == nil)
        #expect(counts["slow"] == 168)
        #expect(events.named("run.skipped").isEmpty)

        // Never the same scheduled instant twice; always in time order per job.
        for (_, runs) in Dictionary(grouping: starts, by: { $0.job! }) {
            let scheduled = runs.map(\.scheduledFor!)
            #expect(Set(scheduled).count == scheduled.count)
            #expect(scheduled == scheduled.sorted())
        }
        // Daily at 02:30, started on time (no jitter, instant runs).
        for e in starts where e.job == "daily" {
            #expect(e.scheduledFor!.hasSuffix("T02:30:00.000Z") && e.ts.description == e.scheduledFor)
        }
        // 90-minute runs of an hourly `allow` job overlap; the last two are still running.
        #expect(events.named("run.finished", job: "slow").count == 166)
        #expect(events.named("run.finished").allSatisfy { $0.outcome == "success" })
        // Timestamps never go backward.
        #expect(zip(events, events.dropFirst()).allSatisfy { $0.ts <= $1.ts })
    }

    @Test("1,000 jobs due in the same second all start in one tick, none lost")
    func thousandJobsSameSecond() {
        let jobs = (0..<1000).map { job("job-\($0)", .cron("@hourly")) }
        var s = makeScheduler(jobs)
        _ = s.handle(.start(restored: RestoredState(), reboot: true), at: t0)
        let r = s.handle(.tick, at: at(hour + 400))
        #expect(r.launches.count == 1000)
        #expect(Set(r.launches.map(\.job.id)).count == 1000)
        #expect(Set(r.launches.map(\.runID)).count == 1000)
        #expect(r.wake == at(2 * hour))
        #expect(s.activeRunCount == 1000)

        // And through the simulator, a day of it.
        let events = simulate(jobs, to: at(day))
        #expect(events.named("run.started").count == 24_000)
        #expect(events.named("run.finished").count == 24_000)
    }

    @Test("run ids sort by creation time")
    func runIDsSortByTime() {
        let events = simulate([job("a", .every(intervalMs: minute, offsetMs: nil))], to: at(3 * hour))
        let ids = events.named("run.started").map(\.runID!)
        #expect(ids.count == 180 && ids == ids.sorted())
    }

    @Test("a long-running timeout-prone job: the runner's timeout outcome is recorded, then retried")
    func timeoutIsRecorded() {
        let spec = job("hang", .cron("@daily")) {
            $0.timeoutMs = 30 * minute
            $0.retry = RetryPolicy(attempts: 2, backoff: .fixed, delayMs: minute, on: [.timeout])
        }
        let events = simulate([spec], to: at(day + 2 * hour), script: ["hang": [SimulatedAttempt(.success(exitCode: 0), durationMs: 10 * day)]])
        let finished = events.named("run.finished")
        #expect(finished.map(\.outcome) == ["timeout", "timeout"])
        #expect(finished.map { $0.int("duration_ms") } == [30 * minute, 30 * minute])
        #expect(events.named("run.retry_scheduled").count == 1)
    }
}
