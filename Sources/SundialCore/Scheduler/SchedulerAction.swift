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
    /// Write this line to the event log (design §3 names and fields; `ts` is the `now` given).
    case emit(Event)
    /// Hand this change to the state store, in order.
    case persist(StateChange)
    /// The answer to a `trigger` event, for the control socket.
    case triggerResult(job: JobID, TriggerResult)
    /// After `shutdown`: every active run has ended and been recorded; the agent may exit.
    case shutdownComplete
}

/// Everything the runner needs to start one attempt.
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
}

/// Why the scheduler stops a running attempt.
public enum TerminationReason: String, Sendable, Hashable, CaseIterable {
    /// `concurrency: replace`: a new fire replaces the active run.
    case replaced
    /// The agent is shutting down.
    case shutdown
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
