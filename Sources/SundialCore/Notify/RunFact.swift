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

    public init(kind: Kind, job: JobID, runID: RunID? = nil, attempt: Int = 0, outcome: RunOutcome? = nil,
                exitCode: Int32? = nil, signal: Int32? = nil, durationMs: Int64? = nil, at: Instant) {
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

    /// The facts of one scheduler step's events (`run.finished`, `run.retry_scheduled`,
    /// `run.skipped` with reason `missed`), in order. Other events are ignored.
    public static func facts(fromStep events: [Event]) -> [RunFact] {
        var retried = Set<String>()
        for e in events where e.name == "run.retry_scheduled" {
            if let id = e["run_id"]?.stringValue { retried.insert(id) }
        }
        var facts: [RunFact] = []
        for e in events {
            guard let job = e["job"]?.stringValue else { continue }
            switch e.name {
            case "run.finished":
                guard let id = e["run_id"]?.stringValue, let outcome = outcome(of: e) else { continue }
                facts.append(RunFact(kind: .attemptEnded(willRetry: retried.contains(id)), job: job, runID: RunID(rawValue: id),
                                     attempt: Int(e["attempt"]?.notifyInt ?? 1), outcome: outcome,
                                     exitCode: e["exit_code"]?.notifyInt.flatMap { Int32(exactly: $0) },
                                     signal: e["signal"]?.notifyInt.flatMap { Int32(exactly: $0) },
                                     durationMs: e["duration_ms"]?.notifyInt, at: e.ts))
            case "run.skipped":
                guard e["reason"]?.stringValue == SkipReason.missed.rawValue,
                      let text = e["scheduled_for"]?.stringValue, let first = try? RFC3339.parse(text).instant else { continue }
                facts.append(RunFact(kind: .missed(count: Int(e["count"]?.notifyInt ?? 1), scheduledFor: first), job: job, at: e.ts))
            default:
                continue
            }
        }
        return facts
    }

    /// The outcome a `run.finished` line names (exit code and reason are in their own fields).
    static func outcome(of e: Event) -> RunOutcome? {
        let code = e["exit_code"]?.notifyInt.flatMap { Int32(exactly: $0) }
        switch e["outcome"]?.stringValue {
        case "success": return .success(exitCode: code ?? 0)
        case "failure": return .failure(exitCode: code ?? 1)
        case "signal": return .signal(e["signal"]?.notifyInt.flatMap { Int32(exactly: $0) } ?? 0)
        case "timeout": return .timeout
        case "launch_failed": return .launchFailed(reason: e["reason"]?.stringValue ?? "")
        case "interrupted": return .interrupted
        case "unknown": return .unknown
        default: return nil
        }
    }
}

extension JSONValue {
    /// An integer field of an event line.
    var notifyInt: Int64? { if case let .int(i) = self { return i } else { return nil } }
}
