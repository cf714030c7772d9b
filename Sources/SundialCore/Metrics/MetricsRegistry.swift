import OrderedCollections

/// Sundial's metrics, computed from the event log (design §3) and rendered in the Prometheus
/// text format.
///
/// A value: feed it every ``Event`` the agent logs, in order, with ``observe(_:)``, and the
/// scheduler's planned fires with ``setNextFires(_:)``; ask for the exposition with
/// ``render()``. It reads no clock (timestamps come from the events), so a test or
/// `sundial simulate` gets the same numbers as the agent.
///
/// Every per-job series carries the label `job_name`, never `job`: Prometheus reserves `job`
/// for the scrape target and, under the default `honor_labels: false`, renames a scraped `job`
/// to `exported_job`, so rules written against `job` would silently match nothing.
///
/// Series and their sources:
/// - `sundial_runs_finished_total{job_name,outcome}` — one per *run*, by its final outcome,
///   after its retries: a failed attempt counts here only when no `run.retry_scheduled` follows
///   it (see ``settle()``). What a failure alert wants.
/// - `sundial_run_attempts_finished_total{job_name,outcome}` — one per `run.finished`, i.e. per
///   attempt (a run retried twice counts three); `sundial_run_retries_total{job_name}` counts
///   the `run.retry_scheduled` lines.
/// - `sundial_run_attempts_started_total{job_name,trigger}` — one per `run.started`
///   (`trigger="retry"` for retries).
/// - `sundial_run_duration_seconds{job_name}` — histogram of `run.finished.duration_ms`.
/// - `sundial_run_lateness_seconds{job_name}` — histogram of `ts − scheduled_for` of
///   `run.started`, first attempts with trigger `schedule` only: a catch-up run's lateness is
///   the downtime and a retry's is its backoff, and either would drown the signal (the agent's
///   own delay).
/// - `sundial_runs_skipped_total{job_name,reason}` — `run.skipped` (a `missed` summary adds its
///   `count`).
/// - `sundial_runs_active{job_name}` — attempts started and not yet finished.
/// - `sundial_job_last_success_timestamp_seconds{job_name}`,
///   `sundial_job_last_failure_timestamp_seconds{job_name}` — `ts` of the last run that
///   succeeded / failed after its retries.
/// - `sundial_job_next_fire_timestamp_seconds{job_name}` — the scheduler's planned fire, fed by
///   ``setNextFires(_:)`` (no event carries it); absent for a job with none (manual, `needs`
///   only, disabled, held).
/// - `sundial_config_loads_total`, `sundial_config_rejections_total`,
///   `sundial_config_last_reload_successful`, `sundial_config_last_load_timestamp_seconds`,
///   `sundial_config_jobs`, `sundial_config_info{revision}`.
/// - `sundial_log_dropped_lines_total`, `sundial_clock_steps_total`,
///   `sundial_agent_start_timestamp_seconds`, `sundial_build_info{version}`.
///
/// Cardinality is bounded: label values other than `job_name` come from closed sets (unknown
/// values become `other`); at most ``Options/maxJobs`` job label values exist, later ones are
/// folded into `job_name="_other"` (not a valid job id, so it cannot collide); and a job
/// removed by `config.loaded` is forgotten as soon as it has no active run.
public struct MetricsRegistry: Sendable {
    public struct Options: Sendable {
        /// `sundial_build_info{version}`.
        public var version: String
        /// Most distinct `job_name` label values kept; beyond it series go to `job_name="_other"`.
        public var maxJobs: Int
        /// Most active attempts tracked per job (bounds memory if `run.finished` lines are lost).
        public var maxActivePerJob: Int

        public init(version: String, maxJobs: Int = 1000, maxActivePerJob: Int = 10_000) {
            self.version = version
            self.maxJobs = max(1, maxJobs)
            self.maxActivePerJob = max(1, maxActivePerJob)
        }
    }

    /// The label every per-job series carries (not `job`, which Prometheus owns).
    public static let jobLabel = "job_name"

    /// The `job_name` label of series folded together once ``Options/maxJobs`` is reached.
    public static let overflowJob = "_other"

