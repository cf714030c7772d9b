import OrderedCollections
import SundialCore
import SundialTesting
import Testing

@Suite(.offPool) struct MetricsRegistryTests {
    let t0 = Instant(unixSeconds: 1_767_225_600)  // 2026-01-01T00:00:00Z

    func registry(maxJobs: Int = 1000) -> MetricsRegistry { MetricsRegistry(options: .init(version: "1.2.3", maxJobs: maxJobs)) }

    func started(_ job: String, run: String, attempt: Int = 1, trigger: RunTrigger = .schedule, lateMs: Int64 = 0, at: Instant) -> LogRecord {
        .runStarted(
            .init(
                job: job, runID: RunID(rawValue: run), attempt: attempt, scheduledFor: at - .milliseconds(lateMs),
                trigger: trigger, pid: 42, at: at))
    }

    func finished(_ job: String, run: String, attempt: Int = 1, outcome: RunOutcome, ms: Int64, at: Instant) -> LogRecord {
        .runFinished(
            .init(
                job: job, runID: RunID(rawValue: run), attempt: attempt, outcome: outcome, exitCode: outcome.exitCode,
                signal: nil, durationMs: ms, at: at))
    }

    func loaded(_ revision: String, jobs: Int, added: [JobID] = [], removed: [JobID] = [], changed: [JobID] = [], at: Instant) -> LogRecord {
        .configLoaded(.init(revision: revision, files: 1, jobs: jobs, added: added, removed: removed, changed: changed, reason: nil, at: at))
    }

    func skipped(_ job: String, _ reason: SkipReason, count: Int? = nil, at: Instant) -> LogRecord {
        .runSkipped(.init(job: job, scheduledFor: Instant(unixSeconds: 1_767_225_600), reason: reason, count: count, at: at))
    }

    func output(_ job: String, at: Instant) -> LogRecord {
        .runOutput(.init(job: job, runID: RunID(rawValue: "R9"), attempt: 1, stream: .stdout, line: "x", truncated: false, at: at))
    }

    @Test func emptyRegistryRendersValidText() throws {
        let e = try Exposition(registry().render())
        #expect(e.value("sundial_build_info", ["version": "1.2.3"]) == 1)
        #expect(e.value("sundial_config_loads_total") == 0)
        #expect(e.value("sundial_log_dropped_lines_total") == 0)
        #expect(e.types["sundial_run_duration_seconds"] == "histogram")
        #expect(e.types["sundial_runs_finished_total"] == "counter")
        #expect(e.types["sundial_runs_active"] == "gauge")
    }

