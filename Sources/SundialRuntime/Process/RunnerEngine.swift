import CSundialShim
import SundialCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The loop behind ``ProcessRunner``: an epoll set that owns every run, served either by a
/// thread of its own or, embedded, by the agent's ``EventLoop`` (the runner's epoll descriptor is
/// itself readable while any of its descriptors is, as sd-event embeds other loops; its
/// deadlines are then a timerfd in the same set). The agent embeds it: one thread fewer, and
/// the wake-up timer and the spawn run on the same thread (issue 16).
///
/// Each child is watched through a pidfd in the loop's epoll set and reaped with
/// `waitid(P_PIDFD)`, so the loop never collects a child that is not its own (another runner's,
/// a test harness's). With `reapsOrphans` (``ProcessRunner/init(reapsOrphans:cgroupTree:)``,
/// `sundial run` only) the process is also a child subreaper and the loop reaps re-parented
/// orphans, skipping every runner's children (``ChildRegistry``).
///
/// `@unchecked Sendable`: all fields except `inbox`, `active` and `burstSpawns` (a `Mutex` and
/// an `Atomic`) are touched only by the loop thread (its own, or the embedding loop's, which
/// calls one handler at a time), after `init` returns.
final class RunnerEngine: @unchecked Sendable {
    enum Command: Sendable {
        case start(LaunchSpec, OutputHandler, CheckedContinuation<RunHandle, Never>)
        case terminate(RunID?, graceMs: Int64)
        /// Kill every run, wait for them to be reaped, then end the loop and close everything.
        case stop(CheckedContinuation<Void, Never>)
    }

    /// Wakes the loop at least this often while runs are active (a backstop only: every child
    /// has a pidfd in the epoll set).
    static let safetyPollMs: Int64 = 1000
    /// How often a child without a pidfd (a kernel before 5.3) is polled with `waitpid(pid)`.
    static let noPidfdPollMs: Int64 = 50
    /// How soon the orphan reaper looks again when the first exited child it sees is a runner's
    /// (the kernel reports one at a time; that runner reaps its child within a loop turn).
    static let orphanRetryMs: Int64 = 10
    /// At most this many orphans reaped per loop turn, so a fork bomb of daemons cannot starve
    /// the runs; the rest are taken on the next turn (the loop is woken again at once).
    static let maxOrphansPerTurn = 256
    /// Read size, and the cap on what is drained from a stream after its process exited.
    static let readBufferBytes = 64 * 1024
    static let maxDrainAfterExit = 1 << 20
    /// At most this many reads of output (of ``readBufferBytes`` each) per loop turn, from the
    /// pipes' own epoll set (`outfd`), whose level-triggered ready list hands out the pipes in
    /// turn. Output that keeps coming (jobs writing at full speed) would otherwise fill every
    /// turn with one read of every pipe: each line is masked, logged and kept, so 50 such jobs
    /// made a turn of some 3 MiB, and the wake-up timer, the agent's steps and the spawn of a
    /// due job each waited for a whole turn (fires seconds late, D6 of the hostile probe). The
    /// rest stays in the pipes, which keeps the set readable: the next turn comes once the
    /// loop's other handlers and jobs have run.
    static let outputReadsPerTurn = 2
    /// Bounds on values from a ``LaunchSpec`` so deadline arithmetic cannot overflow (a
    /// timeout or grace longer than 100 years is treated as 100 years).
    static let maxDelayMs: Int64 = DurationParser.maximumMilliseconds

    /// The agent's cgroup sub-tree (``CgroupTree``), set up when the runner starts.
    let tree: CgroupTree
    /// How long a run's completion waits, after its main process exited, for the rest of its
    /// cgroup to die and the cgroup to be removed. SIGKILLed processes go within milliseconds;
    /// one stuck in the kernel (uninterruptible I/O) must not hold the run's end for ever.
    static let cleanupWaitMs: Int64 = 2000
    /// At most this many cgroups waiting for removal; beyond, the oldest is left in place.
    static let maxPendingCleanups = 4096

    private let epfd: Int32
    private let wakefd: Int32
    /// SIGCHLD's signalfd when reaping orphans, else -1.
    private let sigfd: Int32
    /// The output pipes' own epoll set, itself in `epfd`: read at most ``outputReadsPerTurn``
    /// pipes per turn, after the commands, exits and deadlines of that turn.
    private let outfd: Int32
    /// `epoll_wait`'s output for `outfd`, reused.
    private var outputTokens = [UInt64](repeating: 0, count: RunnerEngine.outputReadsPerTurn)
    /// Embedded only: the monotonic timerfd (in `epfd`) that stands for `epoll_wait`'s timeout.
    private let timerfd: Int32
    /// Embedded only: the loop serving `epfd`, and the registration, until the runner ends.
    private let host: EventLoop?
    private var hostRegistration: EventLoop.Registration?
    /// Whether the next turn first looks for exited orphans.
    private var lookForOrphans: Bool
    private var ended = false
    /// Embedded only: `epoll_wait`'s output, kept between turns (a turn is on the launch path).
    private var turnTokens = [UInt64](repeating: 0, count: 64)
    let reapsOrphans: Bool
    /// The posted commands, and whether the loop has ended (then nothing more is accepted).
    private let inbox = Mutex<(commands: [Command], closed: Bool)>(([], false))
    /// Whether some runner of this process already reaps orphans (only one may: there is one
    /// SIGCHLD disposition and one subreaper bit).
    private static let orphanReaperExists = Atomic<Bool>(false)
    let active = Mutex<Set<RunID>>([])
    /// Starts spawned by more than one thread so far (tests check the burst path ran).
    let burstSpawns = Atomic<Int>(0)

