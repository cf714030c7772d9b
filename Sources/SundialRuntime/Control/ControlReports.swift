import SundialCore

// The typed bodies of the control replies. The agent builds them and returns
// `.success(report.json)`; the CLI decodes them with `init(json:)` to print them. Times are
// RFC 3339 UTC with milliseconds, as in the event log.

/// `status`: the running configuration and every job's state.
public struct StatusReport: Hashable, Sendable {
    public struct Job: Hashable, Sendable {
        public var id: JobID
        public var description: String?
        /// The schedule as written (`30 2 * * *`, `every 30s`, `manual`...).
        public var schedule: String
        public var enabled: Bool
        public var next: Instant?
        /// A wall-clock job held until the clock is synchronised (`--hold-until-synced`): it has
        /// no `next` until then.
        public var held: Bool
        public var last: RunSummary?
        /// Paused by `sundial pause`: its fires come but do not run.
        public var paused: Bool
        /// The job's `timezone` as written; nil when it has none (the agent's local zone).
        public var zone: String?
        public init(
            id: JobID, description: String? = nil, schedule: String, enabled: Bool = true, next: Instant? = nil,
            held: Bool = false, last: RunSummary? = nil, paused: Bool = false, zone: String? = nil
        ) {
            self.id = id
            self.description = description
            self.schedule = schedule
            self.enabled = enabled
            self.next = next
            self.held = held
            self.last = last
            self.paused = paused
            self.zone = zone
        }
    }

    public struct ActiveRun: Hashable, Sendable {
        public var job: JobID
        public var runID: RunID
        public var attempt: Int
        public var startedAt: Instant
        public var pid: Int32?
        public init(job: JobID, runID: RunID, attempt: Int, startedAt: Instant, pid: Int32?) {
            self.job = job
            self.runID = runID
            self.attempt = attempt
            self.startedAt = startedAt
            self.pid = pid
        }
    }

    public var version: String
    public var pid: Int32
    /// The config revision (a hash of the whole set, as in `config.loaded`).
    public var revision: String
    public var startedAt: Instant
    public var jobs: [Job]
    public var active: [ActiveRun]
    /// The agent's clock when it answered (relative times are counted from it); nil in replies of
    /// agents older than the field.
    public var now: Instant?

    public init(
        version: String, pid: Int32, revision: String, startedAt: Instant, jobs: [Job], active: [ActiveRun],
        now: Instant? = nil
    ) {
        self.version = version
        self.pid = pid
        self.revision = revision
        self.startedAt = startedAt
        self.jobs = jobs
        self.active = active
        self.now = now
    }

    public var json: JSONValue {
        [
            "version": .string(version), "pid": .int(Int64(pid)), "revision": .string(revision),
            "started": .time(startedAt), "now": .time(now),
            "jobs": .array(
                jobs.map { j in
                    [
                        "id": .string(j.id), "description": j.description.map(JSONValue.string) ?? .null,
                        "schedule": .string(j.schedule), "enabled": .bool(j.enabled), "next": .time(j.next),
                        "held": .bool(j.held), "last": j.last.map(\.json) ?? .null,
                        "paused": .bool(j.paused), "zone": j.zone.map(JSONValue.string) ?? .null,
                    ]
                }),
            "active": .array(
                active.map { a in
                    [
                        "job": .string(a.job), "run_id": .string(a.runID.rawValue), "attempt": .int(Int64(a.attempt)),
                        "started": .time(a.startedAt), "pid": a.pid.map { .int(Int64($0)) } ?? .null,
                    ]
                }),
        ]
    }

