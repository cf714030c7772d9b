/// What happened to a job, as the notification decision needs it: one attempt's end (and
/// whether the scheduler retries it) or fires missed while the agent was down.
///
/// Built from one scheduler step's events by ``RunFact/facts(fromStep:)``: a failed attempt is a
/// `retry` only when the same step schedules the next attempt, so the step is read as a whole.
public struct RunFact: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        /// An attempt ended; `willRetry` when another attempt of the run is scheduled.
        case attemptEnded(willRetry: Bool)
        /// `count` fires of the job were skipped as `missed`, the first at `scheduledFor`.
        case missed(count: Int, scheduledFor: Instant)
    }

    public var kind: Kind
    public var job: JobID
    public var runID: RunID?
    public var attempt: Int
    public var outcome: RunOutcome?
    public var exitCode: Int32?
    public var signal: Int32?
    public var durationMs: Int64?
    /// When it happened (the event's time).
    public var at: Instant

    public init(
        kind: Kind, job: JobID, runID: RunID? = nil, attempt: Int = 0, outcome: RunOutcome? = nil,
        exitCode: Int32? = nil, signal: Int32? = nil, durationMs: Int64? = nil, at: Instant
    ) {
        self.kind = kind
        self.job = job
        self.runID = runID
        self.attempt = attempt
        self.outcome = outcome
        self.exitCode = exitCode ?? outcome?.exitCode
        self.signal = signal ?? outcome?.signalNumber
        self.durationMs = durationMs
        self.at = at
    }

    /// The facts of one scheduler step's records (`run.finished`, `run.retry_scheduled`,
    /// `run.skipped` with reason `missed`), in order. Other records are ignored.
    public static func facts(fromStep records: [LogRecord]) -> [RunFact] {
        var retried = Set<RunID>()
        for case let .runRetryScheduled(r) in records { retried.insert(r.runID) }
        var facts: [RunFact] = []
        for record in records {
            switch record {
            case let .runFinished(f):
                facts.append(
                    RunFact(
                        kind: .attemptEnded(willRetry: retried.contains(f.runID)), job: f.job, runID: f.runID,
                        attempt: f.attempt, outcome: f.outcome, exitCode: f.exitCode, signal: f.signal,
                        durationMs: f.durationMs, at: f.at))
            case let .runSkipped(s) where s.reason == .missed:
                facts.append(RunFact(kind: .missed(count: s.count ?? 1, scheduledFor: s.scheduledFor), job: s.job, at: s.at))
            default:
                continue
            }
        }
        return facts
    }
}

extension JSONValue {
    /// An integer field of an event line.
    var notifyInt: Int64? { if case let .int(i) = self { return i } else { return nil } }
}
