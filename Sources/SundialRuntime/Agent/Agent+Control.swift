import OrderedCollections
import SundialConfig
import SundialCore

/// The agent answers the control socket (design §4; docs/state.md has the wire format).
///
/// What only the actor knows (the running set, next fires, active runs) is copied out in one
/// short actor call; what the state database knows (last outcomes, history, the ledger) is read
/// off the actor, so a client never delays a due fire by more than that copy. Every failure
/// (unknown job, a database error, a stopping agent) is an error reply, never a crash; the
/// server bounds the time (10 s) and size of every exchange. The streaming requests
/// (`trigger` with `wait`, `follow`) answer at once and register a follower with ``runWatch``,
/// which then feeds the connection's bounded ``ControlStream`` off the actor: a slow client is
/// dropped by the server, it never slows the agent.
extension Agent: ControlHandler {
    /// `why` shows the planned fires of this last stretch of time (design: "the last day").
    public static let whyWindow: Duration = .seconds(86_400)

    public nonisolated func handle(_ request: ControlRequest) async -> ControlResponse {
        switch request {
        case .status: return await statusResponse()
        case let .trigger(job): return await triggerResponse(job)
        case let .history(job, limit): return await historyResponse(job, limit: limit)
        case let .why(job): return await whyResponse(job)
        case let .logs(job, run): return await logsResponse(job, run: run)
        case .reload: return Self.reloadResponse(await reloadNow(reason: "sundial reload"))
        case let .pause(job): return await pauseResponse(job, pause: true)
        case let .resume(job): return await pauseResponse(job, pause: false)
        case .triggerAndWait, .follow: return .failure("\(request.op) streams: it needs a streaming connection")
        }
    }

    public nonisolated func handle(_ request: ControlRequest, stream: ControlStream) async -> ControlResponse {
        switch request {
        case let .triggerAndWait(job, output): return await triggerFollowing(job, output: output, stream: stream)
        case let .follow(job): return await follow(job, stream: stream)
        default: return await handle(request)
        }
    }

    // MARK: - Unknown jobs

    /// The error reply for a job id the agent does not know, with the closest configured id
    /// when one is near (`unknown job helo; did you mean `hello`?`), as `validate` offers.
    func unknownJob(_ job: JobID) -> ControlResponse {
        let hint = DidYouMean.hint(job, from: jobSet.jobs.keys).map { "; \($0)" } ?? ""
        return .failure("unknown job \(job)\(hint)")
    }

    // MARK: - status

    /// What `status` needs from the actor, copied in one call.
    struct StatusSnapshot: Sendable {
        var revision: String
        var startedAt: Instant
        var jobs: [(spec: JobSpec, next: Instant?, held: Bool, paused: Bool)]
        var active: [StatusReport.ActiveRun]
    }