    /// Threads that spawn a burst (this loop's included): `SUNDIAL_SPAWN_THREADS`, else
    /// ``defaultSpawnThreads``. 1 spawns every start on the loop thread, one at a time.
    static let spawnThreads: Int = {
        if let v = getenv("SUNDIAL_SPAWN_THREADS").flatMap({ Int(String(cString: $0)) }), v >= 1 { return min(v, 16) }
        return defaultSpawnThreads
    }()
    /// Two spawning threads, or one on a single-processor machine. Measured on a 2-CPU machine
    /// with `sundial-bench runner-burst N` (median time until every pid is known, /bin/true):
    /// N=100: 32-34 ms with one thread, 27-28 ms with two; N=1000: 396-419 ms vs 334-352 ms.
    /// Three or four threads measured the same as two (within 3%, the noise): the CPUs are
    /// already busy with the spawns and the children's exec. Whether more threads help with
    /// more CPUs was not measured, so none are assumed; `SUNDIAL_SPAWN_THREADS` lets one try.
    static let defaultSpawnThreads = min(Int(sundial_cpu_count()), 2)

    private var runs: [RunID: ActiveRun] = [:]
    /// The secret automata of the runs alive now, by secret set (loop thread only): runs with
    /// the same secrets (a job under `concurrency: allow`, jobs sharing an `env_file`) share
    /// one rather than each building its own, about 21 bytes a secret byte. Weak: an automaton
    /// lives as long as a run that uses it, so the table holds no more than the runs do.
    private var automata: [[String]: WeakAutomaton] = [:]

    private struct WeakAutomaton {
        weak var value: SecretAutomaton?
    }

    /// The automaton masking `values` (``SecretAutomaton/init(secrets:)``), shared while alive.
    private func automaton(for values: [String]) -> SecretAutomaton? {
        guard !values.isEmpty else { return nil }
        if let a = automata[values]?.value { return a }
        automata = automata.filter { $0.value.value != nil }
        guard let a = SecretAutomaton(secrets: values) else { return nil }
        automata[values] = WeakAutomaton(value: a)
        return a
    }

