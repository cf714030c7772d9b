/// Where the agent keeps what must survive a restart (design §2 "State", issue 7): per job the
/// last consumed scheduled instant, every run and attempt, the runs in flight, and the ledger of
/// planned fires that `sundial why` reads.
///
/// Two implementations behave the same and are tested by one suite: `SQLiteStateStore` (the
/// runtime's, on disk) and `MemoryStateStore` (SundialTesting's, for scenario tests).
///
/// ## Durability contract
/// `apply` returns only after every change for which ``StateChange/isDurableOnApply`` holds
/// (`.fired`, `.runStarted`) is committed in a way that survives a crash of the agent's process
/// (`kill -9`), together with every change applied before it. The agent calls
/// `apply([.fired(...), .runStarted(...)])` *before* launching a run, so a restart can never fire
/// the same scheduled instant twice, and finds the run in flight (to record it `interrupted`).
/// Other changes (attempts, `.runFinished`, the ledger, `markAlive`) may be committed a few
/// milliseconds later, in order; ``flush()`` commits everything pending.
public protocol StateStore: Sendable {
    /// What the previous agent left: last fired instants, runs still in flight, last sign of life.
    /// Commits pending changes first.
    func restore() throws -> RestoredState

    /// Records `changes` in order (see the durability contract above).
    func apply(_ changes: [StateChange]) throws

    /// Commits every pending change before returning (shutdown, tests).
    func flush() throws

    /// The newest `limit` runs of `job`, newest first (by start time, then run id).
    func history(job: JobID, limit: Int) throws -> [RunSummary]

    /// The newest run of every job that has one (`status` shows it as the job's last outcome), in
    /// one query rather than one `history` call per job.
    func latestRuns() throws -> [JobID: RunSummary]

    /// The planned fires of `job` scheduled at or after `since`, oldest first.
    func ledger(job: JobID, since: Instant) throws -> [LedgerEntry]

    /// The stored output of each attempt of run `id`, in attempt order (empty when none is kept).
    func output(run id: RunID) throws -> [RunOutputRecord]

    /// ``output(run:)`` with each attempt cut to its newest whole lines within `maxBytes`
    /// (``RunOutputRecord/tail(maxBytes:)``), for pages that show many runs. A store may cut
    /// the text before it is read whole.
    func outputTail(run id: RunID, maxBytes: Int) throws -> [RunOutputRecord]

    /// Forgets old history per the store's ``StateRetention``. Runs in flight are never pruned,
    /// and neither is a job's last fired instant (the guard against firing an instant twice).
    func prune(now: Instant) throws

    /// Records that the agent is alive at `now` (``RestoredState/lastSeen``, for catch-up).
    func markAlive(now: Instant) throws

    // MARK: Notification deliveries (issue 17: they survive a restart)

    /// Keeps a delivery's `payload` until ``deleteNotification(id:)``; returns its id, or `nil`
    /// when `capacity` rows are already kept (the caller refuses the delivery: the oldest are
    /// never dropped to make room). Committed before it returns (a `kill -9` right after keeps
    /// it), so it must not be called on the firing path: the notifier's queue calls it on a
    /// thread of its own (``StateStoreNotificationQueue``).
    func enqueueNotification(payload: String, at: Instant, capacity: Int) throws -> Int64?

    /// At most `limit` kept deliveries with an id above `after`, oldest first.
    func pendingNotifications(after: Int64, limit: Int) throws -> [StoredNotification]

    /// Forgets delivery `id` (sent, or failed for good). Unknown ids are ignored.
    func deleteNotification(id: Int64) throws
}

extension StateStore {
    public func outputTail(run id: RunID, maxBytes: Int) throws -> [RunOutputRecord] {
        try output(run: id).map { $0.tail(maxBytes: maxBytes) }
    }

    /// ``enqueueNotification(payload:at:capacity:)`` with the usual cap, ``StoredNotification/capacity``.
    public func enqueueNotification(payload: String, at: Instant) throws -> Int64? {
        try enqueueNotification(payload: payload, at: at, capacity: StoredNotification.capacity)
    }
}

