/// What the ``Scheduler`` asks its driver to do. Actions are to be carried out in order.
public enum SchedulerAction: Sendable, Hashable {
    /// Start one attempt of a run. The driver answers with `attemptLaunched` (then
    /// `attemptFinished`), or with `attemptFinished(.launchFailed)` alone.
    case launch(LaunchOrder)
    /// Stop an active attempt: SIGTERM to its process group, SIGKILL after `graceMs`; then
    /// report `attemptFinished` as usual. If the launch is still in progress, stop it once it
    /// has started.
    case terminate(runID: RunID, graceMs: Int64, reason: TerminationReason)
    /// The earliest instant at which something is due. Each result holds at most one, as its
    /// last action, and it replaces any earlier one; a result without `wake` means nothing is
    /// timed: sleep until an external event (process end, signal, reload, trigger).
    case wake(at: Instant)
    /// Write this record to the event log (``LogRecord``; its time is the `now` given).
    case emit(LogRecord)
    /// Hand this change to the state store, in order.
    case persist(StateChange)
    /// The answer to a `trigger` event, for the control socket.
    case triggerResult(job: JobID, TriggerResult)
    /// After `shutdown`: every active run has ended and been recorded; the agent may exit.
    case shutdownComplete
    /// Watch the process of a run that outlived the previous agent (``RestoredState/alive``)
    /// until it ends, then report `attemptFinished` with outcome ``RunOutcome/unknown`` (it is
    /// not the agent's child: its exit status cannot be collected). A later `terminate` of the
    /// run signals that process's group.
    case watch(AdoptedRun)
    /// `lock: fleet`: claim the instant `key` in the fleet's database (``FleetCoordinator/claim(_:box:leaseMs:forbidOverlap:)``),
    /// off the scheduling path; answer with ``SchedulerEvent/claimResolved(_:_:)``. The run
    /// waits (and counts for the job's local `concurrency`) until then.
    case claim(FleetClaimKey, leaseMs: Int64, forbidOverlap: Bool)
    /// Extend the lease of a running fleet-locked run; answer with ``SchedulerEvent/leaseRenewed(_:_:)``.
    case renewLease(FleetLease, leaseMs: Int64)
    /// A fleet-locked run ended (`outcome`: the run's outcome name): release its claim. No answer.
    case finishClaim(FleetLease, outcome: String)
    /// Look for expired leases of these jobs held by silent boxes (at most `limit`); answer with
    /// ``SchedulerEvent/lostLeasesFound(_:)`` (an empty list too).
    case scanLostLeases(jobs: [JobID], limit: Int)
    /// Act once on an expired lease per the job's `on_lost`; answer with ``SchedulerEvent/lostResolved(_:_:)``.
    case resolveLost(FleetLease, action: FleetLostAction, leaseMs: Int64)
}

/// A run whose process survived the agent's crash, handed to the driver to watch.
public struct AdoptedRun: Sendable, Hashable {
    public var runID: RunID
    public var job: JobID
    public var attempt: Int
    /// Checked by the runtime before the run was restored as alive.
    public var identity: ProcessIdentity
    /// When the run started (for `status`).
    public var startedAt: Instant
    /// The job's `timeout` (counted from the process's start) and `kill_grace`: an adopted run
    /// is held to them as a run of this agent would be.
    public var timeoutMs: Int64?
    public var killGraceMs: Int64
    public init(
        runID: RunID, job: JobID, attempt: Int, identity: ProcessIdentity, startedAt: Instant,
        timeoutMs: Int64? = nil, killGraceMs: Int64 = 10_000
    ) {
        self.runID = runID
        self.job = job
        self.attempt = attempt
        self.identity = identity
        self.startedAt = startedAt
        self.timeoutMs = timeoutMs
        self.killGraceMs = killGraceMs
    }
}

/// Everything the runner needs to start one attempt.
///
/// Orders are copied several times on their way to the runner (a simulated year makes a
/// million of them); the job in one is a single reference (``JobSpec`` keeps its fields behind
/// one), shared with the scheduler's job table.
public struct LaunchOrder: Sendable, Hashable {
    public var runID: RunID
    /// The job as currently configured (a retry after a reload uses the new definition).
    public var job: JobSpec
    /// 1 for the first attempt of a run.
    public var attempt: Int
    /// The `trigger` of this attempt's `run.started`: the run's trigger for attempt 1, `retry` after.
    public var trigger: RunTrigger
    /// The scheduled instant this run serves (`now` of the decision for manual and needs runs).
    public var scheduledFor: Instant

    public init(runID: RunID, job: JobSpec, attempt: Int, trigger: RunTrigger, scheduledFor: Instant) {
        self.runID = runID
        self.job = job
        self.attempt = attempt
        self.trigger = trigger
        self.scheduledFor = scheduledFor
    }

    public static func == (a: LaunchOrder, b: LaunchOrder) -> Bool {
        a.runID == b.runID && a.attempt == b.attempt && a.trigger == b.trigger && a.scheduledFor == b.scheduledFor
            && a.job == b.job
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(runID)
        hasher.combine(attempt)
    }
}

/// Why the scheduler stops a running attempt.
public enum TerminationReason: String, Sendable, Hashable, CaseIterable {
    /// `concurrency: replace`: a new fire replaces the active run.
    case replaced
    /// The agent is shutting down.
    case shutdown
    /// `on_agent_restart: kill`: a run that outlived the previous agent is killed at start.
    case agentRestart = "agent_restart"
    /// `lock: fleet`: the run's lease was lost (taken over by another box, or not renewed in
    /// time): it is stopped, so that two boxes never go on running one instant (fencing).
    case fleetLost = "fleet_lost"
}

/// What became of a manual trigger.
public enum TriggerResult: Sendable, Hashable {
    /// Its first attempt is being launched.
    case started(RunID)
    /// Waiting behind the active run (`concurrency: queue`, or behind a catch-up backlog).
    case queued
    /// The active run is being stopped (`concurrency: replace`); the manual run starts after.
    case replacing
    /// Not run, with the reason also logged as `run.skipped` (`overlap` under `forbid`).
    case skipped(SkipReason)
    /// No job with that id in the current set.
    case unknownJob
    /// The agent is shutting down and fires nothing more.
    case shuttingDown
}