    /// Secret automata shared now (tests).
    var sharedAutomataCount: Int { automata.values.filter { $0.value != nil }.count }
    /// Runs by their pidfd (the epoll token of their exit).
    private var byPidfd: [Int32: ActiveRun] = [:]
    /// Runs whose child has no pidfd: polled with `waitpid(pid)` every ``noPidfdPollMs``.
    private var polled: [Int32: ActiveRun] = [:]
    /// When the orphan reaper looks again after being blocked (`nil`: on the next SIGCHLD).
    private var orphanRetryAtMs: Int64?
    /// The `stop` callers waiting; set once a stop was asked for.
    private var stopWaiters: [CheckedContinuation<Void, Never>] = []
    private var stopping = false
    /// Cgroups of ended runs not yet removed, oldest first (see ``cleanUp()``).
    private var cleanups: [Cleanup] = []
    private var byFd: [Int32: (run: ActiveRun, stream: Int)] = [:]
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: RunnerEngine.readBufferBytes, alignment: 16)
    /// The consecutive starts being gathered into one burst (see ``processCommands()``), reused.
    private var burst: [(spec: LaunchSpec, handler: OutputHandler, continuation: CheckedContinuation<RunHandle, Never>)] = []
    private var burstIDs: Set<RunID> = []
    /// One slot per start of a burst, shared with the spawn helpers during
    /// `sundial_work_pool_run` (each slot is written by the one thread that claimed it); grown,
    /// never shrunk.
    private var slots = UnsafeMutablePointer<SpawnSlot>.allocate(capacity: 0)
    private var slotCapacity = 0
    /// The spawn helper threads, created with the first burst.
    private var spawnPool: OpaquePointer?

    init(tree: CgroupTree, reapsOrphans: Bool, loop host: EventLoop? = nil) throws(RunnerError) {
        self.tree = tree
        self.reapsOrphans = reapsOrphans
        self.host = host
        self.lookForOrphans = reapsOrphans
        _ = sundial_ensure_standard_fds()
        if reapsOrphans {
            guard Self.orphanReaperExists.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
                throw RunnerError("another runner of this process already reaps orphans (only one may)")
            }
        }
        let epfd = sundial_epoll_create()
        let outfd = sundial_epoll_create()
        let wakefd = sundial_eventfd()
        var chld = SIGCHLD
        let sigfd = reapsOrphans ? sundial_signalfd(&chld, 1) : -1
        let timerfd = host != nil ? sundial_monotonic_timerfd_create() : -1
        let creationErrno = errno
        func fail(_ message: String) -> RunnerError {
            for fd in [epfd, outfd, wakefd, sigfd, timerfd] where fd >= 0 { close(fd) }
            if reapsOrphans { Self.orphanReaperExists.store(false, ordering: .releasing) }
            return RunnerError(message)
        }
        guard epfd >= 0, outfd >= 0, wakefd >= 0, !reapsOrphans || sigfd >= 0, host == nil || timerfd >= 0 else {
            throw fail("cannot create the runner's descriptors: \(errnoText(creationErrno))")
        }
        guard sundial_epoll_add_readable(epfd, wakefd, UInt64(wakefd)) == 0,
            sundial_epoll_add_readable(epfd, outfd, UInt64(outfd)) == 0,
            sigfd < 0 || sundial_epoll_add_readable(epfd, sigfd, UInt64(sigfd)) == 0,
            timerfd < 0 || sundial_epoll_add_readable(epfd, timerfd, UInt64(timerfd)) == 0
        else {
            throw fail("cannot watch the runner's descriptors: \(errnoText(errno))")
        }
        if reapsOrphans {
            let rc = sundial_set_child_subreaper()
            if rc != 0 { throw fail("cannot become a child subreaper: \(errnoText(rc))") }
            // Whichever thread the kernel hands SIGCHLD to, the handler wakes the loop; if every
            // thread blocks SIGCHLD (the agent does, before starting threads), the signalfd does.
            let hrc = sundial_install_sigchld_handler(wakefd)
            if hrc != 0 { throw fail("cannot install the SIGCHLD handler: \(errnoText(hrc))") }
        }
        self.epfd = epfd
        self.outfd = outfd
        self.wakefd = wakefd
        self.sigfd = sigfd
        self.timerfd = timerfd
        do throws(RunnerError) {
            if let host {
                // The handler holds the engine until the runner ends (closeLoop removes it).
                guard let registration = host.add(epfd, { [self] in turn() }) else {
                    throw RunnerError("cannot join the event loop: \(errnoText(errno))")
                }
                hostRegistration = registration
                // The first turn looks for orphans (as a thread of its own does on starting).
                if reapsOrphans { sundial_eventfd_signal(wakefd) }
            } else {
                try startThread()
            }
        } catch {
            if reapsOrphans { _ = sundial_remove_sigchld_handler(wakefd) }
            throw fail(error.message)
        }
    }

    private func startThread() throws(RunnerError) {
        var tid = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(
            &tid, nil,
            { arg in
                let engine = Unmanaged<RunnerEngine>.fromOpaque(arg!).takeRetainedValue()
                engine.loop()
                return nil
            }, context)
        if rc != 0 {
            Unmanaged<RunnerEngine>.fromOpaque(context).release()
            throw RunnerError("cannot start the runner thread: \(errnoText(rc))")
        }
        pthread_detach(tid)
    }

    func post(_ command: Command) { post(contentsOf: [command]) }

    /// Posts several commands at once, so the loop takes them together (starts among them form
    /// one burst): lets tests build an exact burst. After the loop has ended, each command is
    /// answered at once (a start fails, a stop returns).
    ///
    /// The eventfd is signalled under the inbox lock: the loop closes it only after marking the
    /// inbox closed under the same lock, so a late post can never write to a closed (or reused)
    /// descriptor.
    func post(contentsOf commands: [Command]) {
        let accepted = inbox.withLock { inbox in
            guard !inbox.closed else { return false }
            inbox.commands.append(contentsOf: commands)
            sundial_eventfd_signal(wakefd)
            return true
        }
        if !accepted { for command in commands { Self.refuse(command) } }
    }

    /// Answers a command the ended loop will never see.
    private static func refuse(_ command: Command) {
        switch command {
        case let .start(spec, _, continuation):
            continuation.resume(returning: .failed(runID: spec.runID, reason: "the process runner has been stopped"))
        case .terminate: break
        case let .stop(continuation): continuation.resume()
        }
    }

    // MARK: - The loop

    private func loop() {
        _ = sundial_set_thread_name("sundial-runner")
        var chld = SIGCHLD
        _ = sundial_block_signals(&chld, 1)
        var tokens = [UInt64](repeating: 0, count: 64)
        while true {
            if lookForOrphans { reapOrphans() }
            lookForOrphans = false
            if stopping, runs.isEmpty, cleanups.isEmpty { break }
            let n = sundial_epoll_wait(epfd, &tokens, Int32(tokens.count), nextTimeoutMs())
            handle(tokens, count: n)
        }
        closeLoop()
    }

    /// One turn when embedded: called by the host loop whenever `epfd` is readable (one of the
    /// runner's descriptors is, the deadline timerfd included). Takes what is ready without
    /// waiting, then arms the timerfd for the next deadline; ends the runner once it is stopped
    /// and empty.
    private func turn() {
        guard !ended else { return }
        if lookForOrphans { reapOrphans() }
        lookForOrphans = false
        let n = sundial_epoll_wait(epfd, &turnTokens, Int32(turnTokens.count), 0)
        handle(turnTokens, count: n)
        if stopping, runs.isEmpty, cleanups.isEmpty {
            ended = true
            closeLoop()
            return
        }
        // Orphans still to look at (more than a turn's worth, or a retry due now): the next turn
        // comes at once, but after the host loop's other handlers (the wake-up timer, signals,
        // the control socket), which a flood of orphans must not hold up.
        _ = sundial_timerfd_arm_after(timerfd, lookForOrphans ? 0 : Int64(nextTimeoutMs()))
    }

    /// What one `epoll_wait` returned (`n` tokens, 0 on a timeout, negative on an error).
    private func handle(_ tokens: [UInt64], count n: Int32) {
        if n < 0, errno != EINTR, host == nil {
            // Should never happen; do not spin if it does.
            usleep(10_000)
        }
        // Only the deadline timer (embedded) counts as the timeout of a thread's own wait.
        var timedOut = n == 0
        var outputReady = false
        for i in 0..<max(0, Int(n)) {
            let fd = Int32(truncatingIfNeeded: tokens[i])
            if fd == wakefd {
                sundial_eventfd_drain(wakefd)
                // The SIGCHLD handler signals this eventfd too.
                if reapsOrphans { lookForOrphans = true }
                processCommands()
            } else if fd == sigfd {
                sundial_signalfd_drain(sigfd)
                lookForOrphans = true
            } else if fd == timerfd {
                sundial_eventfd_drain(timerfd)
                timedOut = n == 1
            } else if fd == outfd {
                outputReady = true
            } else if let run = byPidfd[fd] {
                reap(run)
            } else if let entry = byFd[fd] {
                readOnce(entry.run, stream: entry.stream)
            }
        }
        if !polled.isEmpty { for run in Array(polled.values) { reap(run) } }
        // A wake-up with nothing ready (the safety poll): look at every run's child anyway, so
        // a lost readiness could delay a run's end by ``safetyPollMs`` at most.
        if timedOut, !byPidfd.isEmpty { for run in Array(byPidfd.values) { reap(run) } }
        if let t = orphanRetryAtMs, sundial_monotonic_ms() >= t { lookForOrphans = true }
        if outputReady { readOutput() }
        fireTimers()
        cleanUp()
    }

    /// The end of the loop (every run reaped, every cgroup cleaned up): refuse what is posted
    /// from now on, give up the SIGCHLD handler and the subreaper role, close the descriptors.
    private func closeLoop() {
        let late = inbox.withLock { inbox in
            inbox.closed = true
            let taken = inbox.commands
            inbox.commands.removeAll()
            return taken
        }
        for command in late { Self.refuse(command) }
        if reapsOrphans {
            _ = sundial_remove_sigchld_handler(wakefd)
            _ = sundial_unset_child_subreaper()
            Self.orphanReaperExists.store(false, ordering: .releasing)
        }
        if let host, let hostRegistration {
            // On the host's thread (this is its handler): returns at once, and the handler (which
            // holds this engine) is dropped.
            host.remove(hostRegistration, fd: epfd)
            self.hostRegistration = nil
        }
        for fd in [epfd, outfd, wakefd, sigfd, timerfd] where fd >= 0 { close(fd) }
        sundial_work_pool_destroy(spawnPool)
        spawnPool = nil
        for waiter in stopWaiters { waiter.resume() }
        stopWaiters.removeAll()
    }

    deinit {
        buffer.deallocate()
        slots.deallocate()
    }

    private func nextTimeoutMs() -> Int32 {
        let now = sundial_monotonic_ms()
        var wait: Int64 = -1
        if let t = orphanRetryAtMs { wait = max(0, t - now) }
        guard !runs.isEmpty || !cleanups.isEmpty else { return Int32(clamping: wait) }
        wait = wait < 0 ? Self.safetyPollMs : min(wait, Self.safetyPollMs)
        if !polled.isEmpty { wait = min(wait, Self.noPidfdPollMs) }
        for c in cleanups { wait = min(wait, c.nextTryMs - now) }
        for run in runs.values {
            if let t = run.timeoutAt { wait = min(wait, t - now) }
            if let k = run.killAt { wait = min(wait, k - now) }
        }
        return Int32(max(0, wait))
    }

    /// Carries out the posted commands in order. Consecutive starts form a burst, spawned by
    /// ``launchBurst()`` before the next terminate (or a second start of the same run) is seen.
    private func processCommands() {
        let commands = inbox.withLock { inbox in
            let taken = inbox.commands
            inbox.commands.removeAll()
            return taken
        }
        for command in commands {
            switch command {
            case let .start(spec, _, continuation) where stopping:
                continuation.resume(returning: .failed(runID: spec.runID, reason: "the process runner is stopping"))
            case let .start(spec, handler, continuation):
                // A run started twice in one burst: the second sees the first's outcome, as it
                // would one at a time.
                if burstIDs.contains(spec.runID) { launchBurst() }
                burst.append((spec, handler, continuation))
                burstIDs.insert(spec.runID)
            case let .terminate(id, graceMs):
                launchBurst()
                if let id {
                    if let run = runs[id] { terminate(run, graceMs: graceMs, reason: .requested) }
                } else {
                    for run in runs.values { terminate(run, graceMs: graceMs, reason: .requested) }
                }
            case let .stop(continuation):
                launchBurst()
                stopping = true
                stopWaiters.append(continuation)
                for run in runs.values { terminate(run, graceMs: 0, reason: .requested) }
            }
        }
        launchBurst()
    }

    // MARK: - Launching

    /// Launches the gathered starts. One start is spawned right here, on the loop thread (no
    /// hand-off, so a lone job is not delayed). Several are spawned by this thread and the spawn
    /// helpers together, each taking the next start from a shared counter (posix_spawn blocks its
    /// caller until the child has exec'd; a second thread overlaps that wait with the next
    /// spawn), then registered here, in their order, once every spawn has returned.
    ///
    /// Why a child that exits at once cannot be missed: nothing reaps it but its pidfd (opened
    /// right after the spawn, while the child cannot have been reaped: no runner waits for
    /// another's children, and the orphan reaper skips registered children and reaps nothing
    /// while a spawn is in flight, see ``ChildRegistry``). A child that has already exited stays
    /// a zombie and its pidfd is readable as soon as it is in the epoll set. The helpers only
    /// ever wait for their own failed child, by its pid (`sundial_spawn`).
    private func launchBurst() {
        guard !burst.isEmpty else { return }
        defer {
            burst.removeAll(keepingCapacity: true)
            burstIDs.removeAll(keepingCapacity: true)
        }
        let n = burst.count
        guard n > 1, Self.spawnThreads > 1, let pool = spawnPoolCreated() else {
            for start in burst { start.continuation.resume(returning: launch(start.spec, start.handler)) }
            return
        }
        if n > slotCapacity {
            slots.deallocate()
            slotCapacity = max(n, 2 * slotCapacity)
            slots = .allocate(capacity: slotCapacity)
        }
        for (i, start) in burst.enumerated() {
            let duplicate = runs[start.spec.runID] != nil
            (slots + i).initialize(to: SpawnSlot(spec: start.spec, tree: tree, result: duplicate ? .failed(Self.duplicateReason(start.spec)) : nil))
        }
        // The helpers see only the slots, never this engine: the spawn phase touches per-start
        // state and nothing else.
        sundial_work_pool_run(
            pool, Int32(n),
            { context, index in
                let slot = context!.assumingMemoryBound(to: SpawnSlot.self) + Int(index)
                if slot.pointee.result == nil { slot.pointee.result = RunnerEngine.spawn(slot.pointee.spec, tree: slot.pointee.tree) }
            }, UnsafeMutableRawPointer(slots))
        for (i, start) in burst.enumerated() {
            let result = slots[i].result ?? .failed("internal error: start not spawned")
            start.continuation.resume(returning: register(start.spec, start.handler, result))
        }
        slots.deinitialize(count: n)
        burstSpawns.add(n, ordering: .relaxed)
    }

    private func spawnPoolCreated() -> OpaquePointer? {
        if spawnPool == nil { spawnPool = sundial_work_pool_create(Int32(Self.spawnThreads - 1), "sundial-spawn") }
        return spawnPool
    }

    private func launch(_ spec: LaunchSpec, _ handler: @escaping OutputHandler) -> RunHandle {
        guard runs[spec.runID] == nil else { return .failed(runID: spec.runID, reason: Self.duplicateReason(spec)) }
        return register(spec, handler, Self.spawn(spec, tree: tree))
    }

    private static func duplicateReason(_ spec: LaunchSpec) -> String {
        "run \(spec.runID) already has an active attempt"
    }

    /// The spawn phase of a launch: the run's cgroup and limits, the output pipes, the process,
    /// and closing the pipes' child ends. Touches nothing but its own descriptors and cgroup,
    /// so it runs on any spawning thread.
    ///
    /// A run whose cgroup cannot be made or entered still runs, with its process group only
    /// (as without cgroups): a scheduler that stops running jobs over a cgroup problem would be
    /// worse. Its handle then has no ``RunHandle/cgroupPath``, and a job with `limits:` learns
    /// why through ``RunHandle/limitsUnenforced``.
    static func spawn(_ spec: LaunchSpec, tree: CgroupTree) -> SpawnResult {
        var group: CgroupTree.RunGroup?
        var limitsNote: String?
        if spec.useCgroup, tree.runsDirectory != nil {
            switch tree.createRun(spec.runID, attempt: spec.attempt) {
            case let .success(g):
                group = g
                if !spec.limits.isEmpty { limitsNote = tree.apply(spec.limits, to: g.path) }
            case let .failure(why):
                limitsNote = why.reason
            }
        } else {
            limitsNote = spec.useCgroup ? (tree.problem ?? "no cgroup tree") : "cgroups are not used for this run"
        }
        if spec.limits.isEmpty { limitsNote = nil }
        var result: SpawnResult
        if let g = group {
            result = spawnProcess(spec, cgroupFD: g.fd)
            close(g.fd)
            if case let .failed(reason, stage) = result {
                _ = Cgroup.remove(g.path)
                group = nil
                if stage == SUNDIAL_STAGE_CGROUP.rawValue {
                    // Entering the cgroup failed: run without it (see above).
                    if !spec.limits.isEmpty { limitsNote = reason }
                    result = spawnProcess(spec, cgroupFD: -1)
                }
            }
        } else {
            result = spawnProcess(spec, cgroupFD: -1)
        }
        if case let .spawned(pid, pidfd, stdout, stderr, started, _, _) = result {
            return .spawned(pid: pid, pidfd: pidfd, stdout: stdout, stderr: stderr, startedAtMs: started, cgroup: group?.path, limitsNote: limitsNote)
        }
        return result
    }

    /// Pipes and process, in the cgroup `cgroupFD` when it is not -1.
    private static func spawnProcess(_ spec: LaunchSpec, cgroupFD: Int32) -> SpawnResult {
        var out: [Int32] = [-1, -1]
        var err: [Int32] = [-1, -1]
        var rc = sundial_output_pipe(&out)
        if rc == 0 {
            rc = sundial_output_pipe(&err)
            if rc != 0 {
                close(out[0])
                close(out[1])
            }
        }
        if rc != 0 { return .failed("cannot create output pipes: \(errnoText(rc))", stage: 0) }

        var pid: pid_t = 0
        var stage: Int32 = 0
        let argv = CStringArray(spec.arguments)
        let envp = CStringArray(spec.environmentStrings)
        let groups: [gid_t] = spec.credentials?.groups ?? []
        // Everything above was prepared ahead of a fire's instant; only the clone and the exec
        // are left for after it (``LaunchSpec/notBefore``).
        if let instant = spec.notBefore { holdUntil(unixMillis: instant.unixMillis, atMostMilliseconds: LaunchSpec.maximumHoldMs) }
        let started = sundial_monotonic_ms()
        ChildRegistry.shared.beginSpawn()
        rc = spec.executable.withCString { path in
            withOptionalCString(spec.workdir) { workdir in
                groups.withUnsafeBufferPointer { groupsPtr in
                    var req = sundial_spawn_request(
                        path: path, argv: argv.pointer, envp: envp.pointer, workdir: workdir,
                        stdout_fd: out[1], stderr_fd: err[1],
                        umask_value: spec.umask.map { Int32($0) } ?? -1,
                        uid: spec.credentials?.uid.map { Int64($0) } ?? -1,
                        gid: spec.credentials.map { Int64($0.gid) } ?? -1,
                        groups: groupsPtr.baseAddress, ngroups: Int32(groupsPtr.count), cgroup_fd: cgroupFD)
                    return sundial_spawn(&req, &pid, &stage)
                }
            }
        }
        ChildRegistry.shared.endSpawn(pid: rc == 0 ? pid : nil)
        close(out[1])
        close(err[1])
        if rc != 0 {
            close(out[0])
            close(err[0])
            return .failed(Self.spawnFailureReason(spec, errno: rc, stage: stage), stage: UInt32(stage))
        }
        // Safe by pid: registered, so nothing but this runner can reap it (and reuse its pid).
        let pidfd = sundial_pidfd_open(pid)
        return .spawned(pid: pid, pidfd: pidfd, stdout: out[0], stderr: err[0], startedAtMs: started, cgroup: nil, limitsNote: nil)
    }

    /// The registration phase of a launch, on the loop thread: the run's indexes, its pipes in
    /// epoll, the active set.
    private func register(_ spec: LaunchSpec, _ handler: @escaping OutputHandler, _ result: SpawnResult) -> RunHandle {
        guard case let .spawned(pid, pidfd, stdout, stderr, started, cgroup, limitsNote) = result else {
            if case let .failed(reason, _) = result { return .failed(runID: spec.runID, reason: reason) }
            return .failed(runID: spec.runID, reason: "internal error")
        }
        let run = ActiveRun(
            spec: spec, handler: handler, pid: pid, pidfd: pidfd, startedAtMs: started, fds: [stdout, stderr], cgroup: cgroup,
            secrets: automaton(for: spec.secretValues))
        if let t = spec.timeoutMs { run.timeoutAt = started + min(max(0, t), Self.maxDelayMs) }
        runs[spec.runID] = run
        if pidfd >= 0, sundial_epoll_add_readable(epfd, pidfd, UInt64(pidfd)) == 0 {
            byPidfd[pidfd] = run
        } else {
            polled[pid] = run
        }
        for (i, fd) in run.fds.enumerated() {
            byFd[fd] = (run, i)
            _ = sundial_epoll_add_readable(outfd, fd, UInt64(fd))
        }
        active.withLock { _ = $0.insert(spec.runID) }
        return RunHandle(
            runID: spec.runID, pid: pid, cgroupPath: cgroup, limitsUnenforced: limitsNote, startedAtMs: started, promise: run.promise)
    }

    static func spawnFailureReason(_ spec: LaunchSpec, errno e: Int32, stage: Int32) -> String {
        let exe = spec.executable
        switch UInt32(stage) {
        case SUNDIAL_STAGE_CHDIR.rawValue:
            return "cannot enter workdir '\(spec.workdir ?? "")': \(errnoText(e))"
        case SUNDIAL_STAGE_CREDENTIALS.rawValue:
            let who = spec.credentials?.userName ?? spec.credentials.map { "gid \($0.gid)" } ?? "?"
            return "cannot switch to \(who): \(errnoText(e))"
        case SUNDIAL_STAGE_STDIO.rawValue:
            return "cannot set up standard input and output: \(errnoText(e))"
        case SUNDIAL_STAGE_CGROUP.rawValue:
            return "cannot start the run in its cgroup: \(errnoText(e))"
        default:
            let place = spec.workdir.map { " (in workdir '\($0)')" } ?? ""
            switch e {
            case ENOENT: return "command not found: \(exe)\(place): \(errnoText(e))"
            case EACCES: return "not executable: \(exe)\(place): permission denied"
            case ENOEXEC: return "not executable: \(exe): exec format error (not a binary; a script needs a #! line)"
            default: return "cannot start \(exe)\(place): \(errnoText(e))"
            }
        }
    }

    // MARK: - Output

    /// One read from each of at most ``outputReadsPerTurn`` readable pipes: those the kernel
    /// hands out first, which it then moves to the back of the set's ready list, so every
    /// pipe gets its turn however many are readable.
    private func readOutput() {
        let n = sundial_epoll_wait(outfd, &outputTokens, Int32(outputTokens.count), 0)
        for i in 0..<max(0, Int(n)) {
            if let entry = byFd[Int32(truncatingIfNeeded: outputTokens[i])] { readOnce(entry.run, stream: entry.stream) }
        }
    }

    private func readOnce(_ run: ActiveRun, stream: Int) {
        let fd = run.fds[stream]
        guard fd >= 0 else { return }
        let n = read(fd, buffer.baseAddress, buffer.count)
        if n > 0 {
            run.consume(stream: stream, UnsafeRawBufferPointer(rebasing: buffer[..<n]))
        } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
            closeStream(run, stream: stream)
        }
    }

    private func closeStream(_ run: ActiveRun, stream: Int) {
        let fd = run.fds[stream]
        guard fd >= 0 else { return }
        _ = sundial_epoll_remove(outfd, fd)
        close(fd)
        byFd[fd] = nil
        run.fds[stream] = -1
        run.finishStream(stream)
    }

    /// After the main process exits: take what is already in the pipe (bounded, since a
    /// daemonised grandchild may still hold the pipe and write forever), then close it. Lines a
    /// straggler writes later are not the run's output.
    private func drainAndClose(_ run: ActiveRun) {
        for stream in 0..<2 where run.fds[stream] >= 0 {
            var drained = 0
            while drained < Self.maxDrainAfterExit {
                let n = read(run.fds[stream], buffer.baseAddress, buffer.count)
                if n > 0 {
                    run.consume(stream: stream, UnsafeRawBufferPointer(rebasing: buffer[..<n]))
                    drained += n
                } else if n < 0, errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            closeStream(run, stream: stream)
        }
    }

    // MARK: - Reaping and timers

    /// Reaps `run`'s child if it has exited: through its pidfd (only that child), or by its
    /// pid without one. ECHILD (some other code reaped it, against the rules) ends the run as
    /// killed by an unknown signal rather than leaving it active for ever.
    private func reap(_ run: ActiveRun) {
        var status: Int32 = 0
        let rc = run.pidfd >= 0 ? sundial_pidfd_reap(run.pidfd, &status) : sundial_pid_reap(run.pid, &status)
        if rc == 0 || (rc < 0 && errno != ECHILD) { return }
        if rc < 0 { status = 0x7f }  // decodes as neither exited nor signalled
        if run.pidfd >= 0 {
            _ = sundial_epoll_remove(epfd, run.pidfd)
            byPidfd[run.pidfd] = nil
            close(run.pidfd)
        }
        polled[run.pid] = nil
        ChildRegistry.shared.release(run.pid)
        finish(run, status: status)
    }

    /// Reaps re-parented orphans (``ChildRegistry/reapOneOrphan()``), at most
    /// ``maxOrphansPerTurn`` per turn; when a runner's child hides the rest, looks again after
    /// ``orphanRetryMs``.
    private func reapOrphans() {
        orphanRetryAtMs = nil
        for _ in 0..<Self.maxOrphansPerTurn {
            switch ChildRegistry.shared.reapOneOrphan() {
            case .none: return
            case .reaped: continue
            case .blocked:
                orphanRetryAtMs = sundial_monotonic_ms() + Self.orphanRetryMs
                return
            }
        }
        orphanRetryAtMs = sundial_monotonic_ms()
    }

    private func finish(_ run: ActiveRun, status: Int32) {
        if run.reason != nil {
            // It was being stopped: stragglers in its group (children that ignored SIGTERM)
            // go now, while the group id cannot yet have been reused.
            kill(-run.pid, SIGKILL)
        }
        // The run ends with its main process; whatever it left in its cgroup (a daemonised
        // child, a `setsid` one) would be an unsupervised job, so it is killed now, stopped or
        // not (as systemd does when a oneshot service's main process exits).
        if let cg = run.cgroup, Cgroup.isPopulated(cg) != false { Cgroup.kill(cg) }
        drainAndClose(run)
        runs[run.spec.runID] = nil
        active.withLock { _ = $0.remove(run.spec.runID) }
        let durationMs = sundial_monotonic_ms() - run.startedAtMs
        var value: Int32 = 0
        let kind = sundial_decode_status(status, &value)
        let exitCode: Int32? = kind == 1 ? value : nil
        let signal: Int32? = kind == 2 ? value : nil
        let outcome: RunOutcome
        switch run.reason {
        case .timeout?: outcome = .timeout
        case .requested?: outcome = .interrupted
        case nil:
            if let exitCode {
                outcome = run.spec.successExitCodes.contains(exitCode) ? .success(exitCode: exitCode) : .failure(exitCode: exitCode)
            } else {
                outcome = .signal(signal ?? 0)
            }
        }
        let completion = RunCompletion(
            runID: run.spec.runID, pid: run.pid, outcome: outcome, exitCode: exitCode, signal: signal,
            durationMs: durationMs, outputBytes: run.acceptedBytes, droppedBytes: run.droppedBytes,
            truncatedLines: run.truncatedLines, cgroupPath: run.cgroup)
        guard let cg = run.cgroup else { return run.promise.fulfill(completion) }
        // Delivered once the cgroup is gone (at once, usually), so that when the agent sees the
        // run end, none of its processes is left.
        let now = sundial_monotonic_ms()
        cleanups.append(
            Cleanup(
                path: cg, promise: run.promise, completion: completion,
                deadlineMs: now + Self.cleanupWaitMs, nextTryMs: now, delayMs: 5))
        if cleanups.count > Self.maxPendingCleanups {
            let dropped = cleanups.removeFirst()
            if let c = dropped.completion { dropped.promise.fulfill(c) }
        }
        cleanUp()
    }

    /// Removes the cgroups of ended runs once empty (`cgroup.events`: `populated 0`), killing
    /// again whatever is still in them (a process that forked past a `cgroup.procs` kill), and
    /// delivers each completion when its cgroup is gone or ``cleanupWaitMs`` has passed. Tries
    /// every 5 ms at first, backing off to once a second.
    private func cleanUp() {
        guard !cleanups.isEmpty else { return }
        let now = sundial_monotonic_ms()
        var kept: [Cleanup] = []
        for var c in cleanups {
            guard now >= c.nextTryMs else {
                kept.append(c)
                continue
            }
            var done = false
            if Cgroup.isPopulated(c.path) == true {
                Cgroup.kill(c.path)
            } else {
                let e = Cgroup.remove(c.path)
                // EBUSY: a process arrived or is still leaving; anything else (ENOENT: gone,
                // EACCES...) cannot be fixed by trying again.
                done = e != EBUSY
            }
            if done || now >= c.deadlineMs, let completion = c.completion {
                c.promise.fulfill(completion)
                c.completion = nil
            }
            if !done {
                c.delayMs = min(c.delayMs * 2, Self.safetyPollMs)
                c.nextTryMs = now + c.delayMs
                kept.append(c)
            }
        }
        cleanups = kept
    }

    /// Stops a run: SIGTERM to its process group and, with a cgroup, to every process in it
    /// (so a `setsid` child can clean up too); SIGKILL to all of them after `graceMs`.
    private func terminate(_ run: ActiveRun, graceMs: Int64, reason: ActiveRun.StopReason) {
        let now = sundial_monotonic_ms()
        // Asked to stop before (a timeout, `replace`, a lost lease, then the agent's stop, or
        // the agent's stop sent again once the launch was known): the process has its SIGTERM.
        // A second one reads as "exit now, skip the clean-up" to many programs; only the kill
        // deadline may come closer.
        let alreadyAsked = run.reason != nil
        if run.reason == nil { run.reason = reason }
        run.timeoutAt = nil
        if graceMs <= 0 {
            kill(-run.pid, SIGKILL)
            if let cg = run.cgroup { Cgroup.kill(cg) }
            run.killAt = nil
        } else {
            if !alreadyAsked {
                kill(-run.pid, SIGTERM)
                // The group has its SIGTERM; the cgroup's other processes (a daemon that left the
                // group with setsid) get theirs.
                if let cg = run.cgroup { Cgroup.signalAll(cg, SIGTERM, sparing: run.pid) }
            }
            run.killAt = min(run.killAt ?? Int64.max, now + min(graceMs, Self.maxDelayMs))
        }
    }

    private func fireTimers() {
        guard !runs.isEmpty else { return }
        let now = sundial_monotonic_ms()
        for run in runs.values {
            if let t = run.timeoutAt, now >= t {
                terminate(run, graceMs: run.spec.killGraceMs, reason: .timeout)
            }
            if let k = run.killAt, now >= k {
                kill(-run.pid, SIGKILL)
                if let cg = run.cgroup { Cgroup.kill(cg) }
                run.killAt = nil
            }
        }
    }
}