    @Test func runsRetriesDurationsAndLastSuccess() throws {
        var r = registry()
        r.observe(loaded("abc123", jobs: 2, added: ["backup", "heartbeat"], at: t0))
        r.observe(started("backup", run: "R1", lateMs: 7, at: t0 + .seconds(60)))
        var e = try Exposition(r.render())
        #expect(e.value("sundial_runs_active", ["job_name": "backup"]) == 1)
        #expect(e.value("sundial_runs_active", ["job_name": "heartbeat"]) == 0)
        r.observe(finished("backup", run: "R1", outcome: .failure(exitCode: 1), ms: 1500, at: t0 + .seconds(62)))
        r.observe(.runRetryScheduled(.init(job: "backup", runID: RunID(rawValue: "R1"), attempt: 2, delayMs: 10000, at: t0 + .seconds(62))))
        r.observe(started("backup", run: "R1", attempt: 2, trigger: .retry, lateMs: 30_000, at: t0 + .seconds(72)))
        r.observe(finished("backup", run: "R1", attempt: 2, outcome: .success(exitCode: 0), ms: 400, at: t0 + .milliseconds(72_400)))
        e = try Exposition(r.render())
        #expect(e.value("sundial_run_attempts_finished_total", ["job_name": "backup", "outcome": "failure"]) == 1)
        #expect(e.value("sundial_run_attempts_finished_total", ["job_name": "backup", "outcome": "success"]) == 1)
        // The run failed once, was retried and succeeded: one run, a success.
        #expect(e.value("sundial_runs_finished_total", ["job_name": "backup", "outcome": "failure"]) == 0)
        #expect(e.value("sundial_runs_finished_total", ["job_name": "backup", "outcome": "success"]) == 1)
        #expect(e.value("sundial_job_last_failure_timestamp_seconds", ["job_name": "backup"]) == nil)
        #expect(e.value("sundial_runs_finished_total", ["job_name": "heartbeat", "outcome": "success"]) == 0)
        #expect(e.value("sundial_run_attempts_started_total", ["job_name": "backup", "trigger": "schedule"]) == 1)
        #expect(e.value("sundial_run_attempts_started_total", ["job_name": "backup", "trigger": "retry"]) == 1)
        #expect(e.value("sundial_run_retries_total", ["job_name": "backup"]) == 1)
        #expect(e.value("sundial_runs_active", ["job_name": "backup"]) == 0)
        #expect(e.value("sundial_job_last_success_timestamp_seconds", ["job_name": "backup"]) == 1_767_225_672.4)
        #expect(e.value("sundial_job_last_success_timestamp_seconds", ["job_name": "heartbeat"]) == nil)
        // Duration: 1.5 s and 0.4 s → buckets le=0.5 has 1, le=5 has 2 (cumulative).
        #expect(e.value("sundial_run_duration_seconds_bucket", ["job_name": "backup", "le": "0.1"]) == 0)
        #expect(e.value("sundial_run_duration_seconds_bucket", ["job_name": "backup", "le": "0.5"]) == 1)
        #expect(e.value("sundial_run_duration_seconds_bucket", ["job_name": "backup", "le": "1"]) == 1)
        #expect(e.value("sundial_run_duration_seconds_bucket", ["job_name": "backup", "le": "5"]) == 2)
        #expect(e.value("sundial_run_duration_seconds_bucket", ["job_name": "backup", "le": "+Inf"]) == 2)
        #expect(e.value("sundial_run_duration_seconds_sum", ["job_name": "backup"]) == 1.9)
        #expect(e.value("sundial_run_duration_seconds_count", ["job_name": "backup"]) == 2)
        // Lateness: only the first attempt (7 ms), not the retry's 30 s.
        #expect(e.value("sundial_run_lateness_seconds_count", ["job_name": "backup"]) == 1)
        #expect(e.value("sundial_run_lateness_seconds_sum", ["job_name": "backup"]) == 0.007)
        #expect(e.value("sundial_run_lateness_seconds_bucket", ["job_name": "backup", "le": "0.005"]) == 0)
        #expect(e.value("sundial_run_lateness_seconds_bucket", ["job_name": "backup", "le": "0.01"]) == 1)
        #expect(e.value("sundial_config_info", ["revision": "abc123"]) == 1)
        #expect(e.value("sundial_config_jobs") == 2)
    }

    @Test func latenessIgnoresCatchupAndManualRuns() throws {
        var r = registry()
        r.observe(started("a", run: "R1", trigger: .catchup, lateMs: 3_600_000, at: t0))
        r.observe(started("a", run: "R2", trigger: .manual, lateMs: 0, at: t0))
        r.observe(started("a", run: "R3", trigger: .schedule, lateMs: 120_000, at: t0))
        let e = try Exposition(r.render())
        #expect(e.value("sundial_run_lateness_seconds_count", ["job_name": "a"]) == 1)
        #expect(e.value("sundial_run_lateness_seconds_bucket", ["job_name": "a", "le": "60"]) == 0)
        #expect(e.value("sundial_run_lateness_seconds_bucket", ["job_name": "a", "le": "300"]) == 1)
        #expect(e.value("sundial_runs_active", ["job_name": "a"]) == 3)
    }

