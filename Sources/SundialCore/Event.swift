import OrderedCollections

/// Severity of an event-log line (design §3).
public enum LogLevel: String, Sendable, Comparable, CaseIterable {
    case debug, info, warn, error

    private var rank: Int {
        switch self {
        case .debug: 0
        case .info: 1
        case .warn: 2
        case .error: 3
        }
    }
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rank < b.rank }
}

/// One line of the JSON-lines event log (design §3), as rendered: a name and ordered fields.
///
/// Code does not build these: it builds a ``LogRecord`` (one typed case per event), whose
/// encoder (``LogRecord/event``) is the only producer of names and fields, so that consumers
/// match typed cases rather than strings (issue 16). Tests read rendered lines through it.
///
/// `ts`, `level` and `event` always come first, in that order, then the fields in insertion
/// order, so that `jq`, Loki and a human reading `tail -f` see the same stable shape.
public struct Event: Sendable, Hashable {
    public var ts: Instant
    public var level: LogLevel
    /// The dotted event name, e.g. `run.started`.
    public var name: String
    public var fields: OrderedDictionary<String, JSONValue>

    public init(_ name: String, at ts: Instant, level: LogLevel = .info, _ fields: OrderedDictionary<String, JSONValue> = [:]) {
        self.ts = ts
        self.level = level
        self.name = name
        self.fields = fields
    }

    public subscript(field: String) -> JSONValue? {
        get { fields[field] }
        set { fields[field] = newValue }
    }

    /// The event as one line of JSON, terminated by `\n`.
    public func jsonLine() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        appendJSONLine(to: &out)
        return out
    }

    /// Appends the event's JSON line (with its terminating `\n`) to `out`.
    public func appendJSONLine(to out: inout [UInt8]) {
        out.append(contentsOf: #"{"ts":""#.utf8)
        out.append(contentsOf: ts.description.utf8)
        out.append(contentsOf: #"","level":""#.utf8)
        out.append(contentsOf: level.rawValue.utf8)
        out.append(contentsOf: #"","event":"#.utf8)
        JSONValue.encodeString(name, into: &out)
        for (k, v) in fields where k != "ts" && k != "level" && k != "event" {
            out.append(UInt8(ascii: ","))
            JSONValue.encodeString(k, into: &out)
            out.append(UInt8(ascii: ":"))
            v.encode(into: &out)
        }
        out.append(contentsOf: "}\n".utf8)
    }
}
