import SundialCore

/// How one attempt ended: the core ``RunOutcome`` plus what `run.finished` reports.
public struct RunCompletion: Hashable, Sendable {
    public var runID: RunID
    /// `nil` when the process was never created.
    public var pid: Int32?
    public var outcome: RunOutcome
    /// The raw exit code, whatever the outcome (a timed-out job may still exit 0 on SIGTERM).
    public var exitCode: Int32?
    /// The raw terminating signal, whatever the outcome.
    public var signal: Int32?
    /// From launch to reaping, on the monotonic clock.
    public var durationMs: Int64
    /// Output bytes accepted (at most `output.max_bytes`).
    public var outputBytes: Int
    /// Output bytes beyond `output.max_bytes`, read and thrown away.
    public var droppedBytes: Int
    /// Lines cut at `output.max_line_bytes`.
    public var truncatedLines: Int
    /// The attempt's cgroup (see ``RunHandle/cgroupPath``); when the completion is delivered
    /// every process in it has been killed and the directory removed (or that took longer than
    /// ``RunnerEngine/cleanupWaitMs`` and the runner keeps trying).
    public var cgroupPath: String?

    public init(
        runID: RunID, pid: Int32?, outcome: RunOutcome, exitCode: Int32? = nil, signal: Int32? = nil,
        durationMs: Int64 = 0, outputBytes: Int = 0, droppedBytes: Int = 0, truncatedLines: Int = 0,
        cgroupPath: String? = nil
    ) {
        self.runID = runID
        self.pid = pid
        self.outcome = outcome
        self.exitCode = exitCode
        self.signal = signal
        self.durationMs = durationMs
        self.outputBytes = outputBytes
        self.droppedBytes = droppedBytes
        self.truncatedLines = truncatedLines
        self.cgroupPath = cgroupPath
    }
}

/// A started (or failed) attempt: its pid now, its ``RunCompletion`` later.
public struct RunHandle: Sendable {
    public let runID: RunID
    /// The process id, which is also its process-group and session id; `nil` if launch failed.
    public let pid: Int32?
    /// The attempt's own cgroup directory (e.g. `/sys/fs/cgroup/system.slice/sundial.service/
    /// runs/run-ID`), every process of the attempt inside it; `nil` when it runs with its
    /// process group only (no cgroup v2 tree, or the cgroup could not be made). For recording
    /// the run so that a restarted agent can find its processes.
    public let cgroupPath: String?
    /// Why the job's `limits:` are not (all) enforced for this attempt; `nil` when it has none
    /// or all were applied. The launcher logs it as `limits.unenforced`, once per job.
    public let limitsUnenforced: String?
    /// When the process was spawned, on the runner's monotonic clock (`sundial_monotonic_ms`);
    /// `nil` if launch failed. The agent may learn of the spawn later (a loop busy with output):
    /// this is the attempt's real start.
    public let startedAtMs: Int64?
    private let promise: OneShot<RunCompletion>

    init(
        runID: RunID, pid: Int32?, cgroupPath: String? = nil, limitsUnenforced: String? = nil, startedAtMs: Int64? = nil,
        promise: OneShot<RunCompletion>
    ) {
        self.runID = runID
        self.pid = pid
        self.startedAtMs = startedAtMs
        self.cgroupPath = cgroupPath
        self.limitsUnenforced = limitsUnenforced
        self.promise = promise
    }

    /// Waits for the attempt to end; every output line has been delivered when this returns.
    /// Not cancellable: a run always ends (by itself, its timeout or ``ProcessRunner/terminate(_:grace:)``).
    public func completion() async -> RunCompletion { await promise.value() }

    /// The completion if the attempt already ended.
    public var completionIfFinished: RunCompletion? { promise.peek() }
}