/// What the spawn phase of one launch produced.
enum SpawnResult {
    /// `cgroup`: the run's cgroup directory; `limitsNote`: why its limits are not enforced.
    /// `pidfd`: the child's pidfd, -1 on a kernel without `pidfd_open` (then polled by pid).
    case spawned(pid: Int32, pidfd: Int32, stdout: Int32, stderr: Int32, startedAtMs: Int64, cgroup: String?, limitsNote: String?)
    /// `stage`: a `sundial_spawn_stage` (0 when not from the spawn itself).
    case failed(String, stage: UInt32)

    static func failed(_ reason: String) -> SpawnResult { .failed(reason, stage: 0) }
}

/// One start of a burst: its spec and the runner's cgroup tree (read) and its result (written
/// by the thread that spawned it).
struct SpawnSlot {
    let spec: LaunchSpec
    let tree: CgroupTree
    var result: SpawnResult?
}

/// An ended run's cgroup waiting to be removed, and the completion held until then (`nil` once
/// delivered).
struct Cleanup {
    let path: String
    let promise: OneShot<RunCompletion>
    var completion: RunCompletion?
    let deadlineMs: Int64
    var nextTryMs: Int64
    var delayMs: Int64
}

/// One attempt in flight. A class so the loop's three indexes share it; loop-thread only.
final class ActiveRun {
    enum StopReason { case timeout, requested }
    /// The largest `max_line_bytes` honoured (16 MiB).
    static let maxLineBytesCap = 16 << 20

