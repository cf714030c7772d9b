/// What the scheduler asks the state store to remember (design §2 "State", issue 7).
///
/// The scheduler emits these as `persist` actions; the runtime's store applies them in order
/// (batched), and on start hands back a ``RestoredState`` built from them. Keeping the
/// vocabulary here lets the pure scheduler, the SQLite store and the in-memory fake agree.
public enum StateChange: Hashable, Sendable {
    /// A scheduled instant of a job has been consumed (fired, skipped or missed): it must never
    /// fire again, across restarts and backward clock steps.
    case fired(job: JobID, scheduledFor: Instant)
    /// A run began (its first attempt is about to launch), at the instant it was decided.
    case runStarted(RunRecord)
    /// An attempt of a run was launched, its process started `at`. The first attempt's process
    /// start (attempt 1 with `pid` set) becomes the run's start: what `history`, the status
    /// pages and the API show, which the decision can precede by a busy loop's delay. A run
    /// whose first attempt made no process keeps the decision's time, retries or not.
    case attemptStarted(runID: RunID, attempt: Int, pid: Int32?, at: Instant)
    /// The process of an attempt exists, identified beyond its pid. Durable on `apply` (like
    /// `.fired`): recorded right after the spawn, it lets a restarted agent find the process
    /// again after a crash (adopt it or kill it) without ever mistaking a stranger for it.
    /// Forgotten when the attempt or the run finishes.
    case processStarted(runID: RunID, attempt: Int, identity: ProcessIdentity)
    /// An attempt ended.
    case attemptFinished(runID: RunID, attempt: Int, outcome: RunOutcome, at: Instant, durationMs: Int64)
    /// A run ended (no further attempts).
    case runFinished(runID: RunID, outcome: RunOutcome, at: Instant)
    /// What became of a planned fire (the ledger `sundial why` reads).
    case planned(LedgerEntry)
    /// The agent started in this boot (the kernel's boot id) and has fired its `@reboot` jobs,
    /// so a restart within the same boot does not fire them again (cronie's behaviour).
    case bootRecorded(bootID: String)
    /// The tail of an attempt's output (`sundial logs`), kept with its run and bounded by the
    /// store's ``StateRetention``.
    case outputStored(RunOutputRecord)
    /// `sundial pause` / `resume` changed a job: kept so that a pause survives a restart
    /// (handed back as ``RestoredState/paused``).
    case pauseChanged(job: JobID, paused: Bool)
    /// A fire that was due but had not started when the agent stopped cleanly (a `catchup: all`
    /// backlog, a fire waiting under `concurrency: queue`): the next start runs it as the job's
    /// `catchup` allows (handed back as ``RestoredState/owed``). Its instant is consumed all the
    /// same (`.fired`); this is what keeps a restart from silently dropping it. Written at the
    /// stop, whose flush commits it.
    case owed(job: JobID, scheduledFor: Instant)
    /// A start took `job`'s owed fires (ran them or let them go). Durable on `apply`, and emitted
    /// before any of them launches: a crash right after their launch then finds none owed, so
    /// none runs twice.
    case owedSettled(job: JobID)
}

/// The stored tail of one attempt's output: its last lines, at most the job's
/// `output.keep_bytes`, with the count of earlier bytes that did not fit.
public struct RunOutputRecord: Hashable, Sendable {
    public var runID: RunID
    public var attempt: Int
    /// The lines, each ending in `\n` (already masked of the job's secrets).
    public var text: String
    /// Bytes of output before `text` that were not kept.
    public var droppedBytes: Int

    public init(runID: RunID, attempt: Int, text: String, droppedBytes: Int = 0) {
        self.runID = runID
        self.attempt = attempt
        self.text = text
        self.droppedBytes = droppedBytes
    }

    /// The newest whole lines within `maxBytes`; what is cut off counts as dropped. A line cut
    /// in its middle is dropped whole, so no line is shown without its start.
    public func tail(maxBytes: Int) -> RunOutputRecord {
        let bytes = text.utf8
        guard bytes.count > maxBytes else { return self }
        var start = bytes.index(bytes.endIndex, offsetBy: -max(0, maxBytes))
        if bytes[bytes.index(before: start)] != UInt8(ascii: "\n") {
            start = bytes[start...].firstIndex(of: UInt8(ascii: "\n")).map { bytes.index(after: $0) } ?? bytes.endIndex
        }
        let cut = bytes.distance(from: bytes.startIndex, to: start)
        let (dropped, overflow) = max(0, droppedBytes).addingReportingOverflow(cut)
        return RunOutputRecord(runID: runID, attempt: attempt, text: String(Substring(text.utf8[start...])), droppedBytes: overflow ? .max : dropped)
    }
}

