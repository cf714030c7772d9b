import OrderedCollections

/// The event-log lines the scheduler writes, with design §3's exact names and fields.
///
/// Built with `uncheckedUniqueKeys:values:` (the keys are literals, unique by construction):
/// a dictionary literal would hash every key of every line, a measurable share of a
/// simulated year.
extension Scheduler {
    static func runStartedEvent(_ run: RunState, pid: Int32?, at now: Instant) -> Event {
        let trigger: RunTrigger = run.attempt > 1 ? .retry : run.trigger
        var fields = OrderedDictionary<String, JSONValue>(
            uncheckedUniqueKeys: ["job", "run_id", "attempt", "scheduled_for", "trigger", "pid"],
            values: [
                .string(run.job), .string(run.id.rawValue), .int(Int64(run.attempt)),
                .string(run.scheduledFor.description), .string(trigger.rawValue), pid.map { .int(Int64($0)) } ?? .null,
            ])
        // `lock: fleet`: the fencing token of the claim (absent when run locally without one).
        if let fleet = run.fleet {
            if let lease = fleet.lease { fields["fleet_token"] = .int(lease.token) } else { fields["fleet_token"] = .null }
            if let old = fleet.rerunOf { fields["fleet_rerun_of"] = .int(old) }
        }
        return Event("run.started", at: now, level: .info, fields)
    }

    static func runFinishedEvent(job: JobID, runID: RunID, attempt: Int, outcome: RunOutcome, durationMs: Int64?,
                                 adopted: Bool = false, at now: Instant) -> Event {
        var fields = OrderedDictionary<String, JSONValue>(
            uncheckedUniqueKeys: ["job", "run_id", "attempt", "outcome", "exit_code", "signal", "duration_ms"],
            values: [
                .string(job), .string(runID.rawValue), .int(Int64(attempt)), .string(outcome.name),
                outcome.exitCode.map { .int(Int64($0)) } ?? .null, outcome.signalNumber.map { .int(Int64($0)) } ?? .null,
                durationMs.map { .int($0) } ?? .null,
            ])
        if case let .launchFailed(reason) = outcome { fields["reason"] = .string(reason) }
        // The run outlived an agent crash and was taken over: no exit status, no later output.
        if adopted { fields["adopted"] = .bool(true) }
        return Event("run.finished", at: now, level: outcome.isSuccess ? .info : .warn, fields)
    }

    /// `run.adopted`: a run found alive at start, watched (`on_agent_restart: adopt`) or
    /// being killed (`kill`).
    static func runAdoptedEvent(_ run: RunState, identity: ProcessIdentity, policy: AgentRestartPolicy, at now: Instant) -> Event {
        Event("run.adopted", at: now, level: policy == .adopt ? .info : .warn, OrderedDictionary(
            uncheckedUniqueKeys: ["job", "run_id", "attempt", "scheduled_for", "trigger", "pid", "on_agent_restart"],
            values: [
                .string(run.job), .string(run.id.rawValue), .int(Int64(run.attempt)), .string(run.scheduledFor.description),
                .string(run.trigger.rawValue), .int(Int64(identity.pid)), .string(policy.rawValue),
            ]))
    }

    static func retryScheduledEvent(job: JobID, runID: RunID, attempt: Int, delayMs: Int64, at now: Instant) -> Event {
        Event("run.retry_scheduled", at: now, level: .info, OrderedDictionary(
            uncheckedUniqueKeys: ["job", "run_id", "attempt", "delay_ms"],
            values: [.string(job), .string(runID.rawValue), .int(Int64(attempt)), .int(delayMs)]))
    }

    /// `count` is set on a `missed` summary: how many fires it stands for.
    static func runSkippedEvent(job: JobID, scheduledFor: Instant, reason: SkipReason, count: Int?,
                                at now: Instant) -> Event {
        var fields = OrderedDictionary<String, JSONValue>(
            uncheckedUniqueKeys: ["job", "scheduled_for", "reason"],
            values: [.string(job), .string(scheduledFor.description), .string(reason.rawValue)])
        if let count { fields["count"] = .int(Int64(count)) }
        return Event("run.skipped", at: now, level: reason == .missed ? .warn : .info, fields)
    }
}
