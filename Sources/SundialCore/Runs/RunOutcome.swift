/// How one attempt of a run ended. A job's non-zero exit is a result, not a thrown error.
///
/// Shared vocabulary of the runner (which produces it), the scheduler (which decides retries
/// and dependencies from it), the state store and the event log (`run.finished.outcome`).
public enum RunOutcome: Hashable, Sendable {
    /// Exited with one of the job's `success_exit_codes`.
    case success(exitCode: Int32)
    /// Exited with any other code.
    case failure(exitCode: Int32)
    /// Killed by a signal it did not ask for (not by Sundial's own timeout).
    case signal(Int32)
    /// Stopped by Sundial because it exceeded `timeout`.
    case timeout
    /// Never started: command not found, not executable, bad workdir, unknown user...
    case launchFailed(reason: String)
    /// In flight when the agent died or was stopped; recorded on the next start or at shutdown.
    case interrupted
    /// Adopted after the agent restarted (`on_agent_restart: adopt`) and ended by itself: the
    /// process was no longer the agent's child, so its exit status could not be collected.
    /// Neither a success nor a failure: it is not retried and satisfies only `needs` with
    /// `on: completion`.
    case unknown

    /// The `outcome` field of `run.finished`.
    public var name: String {
        switch self {
        case .success: "success"
        case .failure: "failure"
        case .signal: "signal"
        case .timeout: "timeout"
        case .launchFailed: "launch_failed"
        case .interrupted: "interrupted"
        case .unknown: "unknown"
        }
    }

    public var isSuccess: Bool { if case .success = self { true } else { false } }

    public var exitCode: Int32? {
        switch self {
        case let .success(c), let .failure(c): c
        default: nil
        }
    }

    public var signalNumber: Int32? { if case let .signal(s) = self { s } else { nil } }
}

/// Why a run started (`run.started.trigger`).
public enum RunTrigger: String, Hashable, Sendable, CaseIterable {
    case schedule, needs, manual, catchup, retry, reboot
}

/// Why a planned fire did not run (`run.skipped.reason`).
public enum SkipReason: String, Hashable, Sendable, CaseIterable {
    case overlap, needs, upstream, disabled, dst, missed, shutdown
    /// The job is paused (`sundial pause`): its fires come and are recorded, but do not run.
    case paused
    /// `lock: fleet`: another box claimed the instant (the event names it).
    case fleetClaimed = "fleet_claimed"
    /// `lock: fleet` with `concurrency: forbid`: another instant of the job runs on another box.
    case fleetBusy = "fleet_busy"
    /// `lock: fleet`: the fleet's database could not be asked and `fleet_unavailable` said skip
    /// (or `wait` ran out of time).
    case fleetUnavailable = "fleet_unavailable"
}
