import SundialCore

/// One line the agent sends after a reply with `"stream": true` (``ControlResponse/startsStream``),
/// as a JSON object `{"v":1,"kind":...}`:
/// - `started`: an attempt of the followed run began (`run_id`, `attempt`);
/// - `output`: a line it printed (`run_id`, `attempt`, `fd`: `stdout`/`stderr`, `line`, and
///   `truncated: true` when cut), only when output was asked for;
/// - `ended`: the run is over (`run_id`, `outcome`, `exit_code`, `signal`, `detail`, `attempts`,
///   `duration_ms` from its first start to its end); the last line;
/// - `keepalive`: nothing happened for a while (``ControlServer/Options/keepaliveInterval``); it
///   lets the client tell a quiet run from a dead agent;
/// - `dropped`: the client fell too far behind (``ControlStream``); the last line.
public enum ControlStreamMessage: Hashable, Sendable {
    case started(runID: RunID, attempt: Int)
    case output(runID: RunID, attempt: Int, stream: String, line: String, truncated: Bool)
    case ended(RunEnd)
    case keepalive
    case dropped(reason: String)

    /// How a followed run ended.
    public struct RunEnd: Hashable, Sendable {
        public var runID: RunID
        public var job: JobID
        public var outcome: RunOutcome
        public var attempts: Int
        /// From the run's first start to its end; nil when the start was not seen.
        public var durationMs: Int64?
        public init(runID: RunID, job: JobID, outcome: RunOutcome, attempts: Int, durationMs: Int64?) {
            self.runID = runID
            self.job = job
            self.outcome = outcome
            self.attempts = attempts
            self.durationMs = durationMs
        }

        /// The exit status `sundial trigger --wait` exits with: 0 for a success (whatever code
        /// `success_exit_codes` accepted), the code of a failure (1 if that code is 0), 128+N for
        /// a signal (as shells report it), 124 for a timeout (as timeout(1)), 127 when the command
        /// could not be started (as shells), 1 for a run interrupted or of unknown outcome.
        public var exitStatus: Int32 {
            switch outcome {
            case .success: 0
            case let .failure(code): code == 0 ? 1 : code
            case let .signal(s): 128 + s
            case .timeout: 124
            case .launchFailed: 127
            case .interrupted, .unknown: 1
            }
        }
    }

    public var json: JSONValue {
        var o: JSONValue = ["v": .int(ControlRequest.protocolVersion)]
        switch self {
        case let .started(id, attempt):
            o.setField("kind", .string("started"))
            o.setField("run_id", .string(id.rawValue))
            o.setField("attempt", .int(Int64(attempt)))
        case let .output(id, attempt, stream, line, truncated):
            o.setField("kind", .string("output"))
            o.setField("run_id", .string(id.rawValue))
            o.setField("attempt", .int(Int64(attempt)))
            o.setField("fd", .string(stream))
            o.setField("line", .string(line))
            if truncated { o.setField("truncated", .bool(true)) }
        case let .ended(end):
            let c = StateCodes.columns(end.outcome)
            o.setField("kind", .string("ended"))
            o.setField("run_id", .string(end.runID.rawValue))
            o.setField("job", .string(end.job))
            o.setField("outcome", .string(c.name))
            o.setField("exit_code", c.exitCode.map { .int(Int64($0)) } ?? .null)
            o.setField("signal", c.signal.map { .int(Int64($0)) } ?? .null)
            o.setField("detail", c.detail.map(JSONValue.string) ?? .null)
            o.setField("attempts", .int(Int64(end.attempts)))
            o.setField("duration_ms", end.durationMs.map { .int($0) } ?? .null)
        case .keepalive:
            o.setField("kind", .string("keepalive"))
        case let .dropped(reason):
            o.setField("kind", .string("dropped"))
            o.setField("reason", .string(reason))
        }
        return o
    }

    public init(json: JSONValue) throws(ControlProtocolError) {
        let r = Reader(json, "stream message")
        let kind = try r.string("kind")
        switch kind {
        case "started":
            self = .started(runID: RunID(rawValue: try r.string("run_id")), attempt: Int(try r.int("attempt")))
        case "output":
            let truncated = try r.optional("truncated") == .bool(true)
            self = .output(
                runID: RunID(rawValue: try r.string("run_id")), attempt: Int(try r.int("attempt")),
                stream: try r.string("fd"), line: try r.string("line"), truncated: truncated)
        case "ended":
            let name = try r.string("outcome")
            guard
                let outcome = StateCodes.outcome(
                    name: name, exitCode: try r.optionalInt("exit_code").map { Int32(truncatingIfNeeded: $0) },
                    signal: try r.optionalInt("signal").map { Int32(truncatingIfNeeded: $0) }, detail: try r.optionalString("detail"))
            else { throw ControlProtocolError("unknown outcome \(name)") }
            self = .ended(
                RunEnd(
                    runID: RunID(rawValue: try r.string("run_id")), job: try r.string("job"), outcome: outcome,
                    attempts: Int(try r.int("attempts")), durationMs: try r.optionalInt("duration_ms")))
        case "keepalive": self = .keepalive
        case "dropped": self = .dropped(reason: try r.string("reason"))
        default: throw ControlProtocolError("unknown stream message \(kind)")
        }
    }
}

extension ControlStreamMessage: ControlLine {
    public static func malformed(_ reason: String) -> ControlProtocolError {
        ControlProtocolError("a stream line is not valid JSON")
    }
}
