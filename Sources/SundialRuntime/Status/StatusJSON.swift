import OrderedCollections
import SundialCore

// The `/api/v1/` bodies, built on the project's own ``JSONValue`` (encoded by its hand-written
// encoder, no Foundation). docs/openapi/status-api.yaml describes them and a test checks real
// responses against it: change both together. Runs and ledger entries use the control
// protocol's shapes (`sundial history --json`, `sundial why --json`), so one reader fits both.

extension StatusAgentInfo {
    public var json: JSONValue {
        var o: OrderedDictionary<String, JSONValue> = [
            "version": .string(version), "pid": .int(Int64(pid)), "revision": .string(revision),
            "started": .time(startedAt), "config_loaded": .time(configLoadedAt),
            "clock_synchronised": clockSynchronised.map(JSONValue.bool) ?? .null, "calendar_held": .bool(calendarHeld),
            "now": .time(now),
        ]
        o["last_rejected"] =
            lastRejected.map { r in
                [
                    "at": .time(r.at), "reason": .string(r.reason),
                    "errors": .array(
                        r.errors.map { e in
                            ["file": .string(e.file), "line": .int(Int64(e.line)), "column": .int(Int64(e.column)), "message": .string(e.message)]
                        }),
                ]
            } ?? .null
        return .object(o)
    }
}

extension StatusJobRow {
    public var json: JSONValue {
        var o: OrderedDictionary<String, JSONValue> = [
            "id": .string(id), "description": description.map(JSONValue.string) ?? .null, "schedule": .string(schedule),
            "explanation": explanation.map(JSONValue.string) ?? .null, "timezone": timezone.map(JSONValue.string) ?? .null,
            "enabled": .bool(enabled), "next": .time(next), "next_local": nextLocal.map(JSONValue.string) ?? .null,
            "held": .bool(held), "running": .bool(running),
            "last": last.map(\.json) ?? .null,
            "recent": .array(recent.map { .string($0.statusClass) }),
        ]
        if let paused { o["paused"] = .bool(paused) }
        return .object(o)
    }
}

extension StatusRun {
    public var json: JSONValue {
        guard case var .object(o) = summary.json else { return summary.json }
        if let output { o["output"] = .array(output.map(JSONValue.string)) }
        return .object(o)
    }
}

extension StatusJobDetail {
    public var json: JSONValue {
        [
            "job": row.json,
            "definition": definition.map { d in .object(OrderedDictionary(d.map { ($0.key, JSONValue.string($0.value)) }, uniquingKeysWith: { a, _ in a })) }
                ?? .null,
            "source": location.map { l in ["file": .string(l.file), "line": .int(Int64(l.line)), "column": .int(Int64(l.column))] } ?? .null,
            "ledger": .array(ledger.map(\.json)),
        ]
    }

    /// `/api/v1/jobs/{id}/runs`.
    public var runsJSON: JSONValue { ["job": .string(row.id), "runs": .array(runs.map(\.json))] }
}

enum StatusJSON {
    /// `/api/v1/jobs`.
    static func jobs(_ rows: [StatusJobRow], now: Instant) -> JSONValue {
        ["now": .time(now), "jobs": .array(rows.map(\.json))]
    }

    /// The body of every error answer: `{"error": "..."}`.
    static func error(_ message: String) -> JSONValue { ["error": .string(message)] }
}
