import SundialCore
import SundialTesting
import Testing

@Suite("Scheduler dependencies", .offPool)
struct SchedulerDependencyTests {
    /// backup (daily 01:00) → upload, verify → report (fan-in).
    func dag(_ extra: [JobSpec] = []) -> [JobSpec] {
        [
            job("backup", .cron("grid:\(day)+\(hour)")),
            job("upload", needs: [Need(job: "backup")]),
            job("verify", needs: [Need(job: "backup")]),
            job("report", needs: [Need(job: "upload"), Need(job: "verify")]),
        ] + extra
    }

    @Test("fan-out then fan-in: report runs once per backup, after both upload and verify")
    func fanOutFanIn() {
        let events = simulate(
            dag(), to: at(3 * day),
            script: [
                "upload": [succeed(ms: 20 * minute)],
                "verify": [succeed(ms: 5 * minute)],
            ])
        let starts = events.named("run.started")
        #expect(starts.filter { $0.job == "backup" }.count == 3)
        #expect(starts.filter { $0.job == "upload" }.count == 3)
        #expect(starts.filter { $0.job == "verify" }.count == 3)
        let reports = starts.filter { $0.job == "report" }
        #expect(reports.count == 3)
        #expect(reports.allSatisfy { $0.trigger == "needs" })
        // Each report starts when the slower need (upload, 20 min) has finished.
        #expect(reports.map(\.ts) == [at(hour + 20 * minute), at(day + hour + 20 * minute), at(2 * day + hour + 20 * minute)])
        #expect(events.named("run.skipped").isEmpty)
    }

    @Test("a failed backup skips its whole subtree with reason upstream, each job once")
    func failurePropagation() {
        let events = simulate(dag(), to: at(2 * day), script: ["backup": [fail(), ok]])
        let skipped = events.named("run.skipped")
        #expect(skipped.map(\.job) == ["upload", "verify", "report"])
        #expect(skipped.allSatisfy { $0.reason == "upstream" && $0.ts == at(hour) })
        // The next day's backup succeeds and the DAG runs again.
        #expect(events.named("run.started", job: "report").map(\.ts) == [at(day + hour)])
    }

    @Test("one failed branch of a fan-in skips the join: report is skipped upstream")
    func failedBranch() {
        let events = simulate(dag(), to: at(day), script: ["verify": [fail()]])
        #expect(events.named("run.started", job: "upload").count == 1)
        #expect(events.named("run.skipped").map(\.job) == ["report"])
        #expect(events.named("run.skipped", job: "report").first?.reason == "upstream")
        #expect(events.named("run.started", job: "report").isEmpty)
    }

    @Test("a run is all its attempts: a backup that succeeds on retry triggers its dependents once")
    func retriedNeed() {
        let backup = job("backup", .cron("grid:\(day)+\(hour)")) { $0.retry = RetryPolicy(attempts: 3, backoff: .fixed, delayMs: minute) }
        var jobs = dag()
        jobs[0] = backup
        let events = simulate(jobs, to: at(day), script: ["backup": [fail(), ok]])
        #expect(events.named("run.started", job: "backup").count == 2)
        #expect(events.named("run.started", job: "upload").count == 1)
        #expect(events.named("run.started", job: "upload")[0].ts == at(hour + minute))
        #expect(events.named("run.skipped").isEmpty)
    }

    @Test("needs on failure and on completion")
    func failureAndCompletionNeeds() {
        let jobs = [
            job("backup", .cron("grid:\(day)+\(hour)")),
            job("alert", needs: [Need(job: "backup", on: .failure)]),
            job("cleanup", needs: [Need(job: "backup", on: .completion)]),
        ]
        let events = simulate(jobs, to: at(3 * day), script: ["backup": [ok, fail(), ok]])
        #expect(events.named("run.started", job: "alert").map(\.ts) == [at(day + hour)])
        #expect(events.named("run.skipped", job: "alert").map(\.ts) == [at(hour), at(2 * day + hour)])
        #expect(events.named("run.skipped", job: "alert").allSatisfy { $0.reason == "upstream" })
        #expect(events.named("run.started", job: "cleanup").count == 3)
    }

    @Test("a scheduled job with needs fires only if they finished since it last started; else skipped needs")
    func scheduledWithNeeds() {
        let jobs = [
            job("backup", .cron("grid:\(day)+\(hour)")),
            job("publish", .cron("grid:\(day)+\(6 * hour)"), needs: [Need(job: "backup")]),
        ]
        // Day 0 backup ok → publish runs; day 1 backup fails → publish skipped (needs); day 2 ok.
        let events = simulate(jobs, to: at(3 * day), script: ["backup": [ok, fail(), ok]])
        #expect(events.named("run.started", job: "publish").map(\.ts) == [at(6 * hour), at(2 * day + 6 * hour)])
        let skipped = events.named("run.skipped", job: "publish")
        #expect(skipped.map(\.reason) == ["needs"] && skipped[0].scheduledFor == at(day + 6 * hour).description)
        // A scheduled dependent is not skipped "upstream": its schedule decides.
        #expect(events.named("run.skipped").count == 1)
    }

    @Test("a needs job waits for every need to finish since it last started")
    func everyNeedSinceLastStart() {
        let jobs = [
            job("a", .cron("grid:\(hour)+0")),
            job("b", .cron("grid:\(2 * hour)+\(30 * minute)")),
            job("join", needs: [Need(job: "a"), Need(job: "b")]),
        ]
        let events = simulate(jobs, to: at(6 * hour))
        // a: 1h 2h 3h 4h 5h 6h; b: 0:30 2:30 4:30. join when the later of the two has run
        // since join's previous start: 1h (a after b), 2:30, 4:30 (b after a's several runs).
        #expect(events.named("run.started", job: "join").map(\.ts) == [at(hour), at(2 * hour + 30 * minute), at(4 * hour + 30 * minute)])
        #expect(events.named("run.skipped").isEmpty)
    }

    @Test("a manual run of a needs job resets its needs (it started)")
    func manualResetsNeeds() {
        let jobs = [job("a"), job("b"), job("join", needs: [Need(job: "a"), Need(job: "b")])]
        var s = makeScheduler(jobs)
        _ = s.handle(.start(restored: RestoredState(), reboot: true), at: t0)
        func runToSuccess(_ id: JobID, _ ms: Int64) -> [SchedulerAction] {
            let order = s.handle(.trigger(id), at: at(ms)).launches[0]
            return s.handle(.attemptFinished(runID: order.runID, attempt: 1, outcome: .success(exitCode: 0), durationMs: 1), at: at(ms + 1))
        }
        _ = runToSuccess("a", 10)
        _ = runToSuccess("join", 20)
        #expect(runToSuccess("b", 30).launches.isEmpty)
        #expect(runToSuccess("a", 40).launches.map(\.job.id) == ["join"])
    }
}
