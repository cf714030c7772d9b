import SundialConfig
import SundialCore

/// The agent answers the control socket (design §4; docs/state.md has the wire format).
///
/// What only the actor knows (the running set, next fires, active runs) is copied out in one
/// short actor call; what the state database knows (last outcomes, history, the ledger) is read
/// off the actor, so a client never delays a due fire by more than that copy. Every failure
/// (unknown job, a database error, a stopping agent) is an error reply, never a crash; the
/// server bounds the time (10 s) and size of every exchange.
extension Agent: ControlHandler {
    /// `why` shows the planned fires of this last stretch of time (design: "the last day").
    public static let whyWindow: Duration = .seconds(86_400)

    public nonisolated func handle(_ request: ControlRequest) async -> ControlResponse {
        switch request {
        case .status: return await statusResponse()
        case let .trigger(job): return await triggerResponse(job)
        case let .history(job, limit): return await historyResponse(job, limit: limit)
        case let .why(job): return await whyResponse(job)
        case .reload: return Self.reloadResponse(await reloadNow(reason: "sundial reload"))
        }
    }

    // MARK: - status

    /// What `status` needs from the actor, copied in one call.
    struct StatusSnapshot: Sendable {
        var revision: String
        var startedAt: Instant
        var jobs: [(spec: JobSpec, next: Instant?, held: Bool)]
        var active: [StatusReport.ActiveRun]
    }

    func statusSnapshot() -> StatusSnapshot {
        var jobs: [(spec: JobSpec, next: Instant?, held: Bool)] = []
        jobs.reserveCapacity(jobSet.jobs.count)
        for (id, spec) in jobSet.jobs { jobs.append((spec, scheduler.plannedFire(of: id), scheduler.isHeld(id))) }
        let active = activeRuns.map { id, run in
            StatusReport.ActiveRun(job: run.job, runID: id, attempt: run.attempt, startedAt: run.startedAt, pid: run.pid)
        }.sorted { ($0.startedAt, $0.runID) < ($1.startedAt, $1.runID) }
        return StatusSnapshot(revision: jobSet.revision, startedAt: startedAt ?? clock.wallNow(), jobs: jobs, active: active)
    }

    nonisolated func statusResponse() async -> ControlResponse {
        let snap = await statusSnapshot()
        // The last outcome of every job in one query; without it (no store, a read error) the
        // status still answers, without last outcomes.
        let latest = (try? store?.latestRuns()) ?? [:]
        let jobs = snap.jobs.map { spec, next, held in
            StatusReport.Job(id: spec.id, description: spec.description, schedule: Self.scheduleText(spec), enabled: spec.enabled,
                             next: next, held: held, last: latest[spec.id])
        }
        let report = StatusReport(version: settings.version, pid: pid, revision: snap.revision, startedAt: snap.startedAt,
                                  jobs: jobs, active: snap.active)
        return .success(report.json)
    }

    /// The schedule as a person would write it: `30 2 * * *`, `every 30s`, `@reboot`, `at …`,
    /// `after a, b` for a job started by its needs, `manual`.
    static func scheduleText(_ spec: JobSpec) -> String {
        switch spec.schedule {
        case let .cron(text): return text
        case .reboot: return "@reboot"
        case let .every(interval, offset):
            let base = "every \(DurationParser.format(milliseconds: interval))"
            return offset.map { "\(base) + \(DurationParser.format(milliseconds: $0))" } ?? base
        case let .at(instants):
            let shown = instants.prefix(3).map(\.description).joined(separator: ", ")
            return "at " + shown + (instants.count > 3 ? ", … (\(instants.count) times)" : "")
        case .manual:
            return spec.needs.isEmpty ? "manual" : "after " + spec.needs.map(\.job).joined(separator: ", ")
        }
    }

    // MARK: - trigger

    nonisolated func triggerResponse(_ job: JobID) async -> ControlResponse {
        switch await trigger(job) {
        case let .started(id): return .success(TriggerReport(job: job, result: .started, runID: id).json)
        case .queued:
            return .success(TriggerReport(job: job, result: .queued, reason: "a run is active (concurrency: queue)").json)
        case .replacing:
            // The wire has no `replacing`: the run waits, like a queued one, for the active run
            // to be stopped.
            return .success(TriggerReport(job: job, result: .queued,
                                          reason: "the active run is being stopped (concurrency: replace)").json)
        case let .skipped(reason):
            return .success(TriggerReport(job: job, result: .skipped, reason: Self.skipText(reason)).json)
        case .unknownJob: return .failure("unknown job \(job)")
        case .shuttingDown: return .failure("the agent is shutting down")
        }
    }

    static func skipText(_ reason: SkipReason) -> String {
        switch reason {
        case .overlap: "a run is active (concurrency: forbid)"
        case .disabled: "the job is disabled"
        case .needs: "its needs have not finished as required"
        default: reason.rawValue
        }
    }

    // MARK: - history and why

    /// Whether `job` is in the running set.
    func knows(_ job: JobID) -> Bool { jobSet.jobs[job] != nil }

    /// The job's next planned fire, and whether the job is in the running set.
    func plan(of job: JobID) -> (known: Bool, next: Instant?) { (jobSet.jobs[job] != nil, scheduler.plannedFire(of: job)) }

    nonisolated func historyResponse(_ job: JobID, limit: Int) async -> ControlResponse {
        guard let store else { return .failure("this agent keeps no state") }
        let runs: [RunSummary]
        do { runs = try store.history(job: job, limit: max(1, min(limit, ControlRequest.maxHistoryLimit))) } catch {
            return .failure("cannot read the state database: \(error)")
        }
        // A job removed from the configuration still has its history; an id never seen is a typo.
        if runs.isEmpty, await !knows(job) { return .failure("unknown job \(job)") }
        return .success(HistoryReport(job: job, runs: runs).json)
    }

    nonisolated func whyResponse(_ job: JobID) async -> ControlResponse {
        guard let store else { return .failure("this agent keeps no state") }
        let since = clock.wallNow() - Self.whyWindow
        let entries: [LedgerEntry]
        do { entries = try store.ledger(job: job, since: since) } catch {
            return .failure("cannot read the state database: \(error)")
        }
        let plan = await plan(of: job)
        if entries.isEmpty, !plan.known { return .failure("unknown job \(job)") }
        return .success(WhyReport(job: job, since: since, entries: entries, next: plan.next).json)
    }

    // MARK: - reload

    static func reloadResponse(_ outcome: ReloadOutcome) -> ControlResponse {
        switch outcome {
        case let .loaded(revision, added, removed, changed):
            return .success(ReloadReport(revision: revision, added: added, removed: removed, changed: changed).json)
        case let .unchanged(revision):
            return .success(ReloadReport(revision: revision).json)
        case let .rejected(errors, running):
            let shown = errors.prefix(50).joined(separator: "\n")
            let more = errors.count > 50 ? "\n… and \(errors.count - 50) more" : ""
            return .failure("the new configuration is invalid; still running revision \(running)\n\(shown)\(more)")
        case .notRunning:
            return .failure("the agent is not running (starting or shutting down)")
        }
    }
}
