import OrderedCollections
import SundialCore

/// One request on the control socket (design §4). On the wire, one JSON object per line:
/// `{"v":1,"op":"status"}`, `{"v":1,"op":"trigger","job":"backup"}`,
/// `{"v":1,"op":"history","job":"backup","limit":20}`, `{"v":1,"op":"why","job":"backup"}`,
/// `{"v":1,"op":"reload"}`, `{"v":1,"op":"pause","job":"backup"}` (or `"all":true`),
/// `{"v":1,"op":"resume","job":"backup"}`, `{"v":1,"op":"logs","job":"backup","run":"ID"}` (`run`
/// optional), and two that stream (``ControlStreamMessage``):
/// `{"v":1,"op":"trigger","job":"backup","wait":"end"}` (or `"output"`) and
/// `{"v":1,"op":"follow","job":"backup"}`.
public enum ControlRequest: Hashable, Sendable {
    /// Config revision, each job's next fire and last outcome, active runs (``StatusReport``).
    case status
    /// A manual run, honouring the job's `concurrency` (``TriggerReport``).
    case trigger(job: JobID)
    /// The newest `limit` runs of a job (``HistoryReport``).
    case history(job: JobID, limit: Int)
    /// What became of each planned fire of a job in the last day (``WhyReport``).
    case why(job: JobID)
    /// The stored output of a run of the job, by default its newest (``LogsReport``).
    case logs(job: JobID, run: RunID?)
    /// Reload the configuration now, as SIGHUP does (``ReloadReport``).
    case reload
    /// Pause one job, or every job when `job` is nil (``PauseReport``).
    case pause(job: JobID?)
    /// Resume one paused job, or every paused job when `job` is nil (``PauseReport``).
    case resume(job: JobID?)
    /// A manual run, then the connection streams that run's end (and, with `output`, its output
    /// lines) until it ends (`sundial trigger --wait` / `--follow`). Op `trigger`.
    case triggerAndWait(job: JobID, output: Bool)
    /// Streams the output and end of the job's active run, or of its next run when none is active
    /// (`sundial logs JOB -f`).
    case follow(job: JobID)

    /// The protocol version this build speaks (`"v"`).
    public static let protocolVersion: Int64 = 1
    /// `history` without a limit.
    public static let defaultHistoryLimit = 20
    /// The largest `history` limit accepted.
    public static let maxHistoryLimit = 1_000
    /// The longest job id a job file can give (the schema's `jobId`: `[a-z0-9][a-z0-9_.-]{0,62}`).
    public static let maxJobIDBytes = 63

    public var op: String {
        switch self {
        case .status: "status"
        case .trigger: "trigger"
        case .history: "history"
        case .why: "why"
        case .logs: "logs"
        case .reload: "reload"
        case .pause: "pause"
        case .resume: "resume"
        case .triggerAndWait: "trigger"
        case .follow: "follow"
        }
    }

    /// Whether the reply may be followed by a stream of ``ControlStreamMessage`` lines.
    public var streams: Bool {
        switch self {
        case .triggerAndWait, .follow: true
        default: false
        }
    }

    /// Whether the reply may be megabytes (`logs`: up to 16 MiB of a run's output, read from the
    /// state database and encoded): the control server answers these one at a time. The other
    /// replies are bounded by the job set or a day of history, and are not held up behind them.
    public var mayReplyLarge: Bool {
        if case .logs = self { true } else { false }
    }

    public var json: JSONValue {
        var o: JSONValue = ["v": .int(Self.protocolVersion), "op": .string(op)]
        switch self {
        case .status, .reload: break
        case let .trigger(job), let .why(job), let .follow(job): o.setField("job", .string(job))
        case let .pause(job), let .resume(job):
            if let job { o.setField("job", .string(job)) } else { o.setField("all", .bool(true)) }
        case let .triggerAndWait(job, output):
            o.setField("job", .string(job))
            o.setField("wait", .string(output ? "output" : "end"))
        case let .history(job, limit):
            o.setField("job", .string(job))
            o.setField("limit", .int(Int64(limit)))
        case let .logs(job, run):
            o.setField("job", .string(job))
            if let run { o.setField("run", .string(run.rawValue)) }
        }
        return o
    }