    public init(json: JSONValue) throws(ControlProtocolError) {
        let r = Reader(json, "status")
        version = try r.string("version")
        pid = Int32(truncatingIfNeeded: try r.int("pid"))
        revision = try r.string("revision")
        startedAt = try r.time("started")
        now = try r.optionalTime("now")
        jobs = try r.array("jobs").map { (v) throws(ControlProtocolError) in
            let j = Reader(v, "status job")
            return Job(
                id: try j.string("id"), description: try j.optionalString("description"), schedule: try j.string("schedule"),
                enabled: try j.bool("enabled"), next: try j.optionalTime("next"),
                // Absent in replies of agents older than the field: not held.
                held: try j.optional("held").map { (v) throws(ControlProtocolError) in
                    guard case let .bool(b) = v else { throw ControlProtocolError("status job: \"held\" is not a boolean") }
                    return b
                } ?? false,
                last: try j.optional("last").map { (v) throws(ControlProtocolError) in try RunSummary(json: v) },
                // Absent in replies of agents older than these fields: not paused, no zone.
                paused: try j.optional("paused") == .bool(true), zone: try j.optionalString("zone"))
        }
        active = try r.array("active").map { (v) throws(ControlProtocolError) in
            let a = Reader(v, "active run")
            return ActiveRun(
                job: try a.string("job"), runID: RunID(rawValue: try a.string("run_id")), attempt: Int(try a.int("attempt")),
                startedAt: try a.time("started"), pid: try a.optionalInt("pid").map { Int32(truncatingIfNeeded: $0) })
        }
    }
}

/// `trigger`: what became of the manual run.
public struct TriggerReport: Hashable, Sendable {
    public enum Result: String, Hashable, Sendable {
        /// The run started.
        case started
        /// `concurrency: queue`: it waits for the active run.
        case queued
        /// `concurrency: forbid` with a run active, or the job is disabled (see `reason`).
        case skipped
    }
    public var job: JobID
    public var result: Result
    public var runID: RunID?
    public var reason: String?
    public init(job: JobID, result: Result, runID: RunID? = nil, reason: String? = nil) {
        self.job = job
        self.result = result
        self.runID = runID
        self.reason = reason
    }

    public var json: JSONValue {
        [
            "job": .string(job), "result": .string(result.rawValue), "run_id": runID.map { .string($0.rawValue) } ?? .null,
            "reason": reason.map(JSONValue.string) ?? .null,
        ]
    }

    public init(json: JSONValue) throws(ControlProtocolError) {
        let r = Reader(json, "trigger")
        job = try r.string("job")
        let text = try r.string("result")
        guard let result = Result(rawValue: text) else { throw ControlProtocolError("unknown trigger result \(text)") }
        self.result = result
        runID = try r.optionalString("run_id").map(RunID.init(rawValue:))
        reason = try r.optionalString("reason")
    }
}

/// `history`: the newest runs of a job, newest first.
public struct HistoryReport: Hashable, Sendable {
    public var job: JobID
    public var runs: [RunSummary]
    public init(job: JobID, runs: [RunSummary]) {
        self.job = job
        self.runs = runs
    }
    public var json: JSONValue { ["job": .string(job), "runs": .array(runs.map(\.json))] }
    public init(json: JSONValue) throws(ControlProtocolError) {
        let r = Reader(json, "history")
        job = try r.string("job")
        runs = try r.array("runs").map { (v) throws(ControlProtocolError) in try RunSummary(json: v) }
    }
}

/// `why`: the ledger of a job since `since` (the last day), oldest first, and its next fire.
///
/// A job started only by its `needs` has no planned fires; for it, `after` lists its needs and
/// `upstream` says, for each of its runs and `upstream` skips in that time, which upstream run
/// started or skipped it (``NeedsExplanation``).
public struct WhyReport: Hashable, Sendable {
    public var job: JobID
    public var since: Instant
    public var entries: [LedgerEntry]
    public var next: Instant?
    /// The needs of a needs-only job (nil for any other job).
    public var after: [Need]?
    public var upstream: [NeedsExplanation]
    public init(
        job: JobID, since: Instant, entries: [LedgerEntry], next: Instant?, after: [Need]? = nil,
        upstream: [NeedsExplanation] = []
    ) {
        self.job = job
        self.since = since
        self.entries = entries
        self.next = next
        self.after = after
        self.upstream = upstream
    }
    public var json: JSONValue {
        var o: JSONValue = ["job": .string(job), "since": .time(since), "next": .time(next), "entries": .array(entries.map(\.json))]
        if let after {
            o.setField("after", .array(after.map { ["job": .string($0.job), "on": .string($0.on.rawValue)] }))
            o.setField("upstream", .array(upstream.map(\.json)))
        }
        return o
    }
    public init(json: JSONValue) throws(ControlProtocolError) {
        let r = Reader(json, "why")
        job = try r.string("job")
        since = try r.time("since")
        next = try r.optionalTime("next")
        let job = job
        entries = try r.array("entries").map { (v) throws(ControlProtocolError) in try LedgerEntry(json: v, job: job) }
        after = try r.optional("after").map { (v) throws(ControlProtocolError) in
            guard case let .array(items) = v else { throw ControlProtocolError("why: \"after\" must be a list") }
            return try items.map { (item) throws(ControlProtocolError) in
                let n = Reader(item, "why need")
                let on = try n.string("on")
                guard let condition = Need.Condition(rawValue: on) else { throw ControlProtocolError("why: unknown need condition \(on)") }
                return Need(job: try n.string("job"), on: condition)
            }
        }
        let upstreamItems: [JSONValue] = try r.optional("upstream") == nil ? [] : r.array("upstream")
        upstream = try upstreamItems.map { (v) throws(ControlProtocolError) in try NeedsExplanation(json: v) }
    }
}