    static let outcomes: Set<String> = ["success", "failure", "timeout", "signal", "launch_failed", "interrupted"]
    static let triggers: Set<String> = Set(RunTrigger.allCases.map(\.rawValue))
    static let reasons: Set<String> = Set(SkipReason.allCases.map(\.rawValue))
    static let fleetDecisionValues: Set<String> = Set(FleetUnavailablePolicy.allCases.map(\.rawValue))
    /// Whether `record` settles a failed attempt: the scheduler's and the agent's own records.
    /// Not `run.output` or runtime warnings, which other threads write and which can land
    /// between a `run.finished` and its `run.retry_scheduled`.
    static func settles(_ record: LogRecord) -> Bool {
        switch record {
        case .runStarted, .runFinished, .runRetryScheduled, .runSkipped, .configLoaded, .configRejected, .clockStepped,
            .agentStarted, .agentStopping, .agentStopped:
            true
        default: false
        }
    }
    /// Most unsettled failed attempts held at once (see ``settle()``); more settle the oldest.
    static let maxUnsettled = 10_000

    struct JobMetrics: Sendable {
        /// Attempts finished, by outcome.
        var attempts: [String: Int64] = [:]
        /// Runs finished, by final outcome.
        var runs: [String: Int64] = [:]
        var started: [String: Int64] = [:]
        var skipped: [String: Int64] = [:]
        var retries: Int64 = 0
        var active: Set<String> = []
        var lastSuccessMillis: Int64?
        var lastFailureMillis: Int64?
        var nextFireMillis: Int64?
        var duration = MillisHistogram(boundsMillis: MillisHistogram.durationBounds)
        var lateness = MillisHistogram(boundsMillis: MillisHistogram.latenessBounds)
        /// Removed from the config while a run was active: only `active` is still tracked.
        var retired = false
    }

    /// A failed attempt not yet known to be its run's last: the scheduler logs
    /// `run.retry_scheduled` right after the `run.finished` of an attempt it retries.
    struct Unsettled: Sendable {
        var runKey: String
        var job: String
        var outcome: String
        var millis: Int64
    }

    public let options: Options
    var jobs: [String: JobMetrics] = [:]
    var unsettled: [Unsettled] = []
    var configLoads: Int64 = 0
    var configRejections: Int64 = 0
    var lastReloadSuccessful: Bool?
    var lastLoadMillis: Int64?
    var configJobs: Int64?
    var revision: String?
    var logDropped: Int64 = 0
    /// `lock: fleet` (docs/fleet.md): claims by result, `fleet_unavailable` decisions, leases lost.
    var fleetClaims: [String: Int64] = [:]
    var fleetDecisions: [String: Int64] = [:]
    var fleetLeasesLost: Int64 = 0
    var clockSteps: Int64 = 0
    var agentStartMillis: Int64?

    /// Increases whenever an observed event changed a value: the file writer compares it to
    /// decide whether to rewrite the file.
    public private(set) var generation: UInt64 = 0

    public init(options: Options) { self.options = options }

    // MARK: - Observing