    @Test func skippedByReasonAddsMissedCount() throws {
        var r = registry()
        r.observe(skipped("a", .overlap, at: t0))
        r.observe(skipped("a", .overlap, at: t0))
        r.observe(skipped("a", .missed, count: 5, at: t0))
        let e = try Exposition(r.render())
        #expect(e.value("sundial_runs_skipped_total", ["job_name": "a", "reason": "overlap"]) == 2)
        #expect(e.value("sundial_runs_skipped_total", ["job_name": "a", "reason": "missed"]) == 5)
    }

    @Test func configReloadsRejectionsAndRevision() throws {
        var r = registry()
        r.observe(loaded("r1", jobs: 1, added: ["a"], at: t0))
        r.observe(
            .configRejected(
                .init(
                    reason: "SIGHUP", errors: [.init(file: "x.yaml", line: 1, column: 1, message: "bad")], runningRevision: "r1",
                    at: t0 + .seconds(5))))
        var e = try Exposition(r.render())
        #expect(e.value("sundial_config_loads_total") == 1)
        #expect(e.value("sundial_config_rejections_total") == 1)
        #expect(e.value("sundial_config_last_reload_successful") == 0)
        #expect(e.value("sundial_config_info", ["revision": "r1"]) == 1)
        r.observe(loaded("r2", jobs: 1, changed: ["a"], at: t0 + .seconds(9)))
        e = try Exposition(r.render())
        #expect(e.value("sundial_config_loads_total") == 2)
        #expect(e.value("sundial_config_last_reload_successful") == 1)
        #expect(e.series("sundial_config_info").count == 1)
        #expect(e.value("sundial_config_info", ["revision": "r2"]) == 1)
        #expect(e.value("sundial_config_last_load_timestamp_seconds") == 1_767_225_609)
    }

    @Test func removedJobIsForgottenAfterItsActiveRunFinishes() throws {
        var r = registry()
        r.observe(loaded("r1", jobs: 2, added: ["a", "b"], at: t0))
        r.observe(finished("a", run: "R0", outcome: .success(exitCode: 0), ms: 5, at: t0))
        r.observe(started("b", run: "R1", at: t0))
        r.observe(loaded("r2", jobs: 0, removed: ["a", "b"], at: t0 + .seconds(1)))
        var e = try Exposition(r.render())
        #expect(!e.samples.contains { $0.labels["job_name"] == "a" })
        #expect(e.value("sundial_runs_active", ["job_name": "b"]) == 1)
        #expect(e.value("sundial_runs_finished_total", ["job_name": "b", "outcome": "success"]) == nil)
        r.observe(finished("b", run: "R1", outcome: .success(exitCode: 0), ms: 5, at: t0 + .seconds(2)))
        e = try Exposition(r.render())
        #expect(!e.samples.contains { $0.labels["job_name"] != nil })
    }

    @Test func jobLabelsAreCapped() throws {
        var r = registry(maxJobs: 3)
        for i in 0..<10 { r.observe(finished("job\(i)", run: "R\(i)", outcome: .success(exitCode: 0), ms: 1, at: t0)) }
        let e = try Exposition(r.render())
        let jobs = Set(e.samples.compactMap { $0.labels["job_name"] })
        #expect(jobs == ["job0", "job1", "job2", MetricsRegistry.overflowJob])
        #expect(e.value("sundial_runs_finished_total", ["job_name": "_other", "outcome": "success"]) == 7)
        #expect(e.value("sundial_run_attempts_finished_total", ["job_name": "_other", "outcome": "success"]) == 7)
    }

    @Test func labelValuesAndHelpAreEscaped() throws {
        #expect(PrometheusText.escapeLabelValue(#"a\b"c"# + "\n") == #"a\\b\"c\n"#)
        #expect(PrometheusText.escapeHelp("x\\y\nz \"q\"") == #"x\\y\nz "q""#)
        let r = MetricsRegistry(options: .init(version: "1.0 \"beta\"\\\n"))
        let e = try Exposition(r.render())
        #expect(e.value("sundial_build_info", ["version": "1.0 \"beta\"\\\n"]) == 1)
    }