/// `pause` / `resume`: which jobs changed, and which were already so.
public struct PauseReport: Hashable, Sendable {
    /// True for `pause`, false for `resume`.
    public var paused: Bool
    public var changed: [JobID]
    public var unchanged: [JobID]
    public init(paused: Bool, changed: [JobID], unchanged: [JobID]) {
        self.paused = paused
        self.changed = changed
        self.unchanged = unchanged
    }
    public var json: JSONValue {
        ["paused": .bool(paused), "changed": .array(changed.map(JSONValue.string)), "unchanged": .array(unchanged.map(JSONValue.string))]
    }
    public init(json: JSONValue) throws(ControlProtocolError) {
        let r = Reader(json, "pause")
        paused = try r.bool("paused")
        changed = try r.strings("changed")
        unchanged = try r.strings("unchanged")
    }
}

/// `reload`: the configuration now running. A rejected set is a failure reply whose error lists
/// the problems (`file:line:column: message`).
public struct ReloadReport: Hashable, Sendable {
    public var revision: String
    public var added: [JobID]
    public var removed: [JobID]
    public var changed: [JobID]
    public init(revision: String, added: [JobID] = [], removed: [JobID] = [], changed: [JobID] = []) {
        self.revision = revision
        self.added = added
        self.removed = removed
        self.changed = changed
    }
    public var json: JSONValue {
        [
            "revision": .string(revision), "added": .array(added.map(JSONValue.string)),
            "removed": .array(removed.map(JSONValue.string)), "changed": .array(changed.map(JSONValue.string)),
        ]
    }
    public init(json: JSONValue) throws(ControlProtocolError) {
        let r = Reader(json, "reload")
        revision = try r.string("revision")
        added = try r.strings("added")
        removed = try r.strings("removed")
        changed = try r.strings("changed")
    }
}

// MARK: - Runs and ledger entries on the wire

extension RunSummary {
    /// `{"run_id","job","trigger","scheduled_for","started","finished","outcome","attempts","exit_code","signal","detail"}`
    public var json: JSONValue {
        [
            "run_id": .string(id.rawValue), "job": .string(job), "trigger": .string(trigger.rawValue),
            "scheduled_for": .time(scheduledFor), "started": .time(startedAt), "finished": .time(finishedAt),
            "outcome": outcome.map { .string($0.name) } ?? .null, "attempts": .int(Int64(attempts)),
            "exit_code": outcome?.exitCode.map { .int(Int64($0)) } ?? .null,
            "signal": outcome?.signalNumber.map { .int(Int64($0)) } ?? .null,
            "detail": outcome.flatMap { StateCodes.columns($0).detail }.map(JSONValue.string) ?? .null,
        ]
    }

    public init(json: JSONValue) throws(ControlProtocolError) {
        let r = Reader(json, "run")
        let triggerText = try r.string("trigger")
        guard let trigger = RunTrigger(rawValue: triggerText) else { throw ControlProtocolError("unknown trigger \(triggerText)") }
        var outcome: RunOutcome?
        if let name = try r.optionalString("outcome") {
            outcome = StateCodes.outcome(
                name: name, exitCode: try r.optionalInt("exit_code").map { Int32(truncatingIfNeeded: $0) },
                signal: try r.optionalInt("signal").map { Int32(truncatingIfNeeded: $0) }, detail: try r.optionalString("detail"))
            if outcome == nil { throw ControlProtocolError("unknown outcome \(name)") }
        }
        self.init(
            id: RunID(rawValue: try r.string("run_id")), job: try r.string("job"), trigger: trigger,
            scheduledFor: try r.optionalTime("scheduled_for"), startedAt: try r.time("started"),
            finishedAt: try r.optionalTime("finished"), outcome: outcome, attempts: Int(try r.int("attempts")))
    }
}

