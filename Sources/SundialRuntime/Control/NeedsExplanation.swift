import SundialCore

/// For a job started only by its `needs`, what happened when an upstream run ended: this job
/// ran, or was skipped (an unmet need: `upstream`; or `paused`, `disabled`...), and which
/// upstream run's end it was.
///
/// Why it can be worked out afterwards without recording anything more: the scheduler starts
/// or skips a needs-only job in the same step in which the upstream run ends, so the run's
/// `scheduled_for` (and the skip's ledger instant) is exactly the upstream run's finish time.
public struct NeedsExplanation: Hashable, Sendable {
    public enum What: Hashable, Sendable {
        /// This job ran: its run and (once ended) its outcome.
        case ran(RunID, RunOutcome?)
        case skipped(SkipReason)
    }
    /// When the upstream run ended, and so when this job was started or skipped.
    public var at: Instant
    public var what: What
    /// The upstream run that ended at ``at`` (nil when its record is gone or out of reach).
    public var upstream: RunSummary?

    public init(at: Instant, what: What, upstream: RunSummary?) {
        self.at = at
        self.what = what
        self.upstream = upstream
    }

    /// Pairs this job's needs-triggered runs and its ledger skips (since `since`) with the
    /// upstream runs (of any job it needs, directly or through other jobs) that ended at the
    /// same instant; oldest first. When two upstream runs ended in the same millisecond, one of
    /// `direct` (the job's own needs) is preferred.
    public static func explain(
        runs: [RunSummary], ledger: [LedgerEntry], upstream: [RunSummary], direct: Set<JobID>,
        since: Instant
    ) -> [NeedsExplanation] {
        var byEnd: [Int64: RunSummary] = [:]
        for u in upstream {
            guard let end = u.finishedAt else { continue }
            if let known = byEnd[end.unixMillis], direct.contains(known.job) || !direct.contains(u.job) { continue }
            byEnd[end.unixMillis] = u
        }
        var out: [NeedsExplanation] = []
        for r in runs where r.trigger == .needs {
            let at = r.scheduledFor ?? r.startedAt
            guard at >= since else { continue }
            out.append(NeedsExplanation(at: at, what: .ran(r.id, r.outcome), upstream: byEnd[at.unixMillis]))
        }
        for e in ledger where e.scheduledFor >= since {
            guard case let .skipped(reason) = e.disposition else { continue }
            out.append(NeedsExplanation(at: e.scheduledFor, what: .skipped(reason), upstream: byEnd[e.scheduledFor.unixMillis]))
        }
        return out.sorted { $0.at < $1.at }
    }

    /// `{"at","run_id","outcome","exit_code","signal","upstream"}` for a run, `{"at","skipped","upstream"}` for a skip.
    public var json: JSONValue {
        var o: JSONValue = ["at": .time(at)]
        switch what {
        case let .ran(id, outcome):
            o.setField("run_id", .string(id.rawValue))
            o.setField("outcome", outcome.map { .string($0.name) } ?? .null)
            o.setField("exit_code", outcome?.exitCode.map { .int(Int64($0)) } ?? .null)
            o.setField("signal", outcome?.signalNumber.map { .int(Int64($0)) } ?? .null)
        case let .skipped(reason):
            o.setField("skipped", .string(reason.rawValue))
        }
        o.setField("upstream", upstream.map(\.json) ?? .null)
        return o
    }

    public init(json: JSONValue) throws(ControlProtocolError) {
        let r = Reader(json, "why upstream entry")
        at = try r.time("at")
        if let reason = try r.optionalString("skipped") {
            guard let skip = SkipReason(rawValue: reason) else { throw ControlProtocolError("unknown skip reason \(reason)") }
            what = .skipped(skip)
        } else {
            var outcome: RunOutcome?
            if let name = try r.optionalString("outcome") {
                outcome = StateCodes.outcome(
                    name: name, exitCode: try r.optionalInt("exit_code").map { Int32(truncatingIfNeeded: $0) },
                    signal: try r.optionalInt("signal").map { Int32(truncatingIfNeeded: $0) }, detail: nil)
            }
            what = .ran(RunID(rawValue: try r.string("run_id")), outcome)
        }
        upstream = try r.optional("upstream").map { (v) throws(ControlProtocolError) in try RunSummary(json: v) }
    }
}