extension StateChange {
    /// Whether `apply` must commit this change before returning: the changes that decide whether
    /// a scheduled instant runs again after a crash. Losing a `.fired` could fire it twice.
    ///
    /// `.runFinished` is batched (committed within the batch interval, ~5 ms): making it durable
    /// too would double the commits on the recording path (issue 7's 10,000-runs budget). The
    /// cost: a run that finished in the last few milliseconds before a `kill -9` is recorded
    /// `interrupted` on restart (and retried only if its retry policy retries interruptions).
    public var isDurableOnApply: Bool {
        switch self {
        case .fired, .runStarted, .bootRecorded, .pauseChanged, .owedSettled: true
        // `.processStarted` is batched: a restart after a crash that lost it finds the process by
        // its `SUNDIAL_RUN_ID` (ProcessProbe), so a commit per launch (100 per burst, each
        // rewriting WAL pages on flash) buys nothing.
        // `.owed` is written by a clean stop, whose flush commits it; lost to a crash, the fire
        // is dropped as it was before owed fires were kept (never run twice).
        case .processStarted, .attemptStarted, .attemptFinished, .runFinished, .planned, .outputStored, .owed: false
        }
    }
}

/// How much history a store keeps. The defaults keep 1,000 jobs firing every minute under
/// 200 MB on disk (issue 7; `sundial-bench state --size` measures it, docs/state.md records it):
/// a run with its attempt and indices takes about 190 bytes, a ledger entry about 60, so
/// 1,000 jobs × (500 runs + 1,440 ledger entries) is about 180 MB. For frequent jobs the counts
/// bind long before the age.
public struct StateRetention: Hashable, Sendable {
    /// Finished runs and ledger entries older than this are forgotten. Default 30 days.
    public var maxAge: Duration
    /// At most this many runs per job are kept (the newest). Default 500.
    public var maxRunsPerJob: Int
    /// At most this many ledger entries per job are kept (the newest). Default 1,440: a whole
    /// day of a minutely job, which is what `sundial why` shows.
    public var maxLedgerEntriesPerJob: Int
    /// Stored output is kept for at most this many runs per job (the newest). Default 20.
    public var maxOutputRunsPerJob: Int
    /// All stored output together is at most this many bytes (the oldest goes first, at the
    /// next prune). Default 64 MiB: 1,000 jobs with 64 KiB each would otherwise take 1.3 GB.
    public var maxOutputBytes: Int

    public init(
        maxAge: Duration = .seconds(30 * 86_400), maxRunsPerJob: Int = 500, maxLedgerEntriesPerJob: Int = 1_440,
        maxOutputRunsPerJob: Int = 20, maxOutputBytes: Int = 64 << 20
    ) {
        self.maxOutputRunsPerJob = maxOutputRunsPerJob
        self.maxOutputBytes = maxOutputBytes
        self.maxAge = maxAge
        self.maxRunsPerJob = maxRunsPerJob
        self.maxLedgerEntriesPerJob = maxLedgerEntriesPerJob
    }

    public static let `default` = StateRetention()
}

/// One run as `sundial history` shows it.
public struct RunSummary: Hashable, Sendable {
    public var id: RunID
    public var job: JobID
    public var trigger: RunTrigger
    public var scheduledFor: Instant?
    public var startedAt: Instant
    /// `nil` while the run is in flight.
    public var finishedAt: Instant?
    /// `nil` while the run is in flight.
    public var outcome: RunOutcome?
    /// Attempts launched so far (0 before the first launch).
    public var attempts: Int

    public init(
        id: RunID, job: JobID, trigger: RunTrigger, scheduledFor: Instant?, startedAt: Instant,
        finishedAt: Instant? = nil, outcome: RunOutcome? = nil, attempts: Int = 0
    ) {
        self.id = id
        self.job = job
        self.trigger = trigger
        self.scheduledFor = scheduledFor
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.outcome = outcome
        self.attempts = attempts
    }

    /// The exit code of the final attempt, when it exited (not for signals, timeouts...).
    public var exitCode: Int32? { outcome?.exitCode }
}