    /// Decodes a request, with a message fit for the error reply when it is not one.
    public init(json: JSONValue) throws(ControlProtocolError) {
        guard case .object = json else { throw ControlProtocolError("a request must be a JSON object") }
        guard case let .int(v)? = json["v"] else { throw ControlProtocolError("missing protocol version \"v\"") }
        guard v == Self.protocolVersion else {
            throw ControlProtocolError("unsupported protocol version \(v) (this agent speaks \(Self.protocolVersion))")
        }
        guard let op = json["op"]?.stringValue else { throw ControlProtocolError("missing \"op\"") }
        func job() throws(ControlProtocolError) -> JobID {
            guard let j = json["job"]?.stringValue, !j.isEmpty else { throw ControlProtocolError("\(op) needs a \"job\"") }
            // No configured job can have a longer id, and a long one would only cost the agent
            // an edit-distance search for a "did you mean" on its actor, where fires are decided.
            guard j.utf8.count <= Self.maxJobIDBytes else {
                throw ControlProtocolError("\"job\" is longer than \(Self.maxJobIDBytes) bytes, so no job has that id")
            }
            return j
        }
        switch op {
        case "status": self = .status
        case "reload": self = .reload
        case "trigger":
            switch json["wait"] {
            case nil, .null?: self = .trigger(job: try job())
            case .string("end")?: self = .triggerAndWait(job: try job(), output: false)
            case .string("output")?: self = .triggerAndWait(job: try job(), output: true)
            default: throw ControlProtocolError("\"wait\" must be \"end\" or \"output\"")
            }
        case "follow": self = .follow(job: try job())
        case "pause", "resume":
            let all = json["all"] == .bool(true)
            guard all != (json["job"]?.stringValue != nil), json["job"]?.stringValue?.isEmpty != true else {
                throw ControlProtocolError("\(op) needs either a \"job\" or \"all\": true")
            }
            let named = all ? nil : try job()
            self = op == "pause" ? .pause(job: named) : .resume(job: named)
        case "why": self = .why(job: try job())
        case "logs":
            switch json["run"] {
            case nil, .null?: self = .logs(job: try job(), run: nil)
            case let .string(id)? where !id.isEmpty && id.utf8.count <= 128: self = .logs(job: try job(), run: RunID(rawValue: id))
            default: throw ControlProtocolError("\"run\" must be a run id (a non-empty string of at most 128 bytes)")
            }
        case "history":
            var limit = Self.defaultHistoryLimit
            switch json["limit"] {
            case nil, .null?: break
            case let .int(n)? where n >= 1 && n <= Int64(Self.maxHistoryLimit): limit = Int(n)
            default: throw ControlProtocolError("\"limit\" must be an integer from 1 to \(Self.maxHistoryLimit)")
            }
            self = .history(job: try job(), limit: limit)
        default:
            throw ControlProtocolError("unknown op \"\(op)\" (expected status, trigger, history, why, logs, reload, pause, resume or follow)")
        }
    }
}

/// A request or reply that does not follow the protocol; the message goes into the error reply.
public struct ControlProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// What a ``ControlHandler`` answers: `{"v":1,"ok":true,...body}` or
/// `{"v":1,"ok":false,"error":"..."}`.
public struct ControlResponse: Hashable, Sendable {
    public var ok: Bool
    /// The reply's fields besides `v`, `ok` and `error` (a JSON object).
    public var body: JSONValue
    public var error: String?

    public static func success(_ body: JSONValue = [:]) -> ControlResponse { ControlResponse(ok: true, body: body, error: nil) }
    public static func failure(_ message: String) -> ControlResponse { ControlResponse(ok: false, body: [:], error: message) }

    public var json: JSONValue {
        var o: JSONValue = ["v": .int(ControlRequest.protocolVersion), "ok": .bool(ok)]
        if let error { o.setField("error", .string(error)) }
        if case let .object(fields) = body {
            for (k, v) in fields where k != "v" && k != "ok" && k != "error" { o.setField(k, v) }
        }
        return o
    }

    public init(ok: Bool, body: JSONValue, error: String?) {
        self.ok = ok
        self.body = body
        self.error = error
    }

    public init(json: JSONValue) throws(ControlProtocolError) {
        guard case let .object(o) = json, case let .bool(ok)? = o["ok"] else {
            throw ControlProtocolError("the reply is not a control protocol reply")
        }
        guard case let .int(v)? = o["v"], v == ControlRequest.protocolVersion else {
            throw ControlProtocolError("the agent speaks another protocol version (\(o["v"]?.jsonText ?? "none"))")
        }
        self.ok = ok
        self.error = o["error"]?.stringValue ?? (ok ? nil : "unspecified error")
        var body: JSONValue = [:]
        for (k, v) in o where k != "v" && k != "ok" && k != "error" { body.setField(k, v) }
        self.body = body
    }
}

/// Answers control requests: the agent implements it; tests use a fake.
public protocol ControlHandler: Sendable {
    func handle(_ request: ControlRequest) async -> ControlResponse
    /// A request that may stream (``ControlRequest/streams``): the handler may keep `stream` and
    /// send ``ControlStreamMessage``s into it after its reply, which then carries `"stream": true`
    /// (``ControlResponse/startsStream``). Without that flag the stream is discarded.
    func handle(_ request: ControlRequest, stream: ControlStream) async -> ControlResponse
}

extension ControlHandler {
    /// Handlers that do not stream answer streaming requests like any other.
    public func handle(_ request: ControlRequest, stream: ControlStream) async -> ControlResponse {
        await handle(request)
    }
}

extension ControlResponse {
    /// Whether stream lines follow this reply.
    public var startsStream: Bool { ok && body["stream"] == .bool(true) }
}

extension JSONValue {
    /// Sets `key` on an object (no effect on other values), keeping insertion order.
    mutating func setField(_ key: String, _ value: JSONValue) {
        guard case var .object(o) = self else { return }
        o[key] = value
        self = .object(o)
    }
}

// MARK: - Lines on the wire

/// A message that travels as one line of JSON: a request or a reply.
public protocol ControlLine {
    var json: JSONValue { get }
    init(json: JSONValue) throws(ControlProtocolError)
    /// What to say when a line is not JSON at all.
    static func malformed(_ reason: String) -> ControlProtocolError
}

extension ControlLine {
    /// Decodes one line (without its newline).
    public init(line: [UInt8]) throws(ControlProtocolError) {
        let json: JSONValue
        do { json = try ControlJSON.parse(line) } catch { throw Self.malformed(error.description) }
        try self.init(json: json)
    }

    /// The message as one line, newline included.
    public var line: [UInt8] {
        var out: [UInt8] = []
        json.encode(into: &out)
        out.append(UInt8(ascii: "\n"))
        return out
    }
}

extension ControlRequest: ControlLine {
    public static func malformed(_ reason: String) -> ControlProtocolError {
        ControlProtocolError("malformed request: \(reason)")
    }
}

extension ControlResponse: ControlLine {
    public static func malformed(_ reason: String) -> ControlProtocolError {
        ControlProtocolError("the reply is not valid JSON")
    }
}
