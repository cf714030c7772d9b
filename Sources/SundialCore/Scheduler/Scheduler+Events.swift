/// The log records the scheduler writes (design §3; rendered by LogRecord+JSON.swift).
extension Scheduler {
    static func runStartedEvent(_ run: RunState, pid: Int32?, at now: Instant) -> LogRecord {
        let trigger: RunTrigger = run.attempt > 1 ? .retry : run.trigger
        return .runStarted(
            .init(
                job: run.job, runID: run.id, attempt: run.attempt, scheduledFor: run.scheduledFor,
                trigger: trigger, pid: pid, at: now,
                fleet: run.fleet.map { .init(token: $0.lease?.token, rerunOf: $0.rerunOf) }))
    }

    /// `exit_code` and `signal` are the outcome's; the agent adds what only the runner saw.
    static func runFinishedEvent(
        job: JobID, runID: RunID, attempt: Int, outcome: RunOutcome, durationMs: Int64?,
        adopted: Bool = false, at now: Instant
    ) -> LogRecord {
        .runFinished(
            .init(
                job: job, runID: runID, attempt: attempt, outcome: outcome, exitCode: outcome.exitCode,
                signal: outcome.signalNumber, durationMs: durationMs, adopted: adopted, at: now))
    }

    /// `run.adopted`: a run found alive at start, watched (`on_agent_restart: adopt`) or
    /// being killed (`kill`).
    static func runAdoptedEvent(_ run: RunState, identity: ProcessIdentity, policy: AgentRestartPolicy, at now: Instant) -> LogRecord {
        .runAdopted(
            .init(
                job: run.job, runID: run.id, attempt: run.attempt, scheduledFor: run.scheduledFor,
                trigger: run.trigger, pid: identity.pid, policy: policy, at: now))
    }

    static func retryScheduledEvent(job: JobID, runID: RunID, attempt: Int, delayMs: Int64, at now: Instant) -> LogRecord {
        .runRetryScheduled(.init(job: job, runID: runID, attempt: attempt, delayMs: delayMs, at: now))
    }

    /// `count` is set on a `missed` summary: how many fires it stands for.
    static func runSkippedEvent(
        job: JobID, scheduledFor: Instant, reason: SkipReason, count: Int?,
        at now: Instant
    ) -> LogRecord {
        .runSkipped(.init(job: job, scheduledFor: scheduledFor, reason: reason, count: count, at: now))
    }
}
