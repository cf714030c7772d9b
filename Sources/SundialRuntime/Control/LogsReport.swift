import SundialCore

/// `logs`: one run's stored output (`sundial logs JOB [--run ID]`), every attempt's kept tail in
/// attempt order, with the run it belongs to.
///
/// Built the same way by the agent (from its store) and by the CLI when no agent answers (from
/// ``StateReader``), through ``lookup(job:run:history:output:)``, so both print the same thing.
public struct LogsReport: Hashable, Sendable {
    public var job: JobID
    /// The run shown; nil when the job has no recorded run.
    public var run: RunSummary?
    /// Each attempt's kept output (already masked of the job's secrets), oldest attempt first.
    public var attempts: [RunOutputRecord]

    /// The most output text one reply carries. `output.keep_bytes` may be up to 16 MiB per
    /// attempt and JSON escaping can grow text sixfold, so the reply (at most 16 MiB on the
    /// socket) keeps the newest 2 MiB of the run; what did not fit is counted as dropped.
    public static let maxTextBytes = 2 << 20

    public init(job: JobID, run: RunSummary?, attempts: [RunOutputRecord]) {
        self.job = job
        self.run = run
        self.attempts = attempts
    }

    public enum Lookup: Hashable, Sendable {
        case found(LogsReport)
        /// `--run ID` names no run of the job that is still recorded.
        case noSuchRun
    }

    /// The report of `run` (default: the job's newest run, finished or running), its output
    /// bounded by `maxBytes`. A job without runs gives a report without a run (the caller tells
    /// an unknown job from a job that never ran).
    public static func lookup(
        job: JobID, run: RunID?, maxBytes: Int = maxTextBytes,
        history: (JobID, Int) throws -> [RunSummary],
        output: (RunID) throws -> [RunOutputRecord]
    ) throws -> Lookup {
        let summary: RunSummary?
        if let run {
            // The run must be the job's: an id of another job's run would print its output under
            // the wrong name. Bounded: the store keeps at most 500 runs per job.
            guard let found = try history(job, ControlRequest.maxHistoryLimit).first(where: { $0.id == run }) else {
                return .noSuchRun
            }
            summary = found
        } else {
            summary = try history(job, 1).first
        }
        guard let summary else { return .found(LogsReport(job: job, run: nil, attempts: [])) }
        return .found(LogsReport(job: job, run: summary, attempts: bounded(try output(summary.id), maxBytes: maxBytes)))
    }

    /// Keeps the newest `maxBytes` of the attempts' text, in whole lines, counting the rest in
    /// each attempt's `droppedBytes` (the last attempt is usually the one wanted).
    static func bounded(_ records: [RunOutputRecord], maxBytes: Int) -> [RunOutputRecord] {
        var budget = max(0, maxBytes)
        var out = records
        for i in out.indices.reversed() {
            let bytes = Array(out[i].text.utf8)
            if bytes.count <= budget {
                budget -= bytes.count
                continue
            }
            var start = bytes.count - budget
            while start > 0, start < bytes.count, bytes[start - 1] != UInt8(ascii: "\n") { start += 1 }
            out[i].droppedBytes += start
            out[i].text = String(decoding: bytes[start...], as: UTF8.self)
            budget -= bytes.count - start
        }
        return out
    }

    /// `{"job","run":{…}|null,"attempts":[{"attempt","text","dropped_bytes"}]}`
    public var json: JSONValue {
        [
            "job": .string(job), "run": run.map(\.json) ?? .null,
            "attempts": .array(
                attempts.map {
                    ["attempt": .int(Int64($0.attempt)), "text": .string($0.text), "dropped_bytes": .int(Int64($0.droppedBytes))]
                }),
        ]
    }

    public init(json: JSONValue) throws(ControlProtocolError) {
        let r = Reader(json, "logs")
        job = try r.string("job")
        run = try r.optional("run").map { (v) throws(ControlProtocolError) in try RunSummary(json: v) }
        let id = run?.id ?? RunID(rawValue: "")
        attempts = try r.array("attempts").map { (v) throws(ControlProtocolError) in
            let a = Reader(v, "logs attempt")
            return RunOutputRecord(
                runID: id, attempt: Int(try a.int("attempt")), text: try a.string("text"),
                droppedBytes: Int(try a.int("dropped_bytes")))
        }
    }
}
