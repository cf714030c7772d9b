/// What the agent (or the simulator) tells the ``Scheduler``; each is handled at a `now`.
public enum SchedulerEvent: Sendable, Hashable {
    /// The agent started. Must be the first event; events before it are ignored, except
    /// `configReplaced`, which only swaps the job set.
    ///
    /// - `restored`: what the state store remembered. Its `inFlight` runs are recorded
    ///   `interrupted` (and retried when their job's policy still has attempts); its `lastFired`
    ///   and `lastSeen` drive catch-up of fires missed while the agent was down.
    /// - `reboot`: fire `@reboot` jobs (the agent passes `true` at its first start in a boot,
    ///   per the boot id it keeps in state; a reload never fires them).
    case start(restored: RestoredState, reboot: Bool)
    /// Time has passed: fire whatever is due at `now`. Any other event also fires what is due,
    /// so a tick is only needed when the agent wakes for the scheduler's `wake`.
    case tick
    /// The runner started attempt `attempt` of `runID` as process `pid`, at `startedAt` when
    /// known (the process may have started before the agent could say so: a busy loop).
    case attemptLaunched(runID: RunID, attempt: Int, pid: Int32?, startedAt: Instant? = nil)
    /// Attempt `attempt` of `runID` ended. A launch failure is reported as `.launchFailed`
    /// without a preceding `attemptLaunched`; a timeout (the runner enforces `timeout`) as
    /// `.timeout`; a run stopped by a `terminate` action with whatever the runner saw.
    case attemptFinished(runID: RunID, attempt: Int, outcome: RunOutcome, durationMs: Int64)
    /// A reload produced a new valid set. Running runs are never killed.
    case configReplaced(JobSet)
    /// A manual run (`sundial trigger JOB`). Answered with a ``SchedulerAction/triggerResult(job:_:)``.
    case trigger(JobID)
    /// The agent saw the wall clock step from `fromWall` to `toWall` (against monotonic time).
    /// `now` should be `toWall`.
    case clockStepped(fromWall: Instant, toWall: Instant)
    /// SIGTERM/SIGINT: stop firing, terminate active attempts with `graceMs` (`--shutdown-grace`)
    /// and answer ``SchedulerAction/shutdownComplete`` once the last one has been recorded.
    case shutdown(graceMs: Int64)
    /// `--hold-until-synced`: while `true`, jobs on the wall clock (`schedule`, `at`, `every`
    /// with `offset`) are not armed, because the clock they would read is not trusted yet;
    /// intervals counted from the agent's start, `@reboot`, needs and manual runs go on.
    /// Releasing (`false`) arms them as a start would, so fires missed while the agent was
    /// down follow `catchup`. May come before `start` (the agent holds from its first moment).
    case holdCalendar(Bool)
    /// `sundial pause JOB`: the job's fires still come (and are recorded in the ledger as skipped,
    /// reason `paused`) but none runs, whatever its trigger (schedule, catch-up, `@reboot`,
    /// needs), until `.resume`. A manual `trigger` still runs it (an explicit request, as for a
    /// disabled job). Logs `job.paused` once; pausing a paused or unknown job does nothing.
    case pause(JobID)
    /// `sundial resume JOB`: undoes `.pause` (logs `job.resumed`); the next fire runs.
    case resume(JobID)
    /// `lock: fleet`: the answer to ``SchedulerAction/claim(_:leaseMs:forbidOverlap:)``.
    case claimResolved(FleetClaimKey, FleetClaimOutcome)
    /// The answer to ``SchedulerAction/renewLease(_:leaseMs:)`` for the claim `key`.
    case leaseRenewed(FleetClaimKey, FleetRenewOutcome)
    /// The answer to ``SchedulerAction/scanLostLeases(jobs:limit:)``.
    case lostLeasesFound([FleetLease])
    /// The answer to ``SchedulerAction/resolveLost(_:action:leaseMs:)``.
    case lostResolved(FleetLease, FleetClaimOutcome)
}