    @Test func formatting() {
        #expect(PrometheusText.formatMillisAsSeconds(1500) == "1.5")
        #expect(PrometheusText.formatMillisAsSeconds(1) == "0.001")
        #expect(PrometheusText.formatMillisAsSeconds(60_000) == "60")
        #expect(PrometheusText.formatMillisAsSeconds(-250) == "-0.25")
        #expect(PrometheusText.formatValue(.infinity) == "+Inf")
        #expect(PrometheusText.formatValue(3) == "3")
        #expect(PrometheusText.formatValue(0.25) == "0.25")
    }

    @Test func logDroppedAndGeneration() throws {
        var r = registry()
        let g0 = r.generation
        r.observe(output("a", at: t0))
        #expect(r.generation == g0)
        r.observe(.logDropped(lines: 12, at: t0))
        r.observe(.logDropped(lines: 3, at: t0))
        #expect(r.generation == g0 + 2)
        #expect(try Exposition(r.render()).value("sundial_log_dropped_lines_total") == 15)
    }

    @Test func renderIsDeterministic() {
        var a = registry()
        var b = registry()
        for j in ["zeta", "alpha", "mid"] {
            a.observe(finished(j, run: j, outcome: .timeout, ms: 10, at: t0))
        }
        for j in ["mid", "zeta", "alpha"] {
            b.observe(finished(j, run: j, outcome: .timeout, ms: 10, at: t0))
        }
        // The last failure of each waits for a possible retry line: end the step first.
        a.settle()
        b.settle()
        #expect(a.render() == b.render())
    }

    func retry(_ job: String, run: String, attempt: Int, at: Instant) -> LogRecord {
        .runRetryScheduled(.init(job: job, runID: RunID(rawValue: run), attempt: attempt, delayMs: 1000, at: at))
    }

    @Test func failedRunCountsOnceAfterItsRetriesAndNeverGoesBack() throws {
        var r = registry()
        r.observe(loaded("r1", jobs: 1, added: ["dump-db"], at: t0))
        var seen: [Double] = []
        func finalFailures() throws -> Double {
            let v = try Exposition(r.render()).value("sundial_runs_finished_total", ["job_name": "dump-db", "outcome": "failure"]) ?? -1
            seen.append(v)
            return v
        }
        r.observe(started("dump-db", run: "R1", at: t0))
        r.observe(finished("dump-db", run: "R1", attempt: 1, outcome: .failure(exitCode: 1), ms: 10, at: t0 + .seconds(1)))
        // A scrape between the attempt and its retry line must not count the run yet.
        #expect(try finalFailures() == 0)
        r.observe(retry("dump-db", run: "R1", attempt: 2, at: t0 + .seconds(1)))
        #expect(try finalFailures() == 0)
        r.observe(started("dump-db", run: "R1", attempt: 2, trigger: .retry, at: t0 + .seconds(2)))
        r.observe(finished("dump-db", run: "R1", attempt: 2, outcome: .timeout, ms: 10, at: t0 + .seconds(3)))
        #expect(try finalFailures() == 0)
        // The step ends with no retry: the run failed for good.
        r.settle()
        let e = try Exposition(r.render())
        #expect(e.value("sundial_runs_finished_total", ["job_name": "dump-db", "outcome": "timeout"]) == 1)
        #expect(e.value("sundial_runs_finished_total", ["job_name": "dump-db", "outcome": "failure"]) == 0)
        #expect(e.value("sundial_run_attempts_finished_total", ["job_name": "dump-db", "outcome": "failure"]) == 1)
        #expect(e.value("sundial_run_attempts_finished_total", ["job_name": "dump-db", "outcome": "timeout"]) == 1)
        #expect(e.value("sundial_job_last_failure_timestamp_seconds", ["job_name": "dump-db"]) == 1_767_225_603)
        #expect(seen.allSatisfy { $0 == 0 })
    }

