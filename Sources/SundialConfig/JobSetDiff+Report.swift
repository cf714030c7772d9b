import OrderedCollections
import SundialCore

extension JobSetDiff {
    /// Renders a job's upcoming fires (e.g. the next three, as RFC 3339 with the zone's offset).
    /// Injected so the report stays pure: the command computes them with the real zone
    /// database and clock, tests with fixed strings.
    public typealias FireRenderer = (JobSpec) -> [String]

    /// The report for people: a summary line, then one block per added, removed and changed
    /// job. Changed fields read `field: old -> new`; an unset field shows as `(unset)`.
    public func text(fires: FireRenderer) -> String {
        guard !isEmpty else { return "no changes (revision \(oldRevision) -> \(newRevision))\n" }
        var out =
            "\(added.count) added, \(removed.count) removed, \(changed.count) changed"
            + " (revision \(oldRevision) -> \(newRevision))\n"
        for job in added {
            out += "\nadded: \(job.id)\(Self.where(job.location))\n"
            for (key, value) in Self.significantFields(of: job) { out += "    \(key): \(value)\n" }
            out += "    next fires: \(Self.fireLine(job, fires(job)))\n"
        }
        for job in removed {
            out += "\nremoved: \(job.id)\(Self.where(job.location))\n"
        }
        for change in changed {
            out += "\nchanged: \(change.id)\(Self.where(change.new.location))\n"
            for f in change.fields {
                out += "    \(f.field): \(f.old ?? "(unset)") -> \(f.new ?? "(unset)")\n"
            }
            let before = fires(change.old)
            let after = fires(change.new)
            if before == after, !change.timingChanged {
                out += "    next fires (unchanged): \(Self.fireLine(change.new, after))\n"
            } else {
                out += "    next fires before: \(Self.fireLine(change.old, before))\n"
                out += "    next fires after:  \(Self.fireLine(change.new, after))\n"
            }
        }
        return out
    }

    /// The report for tools: one JSON object (stable keys, documented in docs/reload.md).
    public func json(fires: FireRenderer) -> JSONValue {
        func location(_ l: SourceLocation?) -> JSONValue { l.map { .string($0.description) } ?? .null }
        func times(_ t: [String]) -> JSONValue { .array(t.map { .string($0) }) }
        let addedJSON: [JSONValue] = added.map { job in
            var fields: OrderedDictionary<String, JSONValue> = [:]
            for (k, v) in Self.fields(of: job) { fields[k] = .string(v) }
            return [
                "job": .string(job.id), "location": location(job.location),
                "fields": .object(fields), "next_fires": times(fires(job)),
            ]
        }
        let removedJSON: [JSONValue] = removed.map { ["job": .string($0.id), "location": location($0.location)] }
        let changedJSON: [JSONValue] = changed.map { c in
            let fields: [JSONValue] = c.fields.map { f in
                ["field": .string(f.field), "old": f.old.map(JSONValue.string) ?? .null, "new": f.new.map(JSONValue.string) ?? .null]
            }
            return [
                "job": .string(c.id), "location": location(c.new.location), "old_location": location(c.old.location),
                "fields": .array(fields), "timing_changed": .bool(c.timingChanged),
                "next_fires_before": times(fires(c.old)), "next_fires_after": times(fires(c.new)),
            ]
        }
        return [
            "changes": .bool(!isEmpty), "old_revision": .string(oldRevision), "new_revision": .string(newRevision),
            "added": .array(addedJSON), "removed": .array(removedJSON), "changed": .array(changedJSON),
        ]
    }

    static func `where`(_ l: SourceLocation?) -> String { l.map { " (\($0))" } ?? "" }

    /// The fires joined, or why there are none.
    static func fireLine(_ job: JobSpec, _ fires: [String]) -> String {
        if !fires.isEmpty { return fires.joined(separator: ", ") }
        if !job.enabled { return "none (disabled)" }
        switch job.schedule {
        case .manual: return job.needs.isEmpty ? "none (runs only when triggered)" : "none (runs after its needs)"
        case .reboot: return "none (runs when the agent starts)"
        case .at: return "none (its `at` times are past)"
        case .cron, .every: return "none"
        }
    }
}
