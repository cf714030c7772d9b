import OrderedCollections

/// The event-log lines the scheduler writes, with design §3's exact names and fields.
extension Scheduler {
    static func runStartedEvent(_ run: RunState, pid: Int32?, at now: Instant) -> Event {
        let trigger: RunTrigger = run.attempt > 1 ? .retry : run.trigger
        return Event("run.started", at: now, level: .info, [
            "job": .string(run.job),
            "run_id": .string(run.id.rawValue),
            "attempt": .int(Int64(run.attempt)),
            "scheduled_for": .string(run.scheduledFor.description),
            "trigger": .string(trigger.rawValue),
            "pid": pid.map { .int(Int64($0)) } ?? .null,
        ])
    }

    static func runFinishedEvent(job: JobID, runID: RunID, attempt: Int, outcome: RunOutcome, durationMs: Int64?,
                                 at now: Instant) -> Event {
        var fields: OrderedDictionary<String, JSONValue> = [
            "job": .string(job),
            "run_id": .string(runID.rawValue),
            "attempt": .int(Int64(attempt)),
            "outcome": .string(outcome.name),
            "exit_code": outcome.exitCode.map { .int(Int64($0)) } ?? .null,
            "signal": outcome.signalNumber.map { .int(Int64($0)) } ?? .null,
            "duration_ms": durationMs.map { .int($0) } ?? .null,
        ]
        if case let .launchFailed(reason) = outcome { fields["error"] = .string(reason) }
        return Event("run.finished", at: now, level: outcome.isSuccess ? .info : .warn, fields)
    }

    static func retryScheduledEvent(job: JobID, runID: RunID, attempt: Int, delayMs: Int64, at now: Instant) -> Event {
        Event("run.retry_scheduled", at: now, level: .info, [
            "job": .string(job),
            "run_id": .string(runID.rawValue),
            "attempt": .int(Int64(attempt)),
            "delay_ms": .int(delayMs),
        ])
    }

    /// `count` is set on a `missed` summary: how many fires it stands for.
    static func runSkippedEvent(job: JobID, scheduledFor: Instant, reason: SkipReason, count: Int?,
                                at now: Instant) -> Event {
        var fields: OrderedDictionary<String, JSONValue> = [
            "job": .string(job),
            "scheduled_for": .string(scheduledFor.description),
            "reason": .string(reason.rawValue),
        ]
        if let count { fields["count"] = .int(Int64(count)) }
        return Event("run.skipped", at: now, level: reason == .missed ? .warn : .info, fields)
    }
}