    @Test func theNextSchedulerLineSettlesAFailureButOutputLinesDoNot() throws {
        var r = registry()
        r.observe(finished("a", run: "R1", outcome: .failure(exitCode: 1), ms: 10, at: t0))
        r.observe(output("b", at: t0))
        #expect(try Exposition(r.render()).value("sundial_runs_finished_total", ["job_name": "a", "outcome": "failure"]) == 0)
        r.observe(started("b", run: "R2", at: t0 + .seconds(1)))
        #expect(try Exposition(r.render()).value("sundial_runs_finished_total", ["job_name": "a", "outcome": "failure"]) == 1)
        // A retry line of another run does not save this one.
        r.observe(finished("a", run: "R3", outcome: .failure(exitCode: 1), ms: 10, at: t0 + .seconds(2)))
        r.observe(retry("b", run: "R2", attempt: 2, at: t0 + .seconds(2)))
        #expect(try Exposition(r.render()).value("sundial_runs_finished_total", ["job_name": "a", "outcome": "failure"]) == 2)
    }

    @Test func everySeriesIsLabelledJobNameNeverJob() throws {
        var r = registry()
        r.observe(.agentStarted(.init(version: "1.2.3", pid: 1, config: [], state: "/var/lib/sundial", at: t0)))
        r.observe(loaded("r1", jobs: 1, added: ["a"], at: t0))
        r.observe(started("a", run: "R1", lateMs: 5, at: t0))
        r.observe(finished("a", run: "R1", outcome: .failure(exitCode: 1), ms: 10, at: t0))
        r.observe(skipped("a", .overlap, at: t0))
        r.setNextFires(["a": t0 + .seconds(60)])
        let e = try Exposition(r.render())
        #expect(!e.samples.isEmpty)
        #expect(!e.samples.contains { $0.labels["job"] != nil })
        let perJob = Set(e.samples.filter { $0.labels["job_name"] != nil }.map(\.name))
        for name in [
            "sundial_runs_finished_total", "sundial_run_attempts_finished_total", "sundial_run_attempts_started_total",
            "sundial_run_retries_total", "sundial_runs_skipped_total", "sundial_runs_active",
            "sundial_job_next_fire_timestamp_seconds", "sundial_job_last_failure_timestamp_seconds",
            "sundial_run_duration_seconds_bucket", "sundial_run_lateness_seconds_bucket",
        ] {
            #expect(perJob.contains(name), "\(name) has no job_name series")
        }
    }

    @Test func nextFiresAreGaugesThatChangeTheGenerationOnlyWhenTheyMove() throws {
        var r = registry(maxJobs: 2)
        r.observe(loaded("r1", jobs: 3, added: ["a", "b"], at: t0))
        r.setNextFires(["a": t0 + .seconds(60), "c": t0 + .seconds(5)])
        var e = try Exposition(r.render())
        #expect(e.value("sundial_job_next_fire_timestamp_seconds", ["job_name": "a"]) == 1_767_225_660)
        #expect(e.value("sundial_job_next_fire_timestamp_seconds", ["job_name": "b"]) == nil)
        // Past the cap a timestamp is not folded into _other: a sum of instants means nothing.
        #expect(e.series("sundial_job_next_fire_timestamp_seconds").count == 1)
        #expect(r.earliestNextFireMillis == (t0 + .seconds(60)).unixMillis)
        let g = r.generation
        r.setNextFires(["a": t0 + .seconds(60)])
        #expect(r.generation == g)
        r.setNextFires([:])
        #expect(r.generation == g + 1)
        e = try Exposition(r.render())
        #expect(e.series("sundial_job_next_fire_timestamp_seconds").isEmpty)
        #expect(r.earliestNextFireMillis == nil)
    }
}
