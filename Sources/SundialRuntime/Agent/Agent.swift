import CSundialShim
import OrderedCollections
import SundialConfig
import SundialCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The agent: feeds the pure ``Scheduler`` with what happens and carries out what it decides.
///
/// One actor owns the scheduler, so every decision is serial. Its methods never `await` while
/// holding scheduler state: launches, completions, reloads and signals come back in as
/// ``Input``s through ``deliver(_:)``, so there is no actor re-entrancy to reason about.
/// The agent decides *when* (it arms a wall-clock alarm for the scheduler's next wake-up and
/// sleeps; no periodic ticks, except that an idle agent wakes every 5 minutes to record that it
/// is alive, which catch-up after a crash relies on), the scheduler decides *what*.
///
/// Everything the agent touches is injected (clock, launcher, alarm, log, store, config
/// loading), so scenario tests drive the same code on virtual time with fakes.
///
/// The actor runs on the event loop it is given (`sundial run`'s main thread), through the
/// loop's ``SerialExecutor``: the wake-up timer's handler, the decision, the state commit and
/// the launch then share one thread (issue 16; `AgentOnLoopTests`). Without a loop (scenario
/// tests) it is an ordinary actor.
public actor Agent {
    public struct Settings: Sendable {
        /// Paths shown in `agent.started` (the loader closure does the reading).
        public var configPaths: [String]
        public var stateDirectory: String
        /// Default working directory of jobs that set none.
        public var jobWorkdir: String
        public var shutdownGraceMs: Int64
        public var version: String
        /// A wall-clock jump larger than this (against the monotonic clock, plus 0.1% of the
        /// elapsed time to tolerate NTP slewing) is a clock step (design §2).
        public var clockStepThresholdMs: Int64
        /// The longest the agent goes without recording that it is alive (``StateStore/markAlive(now:)``),
        /// even when nothing happens: catch-up after a crash starts from that mark. Any event
        /// marks it too (at most every ``aliveMinIntervalMs``), and so does a clean stop.
        public var aliveIntervalMs: Int64 = 300_000
        /// Events closer together than this share one alive mark (a busy agent would otherwise
        /// write it on every fire).
        public var aliveMinIntervalMs: Int64 = 10_000
        /// A load still running after this long is abandoned at the next reload request, which
        /// then proceeds (the loader child has its own, shorter deadline; this bounds whatever
        /// else could hold a load up).
        public var reloadDeadlineMs: Int64 = 90_000
        /// This boot's id (the kernel's `boot_id`): `@reboot` jobs fire only at the first start
        /// of each boot. `nil` makes every start a boot (tests, or no /proc).
        public var bootID: String?
        /// How long before a due instant the agent wakes to prepare its fires: it decides them,
        /// commits their marks and builds each launch (spec, cgroup, pipes) ahead, and the
        /// runner then holds the spawn until the instant itself (``LaunchSpec/notBefore``), so
        /// that only the clone and the exec are left between the instant and the job's first
        /// instruction. 0 (the default, and scenario tests on virtual time): decide at the
        /// instant. `sundial run` uses ``productionFireLeadMs``. A process never starts before
        /// its instant; the cost is that the loop's thread is held (at most
        /// ``LaunchSpec/maximumHoldMs``) between the preparation and the instant.
        public var fireLeadMs: Int64 = 0
        /// The longest a stopping agent waits for the fleet's database to take its last calls
        /// (the claims of the runs the stop ended), whatever each call's own timeout.
        public var fleetDrainMs: Int64 = 10_000
        /// The lead `sundial run` uses: the preparation of one fire takes about 0.6 ms on a
        /// small machine (docs/benchmarks.md), so 2 ms covers it with room for a few jobs more.
        public static let productionFireLeadMs: Int64 = 2
        /// ``productionFireLeadMs``, or the environment variable `SUNDIAL_FIRE_LEAD_MS` (0 to half
        /// of ``LaunchSpec/maximumHoldMs``, so that a hold always covers the lead with room to
        /// spare; 0 decides at the instant): for benchmarks and diagnostics.
        public static var fireLeadFromEnvironment: Int64 {
            guard let raw = getenv("SUNDIAL_FIRE_LEAD_MS"), let v = Int64(String(cString: raw)) else { return productionFireLeadMs }
            return min(max(0, v), LaunchSpec.maximumHoldMs / 2)
        }

        public init(
            configPaths: [String], stateDirectory: String, jobWorkdir: String? = nil, shutdownGraceMs: Int64 = 30_000,
            version: String, clockStepThresholdMs: Int64 = 1000
        ) {
            self.configPaths = configPaths
            self.stateDirectory = stateDirectory
            self.jobWorkdir = jobWorkdir ?? stateDirectory
            self.shutdownGraceMs = shutdownGraceMs
            self.version = version
            self.clockStepThresholdMs = clockStepThresholdMs
        }
    }

    /// What can happen to the agent.
    public enum Input: Sendable {
        /// The alarm went off.
        case wake
        /// The wall clock was set (timerfd cancel-on-set).
        case clockChanged
        /// `startedAtMs`: when the process was spawned (``RunHandle/startedAtMs``), `nil` if unknown.
        case launched(RunID, attempt: Int, pid: Int32?, startedAtMs: Int64? = nil)
        case finished(RunID, attempt: Int, RunCompletion)
        /// Re-read the configuration (file change, SIGHUP, `sundial reload`).
        case reload(reason: String)
        /// An answer of the fleet's database (``FleetWorker``) for the scheduler.
        case fleet(SchedulerEvent)
        /// Stop gracefully (SIGTERM, SIGINT).
        case shutdown(signal: String)
        /// Something the agent cannot run without is gone (its state directory or lock file was
        /// removed or replaced): log `agent.fatal`, stop as on SIGTERM, exit 1.
        case fatal(reason: String)
    }

    /// The loop the actor runs on (and its launches), if any.
    nonisolated let loop: EventLoop?
    /// Without a loop: a plain actor whose default executor this one shares (an actor may
    /// run on another's executor, SE-0392), as an actor without a custom executor would have.
    private nonisolated let defaultExecutor: DefaultExecutorHolder?

    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        if let loop { return loop.asUnownedSerialExecutor() }
        return defaultExecutor!.unownedExecutor
    }

    let settings: Settings
    let clock: any SundialClock
    let launcher: any JobLauncher
    let log: EventLog
    let store: (any StateStore)?
    let alarm: any WakeAlarm
    let loadConfiguration: @Sendable () -> ConfigLoadResult
    let pid: Int32
    /// Watches runs that outlived the previous agent (``SchedulerAction/watch(_:)``).
    let adopter: (any RunAdopter)?
    /// Runs being watched by ``adopter`` rather than run by ``launcher``.
    var adoptedRuns: Set<RunID> = []
    /// Carries out fleet actions (`lock: fleet`); `nil` without a fleet coordinator.
    var fleetWorker: FleetWorker?
    /// This box's name in the fleet (`--box`).
    public let box: String
    /// Set by ``Input/fatal(reason:)``: the agent exits 1 once stopped.
    var fatalReason: String?

    var scheduler: Scheduler
    public internal(set) var jobSet: JobSet
    var phase: Phase = .created
    /// A stop, a fatal error or a reload delivered before ``start(restored:)``. The signal reader
    /// and the config watcher run before the start (a slow load or database check can take
    /// seconds), and a SIGTERM read then is gone from the kernel: dropped, the agent would run on
    /// until systemd's SIGKILL. A held stop makes the start stop at once without starting
    /// anything; a held reload is carried out once started. At most one of each.
    var heldBeforeStart: [Input] = []
    var lastOffsetMs: Int64 = 0
    /// The latest instant the scheduler has been told about: a fire decided ahead of its
    /// instant (``Settings/fireLeadMs``) moves the scheduler's time past the wall clock's for
    /// up to the lead, and the inputs handled meanwhile must not take it back.
    var decidedUpTo = Instant(unixMillis: .min)
    var lastMonotonicMs: Int64 = 0
    var exitWaiters: [CheckedContinuation<Int32, Never>] = []
    var exitCode: Int32?
    var reloadInFlight = false
    var reloadPending = false
    /// Loads started so far; a `reloadNow` caller waits for load number `target`.
    var reloadsStarted = 0
    /// Monotonic time the load in flight started.
    var reloadStartedMono: Int64 = 0
    var reloadWaiters: [(target: Int, continuation: CheckedContinuation<ReloadOutcome, Never>)] = []
    /// When the agent started (`status`).
    public internal(set) var startedAt: Instant?
    /// Calendar jobs are held until the clock is synchronised (`--hold-until-synced`).
    public internal(set) var calendarHeld = false
    /// Monotonic time of the last alive mark.
    var lastAliveMono: Int64?
    var aliveMarkFailed = false
    /// Run when the agent stops, before its waiters resume (the control socket goes away).
    var stopHooks: [@Sendable () -> Void] = []
    /// Observers of every record (metrics, systemd, the status page); called on the actor.
    var observers: [@Sendable (LogRecord) -> Void] = []
    var reloadObservers: [@Sendable () -> Void] = []
    /// Told each scheduler step's events at its end (``Notifier``: whether a failed attempt is
    /// retried is known only once the whole step is seen).
    var notifier: Notifier?
    /// Attempts handed to the launcher so far (tests wait for their `run.started`).
    public private(set) var launchOrders = 0
    /// Active runs by id, for `status`.
    public private(set) var activeRuns: [RunID: ActiveRun] = [:]
    /// Clients following runs (`trigger --wait`, `logs -f`; Agent+Control).
    let runWatch = RunWatchHub()

    public struct ActiveRun: Sendable, Hashable {
        public var job: JobID
        public var attempt: Int
        public var pid: Int32?
        public var startedAt: Instant
    }

    enum Phase { case created, running, stopping, stopped }

    public init(
        settings: Settings, jobs: JobSet, clock: any SundialClock, random: some RandomSource,
        calculator: any FireCalculating, launcher: any JobLauncher, log: EventLog,
        store: (any StateStore)?, alarm: any WakeAlarm, pid: Int32, adopter: (any RunAdopter)? = nil,
        fleet: (any FleetCoordinator)? = nil, box: String = "local", loop: EventLoop? = nil,
        loadConfiguration: @escaping @Sendable () -> ConfigLoadResult
    ) {
        self.loop = loop
        self.defaultExecutor = loop == nil ? DefaultExecutorHolder() : nil
        self.box = box
        self.adopter = adopter
        self.settings = settings
        self.clock = clock
        self.launcher = launcher
        self.log = log
        self.store = store
        self.alarm = alarm
        self.pid = pid
        self.loadConfiguration = loadConfiguration
        self.jobSet = jobs
        self.scheduler = Scheduler(
            jobs: jobs, calculator: calculator, random: random,
            options: SchedulerOptions(fleetConfigured: fleet != nil))
        if let fleet { self.fleetWorker = Self.makeFleetWorker(fleet, box: box) }
    }

    /// Adds an observer of every record the agent logs (metrics exporters, systemd, the status page).
    public func addObserver(_ observer: @escaping @Sendable (LogRecord) -> Void) { observers.append(observer) }

    /// Sends notifications (`notify:`) through `notifier` from now on.
    public func setNotifier(_ notifier: Notifier) { self.notifier = notifier }

    /// Adds an observer told when a reload begins (systemd's `RELOADING=1`).
    public func addReloadObserver(_ observer: @escaping @Sendable () -> Void) { reloadObservers.append(observer) }

    // MARK: - Lifecycle

    /// Starts scheduling: logs `agent.started` and `config.loaded`, restores state, fires
    /// `@reboot` jobs and what catch-up asks for.
    public func start(restored: RestoredState) {
        guard phase == .created else { return }
        phase = .running
        let now = clock.wallNow()
        lastOffsetMs = now.unixMillis - clock.monotonicNow()
        lastMonotonicMs = clock.monotonicNow()
        emit(
            .agentStarted(
                .init(
                    version: settings.version, pid: pid, config: settings.configPaths,
                    state: settings.stateDirectory, at: now)))
        emit(configLoadedEvent(new: jobSet, difference: Self.difference(old: nil, new: jobSet), at: now))
        // A stop read before the start: stop without starting anything. The @reboot runs and
        // the catch-up instants stay for the next start, the runs a previous agent left stay as
        // recorded (the next start adopts them), and nothing is launched only to be stopped.
        if let stop = heldBeforeStart.first(where: { if case .shutdown = $0 { true } else if case .fatal = $0 { true } else { false } }) {
            heldBeforeStart = []
            return stopWithoutStarting(stop, at: now)
        }
        warnIfFleetMissing(at: now)
        startFleetAnswers()
        startedAt = now
        // `@reboot` jobs run once per boot: a restart within the same boot (a package upgrade,
        // Restart=on-failure) does not fire them again. The boot is recorded before they launch:
        // a crash in between costs this boot its @reboot runs rather than running them twice.
        // Without a boot id (no /proc) every start counts as a boot, as before.
        // A boot that could not be recorded runs no @reboot job: the next start in this boot
        // would not know they ran. The record stays queued in the store and may be committed
        // later, and then that start does not run them either: at most once per boot.
        var newBoot = settings.bootID == nil || settings.bootID != restored.bootID
        if newBoot, let boot = settings.bootID, store != nil {
            var changes: [StateChange] = [.bootRecorded(bootID: boot)]
            if flush(&changes) != nil { newBoot = false }
        }
        perform(scheduler.handle(.start(restored: restored, reboot: newBoot), at: now))
        markAlive(now: now, force: true)
        // The interrupted runs recorded and the instants consumed by catch-up are committed now,
        // so a crash right after a start cannot undo them (and retry a run forever).
        do { try store?.flush() } catch { stateError("cannot record state: \(error)", at: now) }
        armAlarm()
        let held = heldBeforeStart
        heldBeforeStart = []
        for input in held { deliver(input) }
    }

    /// ``start(restored:)``'s end when a stop came before it: `agent.stopping` and
    /// `agent.stopped`, with nothing recorded in the store (not even that the agent was alive:
    /// the next start catches up from the previous agent's last sign of life).
    private func stopWithoutStarting(_ stop: Input, at now: Instant) {
        let cause: LogRecord.AgentStopping.Cause
        switch stop {
        case let .fatal(reason):
            fatalReason = reason
            emit(.agentFatal(.init(version: settings.version, pid: pid, reason: reason, state: settings.stateDirectory, at: now)))
            cause = .fatal
        case let .shutdown(signal): cause = .signal(signal)
        default: return
        }
        phase = .stopping
        emit(.agentStopping(.init(version: settings.version, pid: pid, cause: cause, activeRuns: 0, at: now)))
        phase = .stopped
        for hook in stopHooks { hook() }
        stopHooks = []
        resumeReloadWaiters(upTo: .max, with: .notRunning)
        completeStop(fatalReason == nil ? 0 : 1)
    }

    /// Keeps an input that came before the start, if it is one the start would not make up for
    /// (the start ticks, arms the alarm and reads the clock itself; no run exists yet).
    private func holdUntilStarted(_ input: Input) {
        func kind(_ i: Input) -> Int? {
            switch i {
            case .shutdown: 0
            case .fatal: 1
            case .reload: 2
            case .wake, .clockChanged, .launched, .finished, .fleet: nil
            }
        }
        guard let k = kind(input), !heldBeforeStart.contains(where: { kind($0) == k }) else { return }
        heldBeforeStart.append(input)
    }

    /// Feeds one input to the scheduler and carries out its decisions.
    public func deliver(_ input: Input) {
        if phase == .created { return holdUntilStarted(input) }
        guard phase == .running || phase == .stopping else { return }
        // Lines lost to a full disk are retried (and counted in `log.dropped`) on every wake,
        // so a quiet agent still reports its losses once the disk has room again.
        if log.pendingDroppedLines > 0 { log.retryPending() }
        let wallNow = clock.wallNow()
        let clockChanged = { if case .clockChanged = input { return true } else { return false } }()
        detectClockStep(now: wallNow, forced: clockChanged)
        // Before handling, so that the alarm armed below already counts from this mark.
        if phase == .running { markAlive(now: wallNow, force: false) }
        let now = max(wallNow, decidedUpTo)
        switch input {
        case .wake:
            // Within the lead of the next due instant: decide it now, as of that instant; the
            // launches wait for it in the runner (see ``Settings/fireLeadMs``). Measured from the
            // wall clock, not from an earlier early decision, so that decisions never chain
            // further ahead than the lead.
            if let due = scheduler.nextWake, due > now, (due - wallNow).milliseconds <= settings.fireLeadMs {
                decidedUpTo = due
                perform(scheduler.handle(.tick, at: due), notBefore: due)
            } else {
                perform(scheduler.handle(.tick, at: now))
            }
        case .clockChanged:
            perform(scheduler.handle(.tick, at: now))
        case let .fleet(answer):
            perform(scheduler.handle(answer, at: now))
        case let .launched(id, attempt, pid, startedAtMs):
            // The process may have started a while ago (a loop busy with output): its own start
            // is the attempt's, for `status`, `history` and the pages.
            // Converted from the wall clock itself, not from `now` (which is ahead by the fire
            // lead when a later fire was decided early).
            let wall = clock.wallNow()
            let startedAt = startedAtMs.map { Instant(unixMillis: wall.unixMillis - max(0, sundial_monotonic_ms() - $0)) }
            if var run = activeRuns[id] {
                run.pid = pid
                if let startedAt { run.startedAt = startedAt }
                activeRuns[id] = run
            }
            perform(scheduler.handle(.attemptLaunched(runID: id, attempt: attempt, pid: pid, startedAt: startedAt), at: now))
        case let .finished(id, attempt, completion):
            adoptedRuns.remove(id)
            perform(
                scheduler.handle(
                    .attemptFinished(
                        runID: id, attempt: attempt, outcome: completion.outcome,
                        durationMs: completion.durationMs), at: now), completion: completion)
        case let .reload(reason):
            beginReload(reason: reason)
        case let .fatal(reason):
            guard fatalReason == nil else { return }
            fatalReason = reason
            emit(.agentFatal(.init(version: settings.version, pid: pid, reason: reason, state: settings.stateDirectory, at: now)))
            guard phase == .running else { return }
            phase = .stopping
            emit(.agentStopping(.init(version: settings.version, pid: pid, cause: .fatal, activeRuns: activeRuns.count, at: now)))
            perform(scheduler.handle(.shutdown(graceMs: settings.shutdownGraceMs), at: now))
        case let .shutdown(signal):
            guard phase == .running else { return }
            phase = .stopping
            emit(
                .agentStopping(
                    .init(
                        version: settings.version, pid: pid, cause: .signal(signal), activeRuns: activeRuns.count,
                        at: now)))
            perform(scheduler.handle(.shutdown(graceMs: settings.shutdownGraceMs), at: now))
        }
    }

    /// A manual run (`sundial trigger`), honouring the job's `concurrency`.
    public func trigger(_ job: JobID) -> TriggerResult {
        guard phase == .running else { return .shuttingDown }
        let actions = scheduler.handle(.trigger(job), at: schedulerNow)
        perform(actions)
        for case let .triggerResult(j, result) in actions where j == job { return result }
        return .unknownJob
    }

    /// Holds or releases calendar jobs (`--hold-until-synced`; ``SchedulerEvent/holdCalendar(_:)``),
    /// logging `clock.unsynced` or `clock.synced`. May be called before ``start(restored:)``.
    public func holdCalendar(_ held: Bool, detail: [String: JSONValue] = [:]) {
        guard phase != .stopped, held != calendarHeld else { return }
        let now = schedulerNow
        calendarHeld = held
        var fields = OrderedDictionary<String, JSONValue>()
        for (k, v) in detail.sorted(by: { $0.key < $1.key }) { fields[k] = v }
        emit(held ? .clockUnsynced(detail: fields, at: now) : .clockSynced(detail: fields, at: now))
        perform(scheduler.handle(.holdCalendar(held), at: now))
        if !held, phase == .running { markAlive(now: now, force: true) }
        armAlarm()
    }

    /// Runs `hook` when the agent stops, before ``waitUntilStopped()`` returns (at once if it
    /// has stopped already).
    public func onStop(_ hook: @escaping @Sendable () -> Void) {
        if phase == .stopped { hook() } else { stopHooks.append(hook) }
    }

    /// Waits until the agent has stopped; returns its exit status.
    public func waitUntilStopped() async -> Int32 {
        // Checked in the continuation's body, not before the `await`: the body runs on the
        // actor at once, but the hop into `withCheckedContinuation` can put this task back in
        // the loop's queue, behind a stop that then resumes the waiters before this one is
        // among them (in optimized builds, a caller without the loop as its task executor is
        // put back: docs/decisions.md, "actor state checked inside a continuation's body").
        await withCheckedContinuation { c in
            if let exitCode { c.resume(returning: exitCode) } else { exitWaiters.append(c) }
        }
    }

    /// The time the scheduler is told for an input now: the wall clock's, or the instant of a
    /// fire decided ahead of it if that is later (see ``decidedUpTo``).
    var schedulerNow: Instant { max(clock.wallNow(), decidedUpTo) }

    /// The scheduler's next wake-up (for `status` and tests).
    public var nextWake: Instant? { scheduler.nextWake }

    /// The next fire of each job, for `status`.
    public func nextFires() -> [JobID: Instant] {
        var fires: [JobID: Instant] = [:]
        for id in jobSet.jobs.keys { fires[id] = scheduler.plannedFire(of: id) }
        return fires
    }

    func finish(_ code: Int32) {
        guard phase != .stopped else { return }
        phase = .stopped
        alarm.arm(at: nil)
        if !calendarHeld, let store { try? store.markAlive(now: clock.wallNow()) }
        for hook in stopHooks { hook() }
        stopHooks = []
        resumeReloadWaiters(upTo: .max, with: .notRunning)
        // The claims of the runs the shutdown stopped are finished before the process exits:
        // an unfinished claim would expire and `on_lost` could run the instant again. Waited
        // for off the actor (so the loop goes on serving signals and descriptors meanwhile) and
        // for at most ``Settings/fleetDrainMs`` in all; retries still waiting are not waited for.
        guard let fleetWorker else { return completeStop(code) }
        let limit = settings.fleetDrainMs
        Task {
            let drained = await fleetWorker.drained(withinMilliseconds: limit)
            self.completeStop(code, fleetDrained: drained)
        }
    }

    /// The end of ``finish(_:)``: the last commit, `agent.stopped`, the waiters.
    private func completeStop(_ code: Int32, fleetDrained: Bool = true) {
        if !fleetDrained {
            emit(
                .fleet(
                    .init(
                        .finishAbandoned, at: clock.wallNow(), level: .error,
                        [
                            "message": .string(
                                "the fleet's database did not answer the stop's last calls within \(settings.fleetDrainMs) ms: unfinished claims expire and on_lost decides"
                            )
                        ])))
        }
        do { try store?.flush() } catch {
            emit(.stateError(message: "\(error)", at: clock.wallNow()))
        }
        emit(.agentStopped(.init(version: settings.version, pid: pid, exitCode: code, at: clock.wallNow())))
        exitCode = code
        for w in exitWaiters { w.resume(returning: code) }
        exitWaiters = []
    }

    // MARK: - Carrying out decisions

    /// - Parameter completion: the attempt end this step handles (``Input/finished(_:attempt:_:)``),
    ///   whose runner-only facts complete the scheduler's `run.finished` record.
    /// - Parameter notBefore: the instant the step was decided for, when that is ahead of the
    ///   wall clock: its launches do not start before it.
    func perform(_ actions: [SchedulerAction], completion: RunCompletion? = nil, notBefore: Instant? = nil) {
        // First every state change of this decision, in order, in one `apply`, before any launch.
        // A `.fired` instant must be durable before the run it allows starts, so that a crash or
        // power cut can never make the same instant fire twice (design §2); one commit for all
        // the instants due together (100 jobs due at :00 are one decision) rather than one per
        // launch is what keeps the disk writes per fire small on flash (issue 15: each commit
        // rewrites whole pages of the write-ahead log). Committing a later launch's mark before
        // an earlier launch changes nothing a restart can see: both marks precede both runs.
        var changes: [StateChange] = []
        var retries = false
        var ended: [(RunID, RunOutcome, Instant)] = []
        var stepRecords: [LogRecord] = []
        for action in actions {
            switch action {
            case let .persist(change):
                changes.append(change)
                if case let .runFinished(id, outcome, at) = change { ended.append((id, outcome, at)) }
            case let .launch(order) where order.attempt > 1:
                // A retry's attempt number is committed before it launches: after a crash the
                // run is recorded `interrupted` under the right attempt (never over an earlier
                // attempt's outcome), and a crash loop uses up its attempts.
                changes.append(.attemptStarted(runID: order.runID, attempt: order.attempt, pid: nil, at: clock.wallNow()))
                retries = true
            default:
                break
            }
        }
        // A launch goes ahead only once the marks that allow it are recorded. When they are not
        // (a full disk, a state file damaged or removed under the agent), the attempt is not
        // started but ends as `launch_failed`: run, it could run again after a restart, which
        // finds no mark of it (design §2: never twice; a missed run is reported, a doubled one
        // cannot be undone).
        // Only a change that `apply` must make durable at once can fail the step: for the rest
        // (a retry's attempt) `apply` may report an earlier batch's failure, and the flush below
        // decides.
        let durable = changes.contains(where: \.isDurableOnApply)
        var unrecorded = flush(&changes)
        if !durable { unrecorded = nil }
        if retries, unrecorded == nil {
            do { try store?.flush() } catch {
                stateError("cannot record state: \(error)", at: clock.wallNow())
                unrecorded = "\(error)"
            }
        }
        // Followers (`trigger --wait`, `logs -f`) hear of a run's end once its record is applied.
        for (id, outcome, at) in ended { runWatch.runEnded(id, outcome: outcome, at: at) }
        // Whatever this step decided as of an instant still ahead of the wall clock (its own
        // early wake, or any input handled since one) takes effect no sooner than that instant.
        let heldUntil = notBefore ?? (decidedUpTo > clock.wallNow() ? decidedUpTo : nil)
        for action in actions {
            switch action {
            case let .launch(order):
                if let unrecorded { refuse(order, unrecorded: unrecorded) } else { launch(order, notBefore: heldUntil) }
            case let .terminate(runID, graceMs, _):
                // A stop decided ahead of its instant (`concurrency: replace`, a lost fleet lease)
                // does not reach the run before it: wait out the rest of the lead here (bounded),
                // as a launch does in the runner.
                if let heldUntil, heldUntil > clock.wallNow() {
                    clock.hold(until: heldUntil, atMostMilliseconds: LaunchSpec.maximumHoldMs)
                }
                if adoptedRuns.contains(runID) {
                    adopter?.terminate(runID, grace: .milliseconds(graceMs))
                } else {
                    launcher.terminate(runID, grace: .milliseconds(graceMs))
                }
            case let .watch(run): watch(run)
            case .wake: break  // armed once, below
            case let .emit(scheduled):
                let record = completed(scheduled, by: completion)
                // A run that ended leaves `status` with the line that says so.
                if case let .runFinished(f) = record { activeRuns[f.runID] = nil }
                emit(record)
                if notifier != nil { stepRecords.append(record) }
            case .persist, .triggerResult: break
            case .claim, .renewLease, .finishClaim, .scanLostLeases, .resolveLost: fleetWorker?.submit(action)
            case .shutdownComplete: finish(fatalReason == nil ? 0 : 1)
            }
        }
        if let notifier, !stepRecords.isEmpty { notifier.observe(step: stepRecords, jobs: jobSet) }
        armAlarm()
    }

    /// Arms the alarm for the scheduler's next wake-up, or for the next alive mark if that
    /// comes first (at most every ``Settings/aliveIntervalMs``: an idle agent wakes that often
    /// and no more).
    func armAlarm() {
        guard phase != .stopped else { return alarm.arm(at: nil) }
        var at = scheduler.nextWake.map { Instant(unixMillis: $0.unixMillis &- settings.fireLeadMs) }
        if phase == .running, store != nil, !calendarHeld, let last = lastAliveMono {
            let remaining = max(0, settings.aliveIntervalMs - (clock.monotonicNow() - last))
            let alive = Instant(unixMillis: clock.wallNow().unixMillis &+ remaining)
            at = at.map { min($0, alive) } ?? alive
        }
        alarm.arm(at: at)
    }

    /// Records that the agent is alive (catch-up after a crash starts there), at most every
    /// ``Settings/aliveMinIntervalMs`` unless `force`. Not while calendar jobs are held: the
    /// clock is not trusted then, and a stale mark would mislead the next start.
    func markAlive(now: Instant, force: Bool) {
        guard let store, !calendarHeld else { return }
        let mono = clock.monotonicNow()
        if !force, let last = lastAliveMono, mono - last < settings.aliveMinIntervalMs { return }
        lastAliveMono = mono
        do {
            try store.markAlive(now: now)
            aliveMarkFailed = false
        } catch {
            // Once per failure streak: a full disk must not flood the log.
            if !aliveMarkFailed { stateError("cannot record state: \(error)", at: now) }
            aliveMarkFailed = true
        }
    }

    func stateError(_ message: String, at now: Instant) {
        emit(.stateError(message: message, at: now))
    }

    /// Applies `changes`; returns why they could not be recorded, or `nil`.
    private func flush(_ changes: inout [StateChange]) -> String? {
        defer { changes = [] }
        guard !changes.isEmpty, let store else { return nil }
        do { try store.apply(changes) } catch {
            emit(.stateError(message: "cannot record state: \(error)", at: clock.wallNow()))
            return "\(error)"
        }
        return nil
    }

    /// Ends an attempt whose launch could not be recorded without starting it: as a launch the
    /// runner refused would end, so that retries, dependents, notifications and `status` treat it
    /// the same way.
    private func refuse(_ order: LaunchOrder, unrecorded: String) {
        activeRuns[order.runID] = ActiveRun(job: order.job.id, attempt: order.attempt, pid: nil, startedAt: clock.wallNow())
        let reason =
            "not started: its start could not be recorded in the state database (\(unrecorded)); "
            + "Sundial does not start a run it could not record, since a restart would not know it ran"
        let completion = RunCompletion(runID: order.runID, pid: nil, outcome: .launchFailed(reason: reason))
        let (id, attempt) = (order.runID, order.attempt)
        Task { await self.deliver(.finished(id, attempt: attempt, completion)) }
    }

    /// Supervises a run that outlived the previous agent: it shows in `status`, and its end
    /// comes back as `.finished` like a launched attempt's. Without an adopter (a test double
    /// that has none), it ends at once.
    private func watch(_ run: AdoptedRun) {
        activeRuns[run.runID] = ActiveRun(job: run.job, attempt: run.attempt, pid: run.identity.pid, startedAt: run.startedAt)
        adoptedRuns.insert(run.runID)
        let id = run.runID
        let attempt = run.attempt
        let ended: @Sendable (RunCompletion) -> Void = { completion in
            Task { await self.deliver(.finished(id, attempt: attempt, completion)) }
        }
        guard let adopter else {
            ended(RunCompletion(runID: id, pid: run.identity.pid, outcome: .unknown))
            return
        }
        adopter.watch(run, ended: ended)
    }

    /// - Parameter notBefore: set by ``perform(_:completion:notBefore:)`` for every launch decided
    ///   as of an instant ahead of the wall clock: the fire's own, or another input's handled
    ///   meanwhile (a manual trigger, a fleet claim answered, a dependency met).
    private func launch(_ order: LaunchOrder, notBefore: Instant?) {
        launchOrders += 1
        activeRuns[order.runID] = ActiveRun(job: order.job.id, attempt: order.attempt, pid: nil, startedAt: clock.wallNow())
        let launcher = self.launcher
        let log = self.log
        let clock = self.clock
        let workdir = settings.jobWorkdir
        let job = order.job.id
        let attempt = order.attempt
        let store = self.store
        let runWatch = self.runWatch
        // Output can arrive before the agent has handled `.launched` (and so before the
        // scheduler's `run.started`); hold those first lines back so the log reads in order.
        // At most 1,000 are held; past that they are counted (`log.dropped`), never logged ahead
        // of the held ones or of `run.started` (`sundial logs` still has them all).
        let early = Locked<(open: Bool, lines: [OutputLine], over: Int)>((false, [], 0))
        // The attempt's last lines, stored with the run for `sundial logs`.
        let tail = OutputTail(limit: order.job.output.keepBytes)
        // Detached: a task created here would inherit the actor and queue every launch of a
        // burst behind it; detached, 100 due jobs reach the runner back to back. On the agent's
        // loop when it has one: the launch then starts on this thread, after this step, without
        // waking another (the runner it posts to is served by the same loop). Except a launch
        // whose preparation may wait on something outside the box: a `user:` or `group:` job
        // asks the password and group databases (NSS: LDAP, sssd, which can block for their
        // timeouts) and may stat a home on NFS, an `env_file` is read from disk; those prepare
        // on the executor's threads, so that the loop goes on reaping, reading output, enforcing
        // timeouts and answering signals meanwhile.
        let mayBlock = order.job.user != nil || order.job.group != nil || order.job.envFile != nil
        Task.detached(executorPreference: mayBlock ? nil : loop) {
            let attemptHandle = await launcher.launch(order, workdir: workdir, notBefore: notBefore) { line in
                tail.append(line)
                runWatch.output(line, job: job, attempt: attempt, mask: log.masker.mask)
                let held = early.withLock { s -> Bool in
                    guard !s.open else { return false }
                    if s.lines.count < 1000 { s.lines.append(line) } else { s.over += 1 }
                    return true
                }
                if !held { log.log(LogRecord.runOutput(line, job: job, attempt: attempt, at: clock.wallNow())) }
            }
            if let identity = attemptHandle.identity {
                // Batched with the attempt's other changes (committed within the batch interval):
                // a crash before that commit is covered by the restart's SUNDIAL_RUN_ID search,
                // which finds the process by its environment and records it then.
                do { try store?.apply([.processStarted(runID: order.runID, attempt: attempt, identity: identity)]) } catch {
                    log.log(
                        LogRecord.stateError(
                            message: "cannot record the process of run \(order.runID): \(error)",
                            at: clock.wallNow()))
                }
            }
            if attemptHandle.pid != nil {
                await self.deliver(.launched(order.runID, attempt: attempt, pid: attemptHandle.pid, startedAtMs: attemptHandle.startedAtMs))
            }
            // Under the lock, so that a line arriving meanwhile waits and follows the held ones.
            early.withLock { s in
                s.open = true
                for line in s.lines { log.log(LogRecord.runOutput(line, job: job, attempt: attempt, at: clock.wallNow())) }
                log.countDropped(lines: s.over)
                s.lines = []
            }
            let completion = await attemptHandle.completion()
            if let record = tail.record(runID: order.runID, attempt: attempt) {
                // Batched with the run's end (same background commit); before `.finished`, so
                // the output is there when `run.finished` is logged.
                do { try store?.apply([.outputStored(record)]) } catch {
                    log.log(
                        LogRecord.stateError(
                            message: "cannot store the output of run \(order.runID): \(error)",
                            at: clock.wallNow()))
                }
            }
            await self.deliver(.finished(order.runID, attempt: attempt, completion))
        }
    }

    /// Adds what only the runner saw to the scheduler's `run.finished` of the attempt that
    /// `completion` ended: the exit status of a run Sundial stopped (timeout, replace, shutdown;
    /// the scheduler knows only the outcome) and the output lost to the limits.
    private func completed(_ record: LogRecord, by completion: RunCompletion?) -> LogRecord {
        guard case var .runFinished(f) = record, let c = completion, c.runID == f.runID else { return record }
        f.outputDroppedBytes = c.droppedBytes
        f.outputTruncatedLines = c.truncatedLines
        if f.exitCode == nil { f.exitCode = c.exitCode }
        if f.signal == nil { f.signal = c.signal }
        return .runFinished(f)
    }

    func emit(_ record: LogRecord) {
        runWatch.observe(record)
        log.log(record)
        for o in observers { o(record) }
    }

    // MARK: - Clock steps

    private func detectClockStep(now: Instant, forced: Bool) {
        let mono = clock.monotonicNow()
        let offset = now.unixMillis - mono
        let elapsed = max(0, mono - lastMonotonicMs)
        let delta = offset - lastOffsetMs
        lastMonotonicMs = mono
        guard forced || abs(delta) > settings.clockStepThresholdMs + elapsed / 1000 else {
            lastOffsetMs = offset
            return
        }
        lastOffsetMs = offset
        guard abs(delta) >= 1 else { return }
        let from = Instant(unixMillis: now.unixMillis - delta)
        // A fire decided ahead belonged to the old timeline: when the clock went back, the new
        // wall clock rules. Forward, a step smaller than the rest of the lead leaves the decision
        // ahead, and the scheduler's time must not go back before it.
        if delta < 0 { decidedUpTo = now }
        emit(.clockStepped(from: from, to: now, deltaMs: delta, at: now))
        perform(scheduler.handle(.clockStepped(fromWall: from, toWall: now), at: max(now, decidedUpTo)))
    }
}

/// The executor of an agent without a loop: a default actor's (see ``Agent/unownedExecutor``).
private actor DefaultExecutorHolder {}
