import SundialCore

/// What the agent needs from a process runner: start an attempt, stop one.
///
/// The production launcher is ``ProcessRunnerLauncher``; scenario tests use a scripted fake
/// (`SundialTesting.ScriptedLauncher`) so the whole agent runs on virtual time.
public protocol JobLauncher: Sendable {
    /// Starts one attempt. Returns at once with the pid (or `nil` if the launch failed); the
    /// returned closure waits for the end of the attempt.
    ///
    /// - Parameter notBefore: the process must not start before this wall-clock instant: the
    ///   agent decided the fire ahead of it (``Agent/Settings/fireLeadMs``). `nil`: at once.
    func launch(_ order: LaunchOrder, workdir: String, notBefore: Instant?, onOutput: @escaping OutputHandler) async -> LaunchedAttempt
    /// Stops an attempt: SIGTERM to its process group, SIGKILL after `grace`.
    func terminate(_ runID: RunID, grace: Duration)
}

/// A started (or failed) attempt.
public struct LaunchedAttempt: Sendable {
    public var pid: Int32?
    /// The process beyond its pid, read right after the spawn (``ProcessProbe``), which the
    /// agent records durably so that a restart after a crash can find it. `nil` for fakes, and
    /// when the process was already gone.
    public var identity: ProcessIdentity?
    /// When the process was spawned (``RunHandle/startedAtMs``); `nil`: when the agent hears of
    /// it (fakes).
    public var startedAtMs: Int64?
    public var completion: @Sendable () async -> RunCompletion

    public init(
        pid: Int32?, identity: ProcessIdentity? = nil, startedAtMs: Int64? = nil, completion: @escaping @Sendable () async -> RunCompletion
    ) {
        self.pid = pid
        self.identity = identity
        self.startedAtMs = startedAtMs
        self.completion = completion
    }
}

/// The real launcher over ``ProcessRunner``.
public struct ProcessRunnerLauncher: JobLauncher {
    public let runner: ProcessRunner
    public let context: LaunchContext
    /// Learns each job's secret values (from `env` and `env_file`) before its first line of
    /// output, or the reason its launch failed, can reach the log.
    public let masker: SecretMasker?
    /// Told, once per job, why its `limits:` are not enforced (the agent logs `limits.unenforced`).
    public let onLimitsUnenforced: (@Sendable (_ job: JobID, _ reason: String) -> Void)?
    private let limitsWarnings = LimitsWarnings()

    public init(
        runner: ProcessRunner, context: LaunchContext = .current, masker: SecretMasker? = nil,
        onLimitsUnenforced: (@Sendable (_ job: JobID, _ reason: String) -> Void)? = nil
    ) {
        self.runner = runner
        self.context = context
        self.masker = masker
        self.onLimitsUnenforced = onLimitsUnenforced
    }

    public func launch(_ order: LaunchOrder, workdir: String, notBefore: Instant?, onOutput: @escaping OutputHandler) async -> LaunchedAttempt {
        var job = order.job
        // Design §1 leaves the default working directory open; Sundial uses the state
        // directory, which always exists and is the agent's own (docs/decisions.md), except
        // for a `user:` job, which could not enter it: that user's home, else `/`.
        if job.workdir == nil { job.workdir = DefaultWorkdir.resolve(user: job.user, agentDefault: workdir) }
        let handle: RunHandle
        // Registered before the attempt can say anything, a launch failure included: its reason
        // may quote a secret (a command path, a workdir) and is logged, stored with the run, and
        // shown by `status`, `history` and the status pages.
        let secrets: [String]
        do throws(LaunchError) {
            var spec = try LaunchSpec(job: job, runID: order.runID, attempt: order.attempt, context: context)
            spec.notBefore = notBefore
            secrets = spec.secretValues
            masker?.add(secrets, for: job.id)
            handle = await runner.start(spec, onOutput: onOutput)
        } catch {
            secrets = error.secretValues
            masker?.add(secrets, for: job.id)
            handle = RunHandle.failed(runID: order.runID, reason: error.message)
        }
        if let reason = handle.limitsUnenforced, let onLimitsUnenforced, limitsWarnings.firstTime(job.id) {
            onLimitsUnenforced(job.id, reason)
        }
        // Read at once: the start time pins this process for a restart that finds it alive.
        var identity = handle.pid.flatMap(ProcessProbe.identity(of:))
        identity?.cgroup = handle.cgroupPath
        let masker = self.masker
        return LaunchedAttempt(
            pid: handle.pid, identity: identity, startedAtMs: handle.startedAtMs,
            completion: { Self.maskingReason(of: await handle.completion(), masker: masker, secrets: secrets) })
    }

    /// `completion` with the reason of a launch failure masked. The runner's own reasons (a
    /// spawn that failed in `exec` or `chdir`) quote the executable and the workdir, and the
    /// outcome is stored with the run as it is: the event log masks only the lines it writes.
    /// Without the agent's masker, the job's own `secrets` are masked.
    static func maskingReason(of completion: RunCompletion, masker: SecretMasker?, secrets: [String]) -> RunCompletion {
        guard case let .launchFailed(reason) = completion.outcome else { return completion }
        var c = completion
        c.outcome = .launchFailed(reason: (masker ?? SecretMasker(secrets)).mask(reason))
        return c
    }

    public func terminate(_ runID: RunID, grace: Duration) { runner.terminate(runID, grace: grace) }
}

/// The agent's alarm clock: the real one is a ``WakeTimer``; tests use a recorder.
public protocol WakeAlarm: Sendable {
    func arm(at instant: Instant?)
}

extension WakeTimer: WakeAlarm {}
