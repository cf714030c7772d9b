import SundialCore

// The status page's view model: what one request shows, copied out of the agent and the state
// store (``StatusSource``) and rendered as HTML (``StatusPageRenderer``), SVG
// (``TimelineSVG``) or JSON (`json`). Plain values, so the renderers are pure and tested
// without an agent.

/// The agent as the `/` header and `/api/v1/agent` show it.
public struct StatusAgentInfo: Hashable, Sendable {
    public var version: String
    public var pid: Int32
    /// The config revision running (a hash of the whole set, as in `config.loaded`).
    public var revision: String
    public var startedAt: Instant
    /// When the running revision was loaded (nil before the first `config.loaded` was seen).
    public var configLoadedAt: Instant?
    /// The last reload that was rejected, if any since the agent started.
    public var lastRejected: RejectedReload?
    /// The kernel's word on clock synchronisation (nil: it cannot say).
    public var clockSynchronised: Bool?
    /// Calendar jobs held until the clock is synchronised (`--hold-until-synced`).
    public var calendarHeld: Bool
    /// When the snapshot was taken (relative times are counted from it).
    public var now: Instant

    public init(
        version: String, pid: Int32, revision: String, startedAt: Instant, configLoadedAt: Instant? = nil,
        lastRejected: RejectedReload? = nil, clockSynchronised: Bool? = nil, calendarHeld: Bool = false, now: Instant
    ) {
        self.version = version
        self.pid = pid
        self.revision = revision
        self.startedAt = startedAt
        self.configLoadedAt = configLoadedAt
        self.lastRejected = lastRejected
        self.clockSynchronised = clockSynchronised
        self.calendarHeld = calendarHeld
        self.now = now
    }
}

/// A reload the agent refused (`config.rejected`), with its positioned errors.
public struct RejectedReload: Hashable, Sendable {
    public struct Problem: Hashable, Sendable {
        public var file: String
        public var line: Int
        public var column: Int
        public var message: String
        public init(file: String, line: Int, column: Int, message: String) {
            self.file = file
            self.line = line
            self.column = column
            self.message = message
        }
    }
    public var at: Instant
    public var reason: String
    public var errors: [Problem]
    public init(at: Instant, reason: String, errors: [Problem]) {
        self.at = at
        self.reason = reason
        self.errors = errors
    }
}

/// One row of the jobs page.
public struct StatusJobRow: Hashable, Sendable {
    public var id: JobID
    public var description: String?
    /// The schedule as written (`30 2 * * *`, `every 30s`, `manual`…).
    public var schedule: String
    /// The schedule in words (`sundial explain`), for cron schedules.
    public var explanation: String?
    /// The job's IANA zone (nil: the system zone).
    public var timezone: String?
    public var enabled: Bool
    public var next: Instant?
    /// `next` on the wall clock of the job's zone (`2026-12-02 14:30:00`), when the zone is known.
    public var nextLocal: String?
    /// Held until the clock is synchronised.
    public var held: Bool
    /// Paused by an operator (nil: this agent has no pause; another change adds it).
    public var paused: Bool?
    /// A run is in flight.
    public var running: Bool
    /// The newest runs, newest first (at most ``StatusSource/sparklineRuns``); the first is
    /// the last outcome.
    public var recent: [RunSummary]

    public init(
        id: JobID, description: String? = nil, schedule: String, explanation: String? = nil, timezone: String? = nil,
        enabled: Bool = true, next: Instant? = nil, nextLocal: String? = nil, held: Bool = false, paused: Bool? = nil,
        running: Bool = false, recent: [RunSummary] = []
    ) {
        self.id = id
        self.description = description
        self.schedule = schedule
        self.explanation = explanation
        self.timezone = timezone
        self.enabled = enabled
        self.next = next
        self.nextLocal = nextLocal
        self.held = held
        self.paused = paused
        self.running = running
        self.recent = recent
    }

    public var last: RunSummary? { recent.first }
}

/// One run on the job page, with its stored output when the agent keeps it.
public struct StatusRun: Hashable, Sendable {
    public var summary: RunSummary
    /// The run's stored output lines (nil: this agent stores no output; another change adds it).
    public var output: [String]?
    public init(summary: RunSummary, output: [String]? = nil) {
        self.summary = summary
        self.output = output
    }
}

/// The job page: its row, its definition, the `why` ledger and its recent runs.
public struct StatusJobDetail: Hashable, Sendable {
    public var row: StatusJobRow
    /// The definition as `key: value` lines (nil: the job is no longer configured, only its
    /// history remains).
    public var definition: [(key: String, value: String)]?
    /// Where the job's id appears in its file.
    public var location: SourceLocation?
    /// Planned fires of the last day, oldest first.
    public var ledger: [LedgerEntry]
    /// Newest first.
    public var runs: [StatusRun]

    public init(
        row: StatusJobRow, definition: [(key: String, value: String)]?, location: SourceLocation?,
        ledger: [LedgerEntry], runs: [StatusRun]
    ) {
        self.row = row
        self.definition = definition
        self.location = location
        self.ledger = ledger
        self.runs = runs
    }

    public static func == (a: StatusJobDetail, b: StatusJobDetail) -> Bool {
        a.row == b.row && a.location == b.location && a.ledger == b.ledger && a.runs == b.runs
            && a.definition?.map(\.key) == b.definition?.map(\.key) && a.definition?.map(\.value) == b.definition?.map(\.value)
    }
    public func hash(into hasher: inout Hasher) { hasher.combine(row) }
}

/// The timeline: the runs of each job over a window (the last 24 hours).
public struct StatusTimeline: Hashable, Sendable {
    public struct Row: Hashable, Sendable {
        public var job: JobID
        /// Runs that overlap the window, any order.
        public var runs: [RunSummary]
        public init(job: JobID, runs: [RunSummary]) {
            self.job = job
            self.runs = runs
        }
    }
    public var start: Instant
    public var end: Instant
    public var rows: [Row]
    public init(start: Instant, end: Instant, rows: [Row]) {
        self.start = start
        self.end = end
        self.rows = rows
    }
}

// MARK: - Outcome classes

extension RunSummary {
    /// The CSS class (and JSON word) of a run's state: the outcome name, or `running`.
    public var statusClass: String { outcome?.name ?? "running" }

    /// Milliseconds from start to finish (to `now` for a run in flight).
    public func durationMillis(now: Instant) -> Int64 { max(0, (finishedAt ?? now).unixMillis - startedAt.unixMillis) }
}