    let spec: LaunchSpec
    let handler: OutputHandler
    let pid: Int32
    /// The child's pidfd (-1: none, polled by pid); closed once reaped.
    let pidfd: Int32
    let startedAtMs: Int64
    /// The run's cgroup directory, `nil` when it has only its process group.
    let cgroup: String?
    let promise = OneShot<RunCompletion>()
    var fds: [Int32]
    var timeoutAt: Int64?
    var killAt: Int64?
    var reason: StopReason?
    private var assemblers: [OutputAssembler]
    private var budget: Int
    private var cutForBudget = [false, false]
    private(set) var acceptedBytes = 0
    private(set) var droppedBytes = 0
    var truncatedLines: Int { assemblers[0].truncatedLines + assemblers[1].truncatedLines }

    init(
        spec: LaunchSpec, handler: @escaping OutputHandler, pid: Int32, pidfd: Int32, startedAtMs: Int64, fds: [Int32], cgroup: String?,
        secrets: SecretAutomaton?
    ) {
        self.spec = spec
        self.pidfd = pidfd
        self.cgroup = cgroup
        self.handler = handler
        self.pid = pid
        self.startedAtMs = startedAtMs
        self.fds = fds
        // A line is held in memory until its newline: bound it whatever the spec says.
        let lineLimit = min(max(1, spec.output.maxLineBytes), ActiveRun.maxLineBytesCap)
        // Secrets are masked on each stream before it is cut into lines (SecretStreamMasker),
        // with one automaton for both streams (the engine's, shared with other runs).
        assemblers = [
            OutputAssembler(maxLineBytes: lineLimit, secrets: secrets),
            OutputAssembler(maxLineBytes: lineLimit, secrets: secrets),
        ]
        budget = max(0, spec.output.maxBytes)
    }