    func statusSnapshot() -> StatusSnapshot {
        var jobs: [(spec: JobSpec, next: Instant?, held: Bool, paused: Bool)] = []
        jobs.reserveCapacity(jobSet.jobs.count)
        for (id, spec) in jobSet.jobs {
            jobs.append((spec, scheduler.plannedFire(of: id), scheduler.isHeld(id), scheduler.isPaused(id)))
        }
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
        let jobs = snap.jobs.map { spec, next, held, paused in
            StatusReport.Job(
                id: spec.id, description: spec.description, schedule: Self.scheduleText(spec), enabled: spec.enabled,
                next: next, held: held, last: latest[spec.id], paused: paused, zone: spec.timezone)
        }
        let report = StatusReport(
            version: settings.version, pid: pid, revision: snap.revision, startedAt: snap.startedAt,
            jobs: jobs, active: snap.active, now: clock.wallNow())
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
            return .success(
                TriggerReport(
                    job: job, result: .queued,
                    reason: "the active run is being stopped (concurrency: replace)"
                ).json)
        case let .skipped(reason):
            return .success(TriggerReport(job: job, result: .skipped, reason: await skipText(reason, job: job)).json)
        case .unknownJob: return await unknownJob(job)
        case .shuttingDown: return .failure("the agent is shutting down")
        }
    }

    /// Why a trigger was skipped, naming the job's own policy: with `concurrency: queue`, the
    /// one waiting place taken was reported as `forbid`.
    func skipText(_ reason: SkipReason, job: JobID) -> String {
        switch reason {
        case .overlap:
            jobSet.jobs[job]?.concurrency == .queue
                ? "a run is active and another is already waiting (concurrency: queue)" : "a run is active (concurrency: forbid)"
        case .disabled: "the job is disabled"
        case .needs: "its needs have not finished as required"
        default: reason.rawValue
        }
    }

    // MARK: - history and why

    /// Whether `job` is in the running set.
    func knows(_ job: JobID) -> Bool { jobSet.jobs[job] != nil }

    /// The job's next planned fire, whether the job is in the running set, and for a job started
    /// only by its needs, those needs and the jobs upstream of it (bounded: at most
    /// ``maxUpstreamJobs``, nearest first).
    func plan(of job: JobID) -> (known: Bool, next: Instant?, needs: [Need]?, upstream: [JobID]) {
        guard let spec = jobSet.jobs[job] else { return (false, nil, nil, []) }
        guard case .manual = spec.schedule, !spec.needs.isEmpty else { return (true, scheduler.plannedFire(of: job), nil, []) }
        var upstream: [JobID] = []
        var seen: Set<JobID> = [job]
        var queue = spec.needs.map(\.job)
        var i = 0
        while i < queue.count, upstream.count < Self.maxUpstreamJobs {
            let j = queue[i]
            i += 1
            guard seen.insert(j).inserted else { continue }
            upstream.append(j)
            // Skips reach a needs-only job from further up, through needs-only jobs in between.
            if let s = jobSet.jobs[j], case .manual = s.schedule { queue += s.needs.map(\.job) }
        }
        return (true, nil, spec.needs, upstream)
    }

    /// `why` of a needs-only job reads the runs of at most this many upstream jobs.
    static let maxUpstreamJobs = 16
    /// Runs read per job for `why` of a needs-only job (the newest; the last day rarely has more).
    static let whyRunsPerJob = 1_000

    nonisolated func historyResponse(_ job: JobID, limit: Int) async -> ControlResponse {
        guard let store else { return .failure("this agent keeps no state") }
        let runs: [RunSummary]
        do { runs = try store.history(job: job, limit: max(1, min(limit, ControlRequest.maxHistoryLimit))) } catch {
            return .failure("cannot read the state database: \(error)")
        }
        // A job removed from the configuration still has its history; an id never seen is a typo.
        if runs.isEmpty, await !knows(job) { return await unknownJob(job) }
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
        if entries.isEmpty, !plan.known { return await unknownJob(job) }
        guard let needs = plan.needs else {
            return .success(WhyReport(job: job, since: since, entries: entries, next: plan.next).json)
        }
        // A needs-only job: pair each of its runs and skips with the upstream run that caused it.
        let explained: [NeedsExplanation]
        do {
            let runs = try store.history(job: job, limit: Self.whyRunsPerJob)
            var upstream: [RunSummary] = []
            for u in plan.upstream {
                upstream += try store.history(job: u, limit: Self.whyRunsPerJob).filter { ($0.finishedAt ?? since) >= since }
            }
            explained = NeedsExplanation.explain(
                runs: runs, ledger: entries, upstream: upstream,
                direct: Set(needs.map(\.job)), since: since)
        } catch {
            return .failure("cannot read the state database: \(error)")
        }
        return .success(WhyReport(job: job, since: since, entries: entries, next: nil, after: needs, upstream: explained).json)
    }

    // MARK: - logs

    /// `sundial logs JOB [--run ID]`: a run's stored output, read off the actor like `history`.
    nonisolated func logsResponse(_ job: JobID, run: RunID?) async -> ControlResponse {
        guard let store else { return .failure("this agent keeps no state") }
        let lookup: LogsReport.Lookup
        do {
            lookup = try LogsReport.lookup(
                job: job, run: run, history: { try store.history(job: $0, limit: $1) },
                output: { try store.output(run: $0) })
        } catch {
            return .failure("cannot read the state database: \(error)")
        }
        switch lookup {
        case let .found(report):
            if report.run == nil, await !knows(job) { return await unknownJob(job) }
            return .success(report.json)
        case .noSuchRun:
            if await !knows(job), (try? store.history(job: job, limit: 1))?.isEmpty != false { return await unknownJob(job) }
            return .failure("run \(run?.rawValue ?? "") is not a recorded run of \(job) (`sundial history \(job)` lists them)")
        }
    }

    // MARK: - pause and resume

    nonisolated func pauseResponse(_ job: JobID?, pause: Bool) async -> ControlResponse {
        await setPaused(job, pause)
    }

    /// Pauses or resumes one job (or all); unknown ids get the did-you-mean reply. A job that is
    /// no longer configured can still be resumed (to clear a pause a reload left behind).
    func setPaused(_ job: JobID?, _ pause: Bool) -> ControlResponse {
        guard phase == .running else { return .failure("the agent is not running (starting or shutting down)") }
        let ids: [JobID]
        if let job {
            guard jobSet.jobs[job] != nil || (!pause && scheduler.isPaused(job)) else { return unknownJob(job) }
            ids = [job]
        } else {
            ids = pause ? jobSet.jobs.keys.sorted() : scheduler.pausedJobs.sorted()
        }
        var changed: [JobID] = []
        var unchanged: [JobID] = []
        let now = schedulerNow
        for id in ids {
            guard scheduler.isPaused(id) != pause else {
                unchanged.append(id)
                continue
            }
            perform(scheduler.handle(pause ? .pause(id) : .resume(id), at: now))
            changed.append(id)
        }
        return .success(PauseReport(paused: pause, changed: changed, unchanged: unchanged).json)
    }

    /// The jobs paused now (`sundial pause`), for the state store to keep across restarts
    /// (handed back through ``RestoredState/paused``).
    public var pausedJobs: Set<JobID> { scheduler.pausedJobs }

    // MARK: - trigger --wait and follow

    nonisolated func triggerFollowing(_ job: JobID, output: Bool, stream: ControlStream) async -> ControlResponse {
        await triggerAndSubscribe(job, output: output, stream: stream)
    }

    /// A manual run whose end (and output) `stream` follows. The follower is registered before
    /// the launch is carried out, so not even the run's first line can slip past it; a run that
    /// is queued (`concurrency: queue`) or waits for a replaced run is followed from its start
    /// (the next run of the job that was not active at the trigger).
    func triggerAndSubscribe(_ job: JobID, output: Bool, stream: ControlStream) -> ControlResponse {
        guard phase == .running else { return .failure("the agent is shutting down") }
        guard jobSet.jobs[job] != nil else { return unknownJob(job) }
        let busy = Set(scheduler.activeRuns(of: job))
        guard let token = runWatch.subscribe(job: job, runID: nil, excluding: busy, output: output, stream: stream) else {
            return .failure("too many clients are following runs (at most \(RunWatchHub.maxFollowers)); try again")
        }
        let now = schedulerNow
        let actions = scheduler.handle(.trigger(job), at: now)
        var result = TriggerResult.unknownJob
        for case let .triggerResult(j, r) in actions where j == job { result = r }
        if case let .started(id) = result { runWatch.bind(token, to: id, startedAt: now) }
        switch result {
        case .started, .queued, .replacing: break
        default: runWatch.cancel(token)
        }
        perform(actions)
        var body: JSONValue
        switch result {
        case let .started(id): body = TriggerReport(job: job, result: .started, runID: id).json
        case .queued: body = TriggerReport(job: job, result: .queued, reason: "a run is active (concurrency: queue)").json
        case .replacing:
            body = TriggerReport(job: job, result: .queued, reason: "the active run is being stopped (concurrency: replace)").json
        case let .skipped(reason): return .success(TriggerReport(job: job, result: .skipped, reason: skipText(reason, job: job)).json)
        case .unknownJob: return unknownJob(job)
        case .shuttingDown: return .failure("the agent is shutting down")
        }
        body.setField("stream", .bool(true))
        return .success(body)
    }

    nonisolated func follow(_ job: JobID, stream: ControlStream) async -> ControlResponse {
        await subscribeToRun(of: job, stream: stream)
    }

    /// `logs -f`: follows the job's active run (the newest, when several are), or the next run
    /// of the job when none is active. Reply: `{"job","run_id" (null when waiting),"stream":true}`.
    func subscribeToRun(of job: JobID, stream: ControlStream) -> ControlResponse {
        guard phase == .running else { return .failure("the agent is shutting down") }
        guard jobSet.jobs[job] != nil else { return unknownJob(job) }
        let current = activeRuns.filter { $0.value.job == job }.max { ($0.value.startedAt, $0.key) < ($1.value.startedAt, $1.key) }
        guard
            runWatch.subscribe(
                job: job, runID: current?.key, startedAt: current?.value.startedAt, output: true,
                stream: stream, yields: current == nil) != nil
        else {
            return .failure("too many clients are following runs (at most \(RunWatchHub.maxFollowers)); try again")
        }
        return .success(["job": .string(job), "run_id": current.map { .string($0.key.rawValue) } ?? .null, "stream": .bool(true)])
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
