import OrderedCollections

/// The facts of one notification, as a receiver sees them: the JSON body of a webhook and of a
/// command's standard input, and a command's `SUNDIAL_*` variables. One source for both, so a
/// script reading `$SUNDIAL_OUTCOME` and one reading `.outcome` from stdin agree.
public struct NotificationFacts: Hashable, Sendable {
    public var event: NotifyEvent
    public var job: JobID
    public var runID: RunID?
    public var attempt: Int?
    public var outcome: String?
    public var exitCode: Int32?
    public var signal: Int32?
    public var reason: String?
    public var startedAt: Instant?
    public var finishedAt: Instant?
    public var durationMs: Int64?
    /// Missed fires: how many, and the first one.
    public var missedCount: Int?
    public var scheduledFor: Instant?
    /// The host the agent runs on (`uname -n`).
    public var box: String

    public init(event: NotifyEvent, fact: RunFact, box: String) {
        self.event = event
        self.job = fact.job
        self.box = box
        switch fact.kind {
        case let .missed(count, first):
            missedCount = count
            scheduledFor = first
            finishedAt = fact.at
        case .attemptEnded:
            runID = fact.runID
            attempt = fact.attempt
            outcome = fact.outcome?.name
            exitCode = fact.exitCode
            signal = fact.signal
            if case let .launchFailed(r)? = fact.outcome { reason = r }
            finishedAt = fact.at
            durationMs = fact.durationMs
            if let d = fact.durationMs { startedAt = Instant(unixMillis: fact.at.unixMillis &- d) }
        }
    }

    /// The fields in a stable order, absent facts left out.
    var fields: [(name: String, value: JSONValue)] {
        var f: [(String, JSONValue)] = [("event", .string(event.rawValue)), ("job", .string(job))]
        if let runID { f.append(("run_id", .string(runID.rawValue))) }
        if let attempt { f.append(("attempt", .int(Int64(attempt)))) }
        if let outcome { f.append(("outcome", .string(outcome))) }
        if let exitCode { f.append(("exit_code", .int(Int64(exitCode)))) }
        if let signal { f.append(("signal", .int(Int64(signal)))) }
        if let reason { f.append(("reason", .string(reason))) }
        if let scheduledFor { f.append(("scheduled_for", .string(scheduledFor.description))) }
        if let missedCount { f.append(("missed_count", .int(Int64(missedCount)))) }
        if let startedAt { f.append(("started_at", .string(startedAt.description))) }
        if let finishedAt { f.append(("finished_at", .string(finishedAt.description))) }
        if let durationMs { f.append(("duration_ms", .int(durationMs))) }
        f.append(("box", .string(box)))
        return f
    }

    /// The JSON document (a webhook's body, a command's standard input).
    public var json: JSONValue {
        .object(OrderedDictionary(uniqueKeysWithValues: fields.map { ($0.name, $0.value) }))
    }

    /// `SUNDIAL_EVENT`, `SUNDIAL_JOB`, `SUNDIAL_RUN_ID`, … : each field upper-cased, numbers in
    /// decimal, times in RFC 3339 UTC.
    public var environment: [(name: String, value: String)] {
        fields.map { name, value in
            let text: String
            switch value {
            case let .string(s): text = s
            case let .int(i): text = String(i)
            default: text = value.jsonText
            }
            return ("SUNDIAL_" + name.uppercased(), text)
        }
    }
}