    /// Accepts bytes of `stream` up to the run's `max_bytes`; the rest is counted and dropped.
    func consume(stream: Int, _ bytes: UnsafeRawBufferPointer) {
        let take = min(bytes.count, budget)
        let kind: OutputLine.Stream = stream == 0 ? .stdout : .stderr
        let runID = spec.runID
        let handler = self.handler
        let emit: (UnsafeRawBufferPointer, Bool) -> Void = { line, truncated in
            handler(OutputLine(runID: runID, stream: kind, text: String(decoding: line, as: UTF8.self), truncated: truncated))
        }
        if take > 0 {
            assemblers[stream].feed(UnsafeRawBufferPointer(rebasing: bytes[..<take]), emit)
            budget -= take
            acceptedBytes += take
        }
        if take < bytes.count {
            droppedBytes += bytes.count - take
            if !cutForBudget[stream] {
                cutForBudget[stream] = true
                assemblers[stream].cutPending(emit)
            }
        }
    }

    func finishStream(_ stream: Int) {
        let kind: OutputLine.Stream = stream == 0 ? .stdout : .stderr
        let runID = spec.runID
        let handler = self.handler
        assemblers[stream].finish { line, truncated in
            handler(OutputLine(runID: runID, stream: kind, text: String(decoding: line, as: UTF8.self), truncated: truncated))
        }
    }
}

/// A NULL-terminated `char *[]` that frees its strings: built before spawning, so the forked
/// child never allocates.
final class CStringArray {
    let pointer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    private let count: Int

    init(_ strings: [String]) {
        count = strings.count
        pointer = .allocate(capacity: strings.count + 1)
        for (i, s) in strings.enumerated() { pointer[i] = strdup(s) }
        pointer[strings.count] = nil
    }

    deinit {
        for i in 0..<count { free(pointer[i]) }
        pointer.deallocate()
    }
}

func withOptionalCString<R>(_ s: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let s else { return body(nil) }
    return s.withCString { body($0) }
}

/// Sleeps until the wall clock reads `unixMillis`, for at most `maximumMs` (measured on the
/// monotonic clock, so a clock step cannot stretch it): `sundial_hold_until_ms` in timer.c.
/// Here rather than in ``SystemClock`` so that one file of the module imports the shim's time
/// functions (a second import makes the release build attribute `timespec` to the shim).
func holdUntil(unixMillis: Int64, atMostMilliseconds maximumMs: Int64) {
    _ = sundial_hold_until_ms(unixMillis, maximumMs)
}
