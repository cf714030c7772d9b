import SundialCore
import OrderedCollections

/// The `run.output` and `run.finished` events (design §3) built from the runner's values, so
/// the field names live in one place.
extension Event {
    /// `run.started`: `job`, `run_id`, `attempt`, `scheduled_for` (RFC 3339 UTC, or `null` for
    /// a manual run), `trigger`, `pid` (`null` if the launch failed).
    public static func runStarted(job: JobID, runID: RunID, attempt: Int, scheduledFor: Instant?, trigger: RunTrigger,
                                  pid: Int32?, at ts: Instant) -> Event {
        Event("run.started", at: ts, level: .info, [
            "job": .string(job), "run_id": .string(runID.rawValue), "attempt": .int(Int64(attempt)),
            "scheduled_for": scheduledFor.map { .string($0.description) } ?? .null,
            "trigger": .string(trigger.rawValue),
            "pid": pid.map { .int(Int64($0)) } ?? .null,
        ])
    }

    /// `run.output`: `job`, `run_id`, `attempt`, `stream`, `line`, and `truncated: true` when cut.
    public static func runOutput(_ line: OutputLine, job: JobID, attempt: Int, at ts: Instant) -> Event {
        var e = Event("run.output", at: ts, level: .info, [
            "job": .string(job), "run_id": .string(line.runID.rawValue), "attempt": .int(Int64(attempt)),
            "stream": .string(line.stream.rawValue), "line": .string(line.text),
        ])
        if line.truncated { e["truncated"] = .bool(true) }
        return e
    }

    /// `run.finished`: `job`, `run_id`, `attempt`, `outcome`, `exit_code`, `signal` (both `null`
    /// when not applicable, so every line has the same shape), `duration_ms`; then `reason` for a
    /// launch failure, and `output_dropped_bytes` / `output_truncated_lines` when non-zero.
    /// Level: `info` on success, `error` when the launch failed, `warn` otherwise.
    public static func runFinished(_ c: RunCompletion, job: JobID, attempt: Int, at ts: Instant) -> Event {
        let level: LogLevel
        switch c.outcome {
        case .success: level = .info
        case .launchFailed: level = .error
        default: level = .warn
        }
        var e = Event("run.finished", at: ts, level: level, [
            "job": .string(job), "run_id": .string(c.runID.rawValue), "attempt": .int(Int64(attempt)),
            "outcome": .string(c.outcome.name),
            "exit_code": c.exitCode.map { .int(Int64($0)) } ?? .null,
            "signal": c.signal.map { .int(Int64($0)) } ?? .null,
            "duration_ms": .int(c.durationMs),
        ])
        if case let .launchFailed(reason) = c.outcome { e["reason"] = .string(reason) }
        if c.droppedBytes > 0 { e["output_dropped_bytes"] = .int(Int64(c.droppedBytes)) }
        if c.truncatedLines > 0 { e["output_truncated_lines"] = .int(Int64(c.truncatedLines)) }
        return e
    }
}