extension LedgerEntry {
    /// `{"scheduled_for","disposition","reason","run_id","at"}` (the job is the report's).
    public var json: JSONValue {
        let c = StateCodes.columns(disposition)
        return [
            "scheduled_for": .time(scheduledFor), "disposition": .string(c.name),
            "reason": c.reason.map(JSONValue.string) ?? .null, "run_id": c.runID.map(JSONValue.string) ?? .null,
            "at": .time(at),
        ]
    }

    public init(json: JSONValue, job: JobID) throws(ControlProtocolError) {
        let r = Reader(json, "ledger entry")
        let name = try r.string("disposition")
        guard let d = StateCodes.disposition(name: name, reason: try r.optionalString("reason"), runID: try r.optionalString("run_id")) else {
            throw ControlProtocolError("unknown disposition \(name)")
        }
        self.init(job: job, scheduledFor: try r.time("scheduled_for"), disposition: d, at: try r.time("at"))
    }
}

// MARK: - Decoding helpers

extension JSONValue {
    static func time(_ t: Instant?) -> JSONValue { t.map { .string($0.description) } ?? .null }
}

/// Reads typed fields of a reply object, with messages naming the field.
struct Reader {
    let value: JSONValue
    let what: String
    init(_ value: JSONValue, _ what: String) {
        self.value = value
        self.what = what
    }

    func optional(_ key: String) throws(ControlProtocolError) -> JSONValue? {
        guard case .object = value else { throw ControlProtocolError("\(what): expected an object") }
        if case .null? = value[key] { return nil }
        return value[key]
    }
    func required(_ key: String) throws(ControlProtocolError) -> JSONValue {
        guard let v = try optional(key) else { throw ControlProtocolError("\(what): missing \"\(key)\"") }
        return v
    }
    func string(_ key: String) throws(ControlProtocolError) -> String {
        guard let s = try required(key).stringValue else { throw ControlProtocolError("\(what): \"\(key)\" must be a string") }
        return s
    }
    func optionalString(_ key: String) throws(ControlProtocolError) -> String? {
        guard let v = try optional(key) else { return nil }
        guard let s = v.stringValue else { throw ControlProtocolError("\(what): \"\(key)\" must be a string") }
        return s
    }
    func int(_ key: String) throws(ControlProtocolError) -> Int64 {
        guard case let .int(i) = try required(key) else { throw ControlProtocolError("\(what): \"\(key)\" must be an integer") }
        return i
    }
    func optionalInt(_ key: String) throws(ControlProtocolError) -> Int64? {
        guard let v = try optional(key) else { return nil }
        guard case let .int(i) = v else { throw ControlProtocolError("\(what): \"\(key)\" must be an integer") }
        return i
    }
    func bool(_ key: String) throws(ControlProtocolError) -> Bool {
        guard case let .bool(b) = try required(key) else { throw ControlProtocolError("\(what): \"\(key)\" must be true or false") }
        return b
    }
    func array(_ key: String) throws(ControlProtocolError) -> [JSONValue] {
        guard case let .array(a) = try required(key) else { throw ControlProtocolError("\(what): \"\(key)\" must be a list") }
        return a
    }
    func strings(_ key: String) throws(ControlProtocolError) -> [String] {
        try array(key).map { (v) throws(ControlProtocolError) in
            guard let s = v.stringValue else { throw ControlProtocolError("\(what): \"\(key)\" must list strings") }
            return s
        }
    }
    func time(_ key: String) throws(ControlProtocolError) -> Instant {
        let s = try string(key)
        do { return try RFC3339.parse(s).instant } catch { throw ControlProtocolError("\(what): \"\(key)\" is not an RFC 3339 time: \(s)") }
    }
    func optionalTime(_ key: String) throws(ControlProtocolError) -> Instant? {
        guard try optional(key) != nil else { return nil }
        return try time(key)
    }
}
