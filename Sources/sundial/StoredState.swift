import SundialConfig
import SundialCore
import SundialRuntime

/// The answers of `history`, `why`, `logs` and `status` read from `state.db` (``StateReader``)
/// when no agent answers, in the agent's reply forms, so the commands print them (and
/// `--format json`) the same way. What needs the configuration (next fires, schedules, needs)
/// is not there: the database knows the jobs that ran or were planned, not the job files.
enum StoredState {
    static func history(_ reader: StateReader, job: JobID, limit: Int) throws -> ControlResponse {
        let runs = try reader.history(job: job, limit: limit)
        if runs.isEmpty, let unknown = try unknownJob(job, reader) { return unknown }
        return .success(HistoryReport(job: job, runs: runs).json)
    }

    /// The ledger of the last day, as `why` shows while the agent runs (``Agent/whyWindow``).
    static func why(_ reader: StateReader, job: JobID, now: Instant) throws -> ControlResponse {
        let since = now - Agent.whyWindow
        let entries = try reader.ledger(job: job, since: since)
        if entries.isEmpty, let unknown = try unknownJob(job, reader) { return unknown }
        return .success(WhyReport(job: job, since: since, entries: entries, next: nil).json)
    }

    static func logs(_ reader: StateReader, job: JobID, run: RunID?) throws -> ControlResponse {
        switch try LogsReport.lookup(
            job: job, run: run, history: { try reader.history(job: $0, limit: $1) },
            output: { try reader.output(run: $0) })
        {
        case let .found(report):
            if report.run == nil, let unknown = try unknownJob(job, reader) { return unknown }
            return .success(report.json)
        case .noSuchRun:
            if let unknown = try unknownJob(job, reader) { return unknown }
            return .failure("run \(run?.rawValue ?? "") is not a recorded run of \(job) (`sundial history \(job)` lists them)")
        }
    }

    static func status(_ reader: StateReader) throws -> ControlResponse {
        let restored = try reader.restore()
        let latest = try reader.latestRuns()
        let report = StoredStatusReport(
            database: reader.path, lastSeen: restored.lastSeen,
            jobs: try reader.jobs().map { StoredStatusReport.Job(id: $0, last: latest[$0]) },
            unfinished: restored.inFlight.map { StoredStatusReport.Unfinished(job: $0.job, runID: $0.id, startedAt: $0.startedAt) })
        return .success(report.json)
    }

    /// The reply for a job the database has never seen, with the nearest id it has.
    private static func unknownJob(_ job: JobID, _ reader: StateReader) throws -> ControlResponse? {
        let jobs = try reader.jobs()
        guard !jobs.contains(job) else { return nil }
        let hint = DidYouMean.hint(job, from: jobs).map { "; \($0)" } ?? ""
        return .failure("unknown job \(job) (the state database has no record of it)\(hint)")
    }
}

/// `status` read from `state.db`: every job the database knows with its last run, and the runs
/// that were unfinished when the agent stopped (its next start records them `interrupted`, or
/// adopts them). `--format json`: `{"offline":true,"database","last_seen","jobs":[{"id","last"}],
/// "unfinished":[{"job","run_id","started"}]}`.
struct StoredStatusReport {
    struct Job {
        var id: JobID
        var last: RunSummary?
    }

    struct Unfinished {
        var job: JobID
        var runID: RunID
        var startedAt: Instant
    }

    var database: String
    /// When the agent was last known alive (it marks so every few seconds while it runs).
    var lastSeen: Instant?
    var jobs: [Job]
    var unfinished: [Unfinished]

    var json: JSONValue {
        [
            "offline": .bool(true), "database": .string(database), "last_seen": lastSeen.map { .string($0.description) } ?? .null,
            "jobs": .array(jobs.map { ["id": .string($0.id), "last": $0.last.map(\.json) ?? .null] }),
            "unfinished": .array(
                unfinished.map {
                    ["job": .string($0.job), "run_id": .string($0.runID.rawValue), "started": .string($0.startedAt.description)]
                }),
        ]
    }

    init(database: String, lastSeen: Instant?, jobs: [Job], unfinished: [Unfinished]) {
        self.database = database
        self.lastSeen = lastSeen
        self.jobs = jobs
        self.unfinished = unfinished
    }

    init(json: JSONValue) throws(ControlProtocolError) {
        guard let database = json["database"]?.stringValue, case let .array(jobs)? = json["jobs"],
            case let .array(unfinished)? = json["unfinished"]
        else {
            throw ControlProtocolError("stored status: missing \"database\", \"jobs\" or \"unfinished\"")
        }
        self.database = database
        lastSeen = try json["last_seen"]?.stringValue.map { (s) throws(ControlProtocolError) in try Self.time(s) }
        self.jobs = try jobs.map { (j) throws(ControlProtocolError) in
            guard let id = j["id"]?.stringValue else { throw ControlProtocolError("stored status: a job without \"id\"") }
            let last: RunSummary? =
                switch j["last"] {
                case nil, .null?: nil
                case let v?: try RunSummary(json: v)
                }
            return Job(id: id, last: last)
        }
        self.unfinished = try unfinished.map { (u) throws(ControlProtocolError) in
            guard let job = u["job"]?.stringValue, let run = u["run_id"]?.stringValue, let started = u["started"]?.stringValue else {
                throw ControlProtocolError("stored status: an unfinished run without \"job\", \"run_id\" or \"started\"")
            }
            return Unfinished(job: job, runID: RunID(rawValue: run), startedAt: try Self.time(started))
        }
    }

    private static func time(_ s: String) throws(ControlProtocolError) -> Instant {
        do { return try RFC3339.parse(s).instant } catch { throw ControlProtocolError("stored status: not an RFC 3339 time: \(s)") }
    }

    /// The text form, a pure function of the report and the instant it is read at.
    func render(now: Instant) -> String {
        let seen = lastSeen.map { "last seen \(StatusText.relative($0, now: now)) (\($0))" } ?? "never seen alive"
        var lines = [
            "no agent running: \(seen); jobs as recorded in \(database)",
            "(schedules and next fires need the configuration: `sundial next JOB PATH...`, or start the agent)",
        ]
        var rows = [["JOB", "LAST", "RUN"]]
        for job in jobs { rows.append([job.id, StatusText.last(job.last, now: now), job.last?.id.rawValue ?? "-"]) }
        lines.append(jobs.isEmpty ? "no jobs recorded" : TextTable.render(rows))
        if !unfinished.isEmpty {
            lines.append("unfinished when the agent stopped (its next start records them interrupted, or adopts them):")
            var active = [["JOB", "RUN", "STARTED"]]
            for u in unfinished { active.append([u.job, u.runID.rawValue, StatusText.relative(u.startedAt, now: now)]) }
            lines.append(TextTable.render(active))
        }
        return lines.joined(separator: "\n")
    }
}