    /// Updates the metrics from one log record. Records that change no metric are ignored.
    public mutating func observe(_ record: LogRecord) {
        let ts = record.at.unixMillis
        // A failed attempt is its run's last unless this very record retries it: the scheduler
        // writes the two back to back, so any other record settles it.
        if !unsettled.isEmpty, Self.settles(record) {
            if case let .runRetryScheduled(r) = record { unsettled.removeAll { $0.runKey == r.runID.rawValue } }
            settle()
        }
        switch record {
        case let .runStarted(r):
            let runKey = r.runID.rawValue
            let maxActive = options.maxActivePerJob
            if r.attempt <= 1, r.fleet?.token != nil { fleetClaims["won", default: 0] += 1 }
            update(r.job) { m, retired in
                if m.active.count < maxActive { m.active.insert(runKey) }
                guard !retired else { return }
                m.started[r.trigger.rawValue, default: 0] += 1
                if r.attempt <= 1, r.trigger == .schedule { m.lateness.observe(millis: ts - r.scheduledFor.unixMillis) }
            }
        case let .runFinished(r):
            let outcome = Self.outcomes.contains(r.outcome.name) ? r.outcome.name : "other"
            let runKey = r.runID.rawValue
            var counted = false
            update(r.job) { m, retired in
                m.active.remove(runKey)
                guard !retired else { return }
                counted = true
                m.attempts[outcome, default: 0] += 1
                if let d = r.durationMs { m.duration.observe(millis: d) }
                // A success is always final; a failure waits to see whether a retry follows.
                if outcome == "success" {
                    m.runs[outcome, default: 0] += 1
                    m.lastSuccessMillis = ts
                }
            }
            if counted, outcome != "success" {
                if unsettled.count >= Self.maxUnsettled { settle() }
                unsettled.append(Unsettled(runKey: runKey, job: r.job, outcome: outcome, millis: ts))
            }
            if let m = jobs[r.job], m.retired, m.active.isEmpty { jobs[r.job] = nil }
        case let .runRetryScheduled(r):
            update(r.job) { m, retired in if !retired { m.retries += 1 } }
        case let .runSkipped(r):
            let count = Int64(max(1, r.count ?? 1))
            if r.reason == .fleetClaimed { fleetClaims["claimed", default: 0] += 1 }
            if r.reason == .fleetBusy { fleetClaims["busy", default: 0] += 1 }
            update(r.job) { m, retired in if !retired { m.skipped[r.reason.rawValue, default: 0] += count } }
        case let .configLoaded(r):
            configLoads += 1
            lastReloadSuccessful = true
            lastLoadMillis = ts
            revision = r.revision
            configJobs = Int64(r.jobs)
            for id in r.removed { forget(id) }
            for id in r.added {
                jobs[id]?.retired = false
                if jobs[id] == nil, namedJobCount < options.maxJobs { jobs[id] = JobMetrics() }
            }
        case .configRejected:
            configRejections += 1
            lastReloadSuccessful = false
        case let .logDropped(lines, _):
            logDropped += Int64(max(0, lines))
        case .clockStepped:
            clockSteps += 1
        case .agentStarted:
            agentStartMillis = ts
        case let .fleet(r) where r.kind == .unavailable:
            fleetClaims["unavailable", default: 0] += 1
            let decision = r.fields["decision"]?.stringValue.map { Self.fleetDecisionValues.contains($0) ? $0 : "other" } ?? "other"
            fleetDecisions[decision, default: 0] += 1
        case let .fleet(r) where r.kind == .leaseLost:
            fleetLeasesLost += 1
        default:
            return
        }
        generation &+= 1
    }

    /// Counts the failed attempts still waiting for a possible `run.retry_scheduled` as their
    /// runs' final outcomes. ``observe(_:)`` does it on the next scheduler line; the agent calls
    /// it once the scheduler's step is over (its lines all observed), so a run that failed for
    /// good shows up at once rather than at the next, maybe hours later, line. Until then a
    /// scrape sees the attempt but not yet the run: a counter never goes back down.
    public mutating func settle() {
        guard !unsettled.isEmpty else { return }
        let pending = unsettled
        unsettled = []
        for u in pending {
            // `run.finished` put the attempt under its name or, past the cap, under `_other`.
            let key = jobs[u.job] != nil ? u.job : Self.overflowJob
            guard var m = jobs[key], !m.retired else { continue }
            m.runs[u.outcome, default: 0] += 1
            m.lastFailureMillis = max(m.lastFailureMillis ?? u.millis, u.millis)
            jobs[key] = m
        }
        generation &+= 1
    }

    /// The scheduler's planned fire of each job (the agent's `nextFires()`, what `status`
    /// shows); a job missing from `fires` has none. No event carries it, so the agent feeds it
    /// after each step that logged something. Bumps ``generation`` only when a value changed.
    public mutating func setNextFires(_ fires: [String: Instant]) {
        var changed = false
        for id in fires.keys.sorted() where jobs[id] == nil && id != Self.overflowJob && namedJobCount < options.maxJobs {
            jobs[id] = JobMetrics()
            changed = true
        }
        for i in jobs.indices where jobs.keys[i] != Self.overflowJob {
            let next = jobs.values[i].retired ? nil : fires[jobs.keys[i]]?.unixMillis
            if jobs.values[i].nextFireMillis != next {
                jobs.values[i].nextFireMillis = next
                changed = true
            }
        }
        if changed { generation &+= 1 }
    }

    /// The earliest planned fire, in milliseconds since the epoch (the exporter asks for fresh
    /// plans when it has passed: a fire that logged nothing, e.g. one queued behind a run).
    public var earliestNextFireMillis: Int64? { jobs.values.compactMap(\.nextFireMillis).min() }