/// A run as the store keeps it.
public struct RunRecord: Hashable, Sendable {
    public var id: RunID
    public var job: JobID
    public var trigger: RunTrigger
    public var scheduledFor: Instant?
    public var startedAt: Instant
    /// The latest attempt launched (1 when unknown). The store keeps it from `attemptStarted`
    /// so that a run restored as in flight is retried with the right attempt number, and a
    /// crash loop cannot retry one run forever.
    public var attempt: Int
    /// The identity recorded for the latest attempt's process (``StateChange/processStarted(runID:attempt:identity:)``),
    /// when one was; `nil` when the agent died between the spawn and that record (the runtime
    /// then looks for the process by its `SUNDIAL_RUN_ID`). Set only on restored runs.
    public var process: ProcessIdentity?
    /// `lock: fleet`: the fencing token of the claim this run holds (``FleetLease/token``);
    /// `nil` for a local run, or a fleet job run locally because the fleet was unavailable.
    public var fleetToken: Int64?
    public init(
        id: RunID, job: JobID, trigger: RunTrigger, scheduledFor: Instant?, startedAt: Instant, attempt: Int = 1,
        process: ProcessIdentity? = nil, fleetToken: Int64? = nil
    ) {
        self.fleetToken = fleetToken
        self.id = id
        self.job = job
        self.trigger = trigger
        self.scheduledFor = scheduledFor
        self.startedAt = startedAt
        self.attempt = attempt
        self.process = process
    }
}

/// One planned fire and its fate.
public struct LedgerEntry: Hashable, Sendable {
    public enum Disposition: Hashable, Sendable {
        case ran(RunID)
        case caughtUp(RunID)
        case skipped(SkipReason)
        case missed
    }
    public var job: JobID
    public var scheduledFor: Instant
    public var disposition: Disposition
    public var at: Instant
    public init(job: JobID, scheduledFor: Instant, disposition: Disposition, at: Instant) {
        self.job = job
        self.scheduledFor = scheduledFor
        self.disposition = disposition
        self.at = at
    }
}

/// What the store hands the scheduler on start.
public struct RestoredState: Hashable, Sendable {
    /// Per job, the latest scheduled instant already consumed.
    public var lastFired: [JobID: Instant]
    /// Runs that were in flight when the previous agent died (to be recorded `interrupted`).
    public var inFlight: [RunRecord]
    /// When the previous agent was last known alive (for catch-up of missed fires).
    public var lastSeen: Instant?
    /// Runs of ``inFlight`` whose process is still running, by run id, with the identity the
    /// runtime checked (pid, start time, boot). Not from the store: the runtime fills it at
    /// start, after looking at `/proc`. The scheduler adopts or kills these (`on_agent_restart`)
    /// instead of recording them `interrupted`.
    public var alive: [RunID: ProcessIdentity]
    /// The boot in which an agent last started (``StateChange/bootRecorded(bootID:)``).
    public var bootID: String?
    /// Jobs paused by `sundial pause` (``Scheduler/pausedJobs``) when the previous agent stopped:
    /// they stay paused across a restart. Ids no longer configured are kept (a job removed and
    /// added back is still paused) but have no effect.
    public var paused: Set<JobID>
    /// Per job, the fires owed by the previous agent's clean stop (``StateChange/owed(job:scheduledFor:)``),
    /// oldest first.
    public var owed: [JobID: [Instant]]
    public init(
        lastFired: [JobID: Instant] = [:], inFlight: [RunRecord] = [], lastSeen: Instant? = nil,
        alive: [RunID: ProcessIdentity] = [:], bootID: String? = nil, paused: Set<JobID> = [],
        owed: [JobID: [Instant]] = [:]
    ) {
        self.owed = owed
        self.lastFired = lastFired
        self.inFlight = inFlight
        self.lastSeen = lastSeen
        self.alive = alive
        self.bootID = bootID
        self.paused = paused
    }
}