    /// Applies `body` to the job's metrics, creating them (or folding into `_other`) as needed.
    /// `body` gets whether the job is retired (removed from the config with a run in flight).
    private mutating func update(_ job: String, _ body: (inout JobMetrics, Bool) -> Void) {
        let key = jobs[job] != nil || namedJobCount < options.maxJobs ? job : Self.overflowJob
        var m = jobs[key] ?? JobMetrics()
        body(&m, m.retired)
        jobs[key] = m
    }

    /// Job label values in use, not counting `_other`.
    private var namedJobCount: Int { jobs.count - (jobs[Self.overflowJob] == nil ? 0 : 1) }

    /// Drops a removed job's series; keeps only its active count while a run is in flight.
    private mutating func forget(_ id: String) {
        guard var m = jobs[id], id != Self.overflowJob else { return }
        if m.active.isEmpty {
            jobs[id] = nil
        } else {
            let active = m.active
            m = JobMetrics()
            m.active = active
            m.retired = true
            jobs[id] = m
        }
    }

    // MARK: - Rendering

    /// The exposition text (Prometheus text format 0.0.4), families in a fixed order and jobs
    /// sorted, so two renders of the same state are byte-identical.
    public func render() -> String {
        var w = PrometheusWriter()
        let ids = jobs.keys.sorted()
        let live = ids.filter { !(jobs[$0]!.retired) }
        let jobKey = Self.jobLabel

        w.family("sundial_build_info", .gauge, help: "Sundial's version; always 1.")
        w.sample("sundial_build_info", [("version", options.version)], 1)
        if let s = agentStartMillis {
            w.family("sundial_agent_start_timestamp_seconds", .gauge, help: "When the agent started (agent.started), in seconds since the Unix epoch.")
            w.sample("sundial_agent_start_timestamp_seconds", [], PrometheusText.formatMillisAsSeconds(s))
        }

        w.family(
            "sundial_runs_finished_total", .counter,
            help: "Runs finished, by final outcome: after their retries (a failed attempt that was retried is not counted here).")
        for id in live {
            for (o, n) in Self.withZeros(jobs[id]!.runs).sorted(by: { $0.key < $1.key }) {
                w.sample("sundial_runs_finished_total", [(jobKey, id), ("outcome", o)], n)
            }
        }

        w.family("sundial_run_attempts_started_total", .counter, help: "Attempts started (run.started), by trigger; trigger=\"retry\" marks retries.")
        for id in live {
            for (t, n) in jobs[id]!.started.sorted(by: { $0.key < $1.key }) {
                w.sample("sundial_run_attempts_started_total", [(jobKey, id), ("trigger", t)], n)
            }
        }

        w.family("sundial_run_attempts_finished_total", .counter, help: "Attempts finished (run.finished), by outcome. A retried run counts each attempt.")
        for id in live {
            for (o, n) in Self.withZeros(jobs[id]!.attempts).sorted(by: { $0.key < $1.key }) {
                w.sample("sundial_run_attempts_finished_total", [(jobKey, id), ("outcome", o)], n)
            }
        }

        w.family("sundial_run_retries_total", .counter, help: "Retries scheduled (run.retry_scheduled).")
        for id in live { w.sample("sundial_run_retries_total", [(jobKey, id)], jobs[id]!.retries) }

        w.family("sundial_runs_skipped_total", .counter, help: "Planned fires that did not run (run.skipped), by reason.")
        for id in live {
            for (r, n) in jobs[id]!.skipped.sorted(by: { $0.key < $1.key }) { w.sample("sundial_runs_skipped_total", [(jobKey, id), ("reason", r)], n) }
        }

        w.family("sundial_runs_active", .gauge, help: "Attempts running now.")
        for id in ids { w.sample("sundial_runs_active", [(jobKey, id)], Int64(jobs[id]!.active.count)) }

        w.family(
            "sundial_job_next_fire_timestamp_seconds", .gauge,
            help: "The job's next planned fire (as sundial status shows it, before jitter), in seconds since the Unix epoch.")
        for id in live {
            if let t = jobs[id]!.nextFireMillis { w.sample("sundial_job_next_fire_timestamp_seconds", [(jobKey, id)], PrometheusText.formatMillisAsSeconds(t)) }
        }

        w.family("sundial_job_last_success_timestamp_seconds", .gauge, help: "When the job's last successful run finished, in seconds since the Unix epoch.")
        for id in live {
            if let t = jobs[id]!.lastSuccessMillis {
                w.sample("sundial_job_last_success_timestamp_seconds", [(jobKey, id)], PrometheusText.formatMillisAsSeconds(t))
            }
        }

        w.family(
            "sundial_job_last_failure_timestamp_seconds", .gauge,
            help: "When the job's last run that failed after its retries finished, in seconds since the Unix epoch.")
        for id in live {
            if let t = jobs[id]!.lastFailureMillis {
                w.sample("sundial_job_last_failure_timestamp_seconds", [(jobKey, id)], PrometheusText.formatMillisAsSeconds(t))
            }
        }

        w.family("sundial_run_duration_seconds", .histogram, help: "Wall time of finished attempts.")
        for id in live where jobs[id]!.duration.count > 0 { w.histogram("sundial_run_duration_seconds", [(jobKey, id)], jobs[id]!.duration) }

        w.family(
            "sundial_run_lateness_seconds", .histogram,
            help: "Delay from the scheduled instant to the start of a scheduled run's first attempt (including jitter).")
        for id in live where jobs[id]!.lateness.count > 0 { w.histogram("sundial_run_lateness_seconds", [(jobKey, id)], jobs[id]!.lateness) }

        w.family("sundial_config_loads_total", .counter, help: "Configurations loaded (config.loaded), the first one included.")
        w.sample("sundial_config_loads_total", [], configLoads)
        w.family(
            "sundial_config_rejections_total", .counter,
            help: "Reloads rejected because a file was invalid (config.rejected); the last good configuration kept running.")
        w.sample("sundial_config_rejections_total", [], configRejections)
        if let ok = lastReloadSuccessful {
            w.family("sundial_config_last_reload_successful", .gauge, help: "1 if the last load or reload succeeded, 0 if it was rejected.")
            w.sample("sundial_config_last_reload_successful", [], ok ? 1 : 0)
        }
        if let t = lastLoadMillis {
            w.family("sundial_config_last_load_timestamp_seconds", .gauge, help: "When the running configuration was loaded, in seconds since the Unix epoch.")
            w.sample("sundial_config_last_load_timestamp_seconds", [], PrometheusText.formatMillisAsSeconds(t))
        }
        if let n = configJobs {
            w.family("sundial_config_jobs", .gauge, help: "Jobs in the running configuration.")
            w.sample("sundial_config_jobs", [], n)
        }
        if let r = revision {
            w.family("sundial_config_info", .gauge, help: "The running configuration's revision (a hash of the whole set); always 1.")
            w.sample("sundial_config_info", [("revision", r)], 1)
        }

        w.family("sundial_log_dropped_lines_total", .counter, help: "Event-log lines lost while the log could not be written (log.dropped).")
        w.sample("sundial_log_dropped_lines_total", [], logDropped)
        w.family("sundial_clock_steps_total", .counter, help: "Wall-clock steps seen against the monotonic clock (clock.stepped).")
        w.sample("sundial_clock_steps_total", [], clockSteps)
        // Only on a box that has seen fleet activity: other agents' exposition stays as it was.
        if !fleetClaims.isEmpty || fleetLeasesLost > 0 {
            w.family(
                "sundial_fleet_claims_total", .counter,
                help:
                    "lock: fleet claims by result: won (run.started with a fleet_token), claimed (another box has it), busy (forbid), unavailable (fleet.unavailable)."
            )
            for r in ["won", "claimed", "busy", "unavailable"] { w.sample("sundial_fleet_claims_total", [("result", r)], fleetClaims[r] ?? 0) }
            w.family("sundial_fleet_unavailable_total", .counter, help: "fleet_unavailable decisions taken (fleet.unavailable), by decision.")
            for d in fleetDecisions.keys.sorted() { w.sample("sundial_fleet_unavailable_total", [("decision", d)], fleetDecisions[d] ?? 0) }
            w.family("sundial_fleet_leases_lost_total", .counter, help: "Runs stopped because their fleet lease was lost (fleet.lease_lost).")
            w.sample("sundial_fleet_leases_lost_total", [], fleetLeasesLost)
        }
        return w.text
    }

    /// Zeros for the common outcomes, so `increase()` sees a job's first failure (a series
    /// born at 1 has no earlier sample to increase from) and `absent()` works from the start.
    static func withZeros(_ counts: [String: Int64]) -> [String: Int64] {
        var c = counts
        c["success", default: 0] += 0
        c["failure", default: 0] += 0
        return c
    }
}
