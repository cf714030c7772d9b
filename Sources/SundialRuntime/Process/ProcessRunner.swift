import CSundialShim
import SundialCore
import Synchronization

/// Starts jobs' processes, streams their output, enforces timeouts and reaps its children.
///
/// An instance, owned by whoever creates it: the agent host creates one for `sundial run`,
/// each test its own, and several live side by side in one process. Each reaps only its own
/// children, through a pidfd per child, so it never takes the exit status of a child started by
/// something else (another runner, a test harness's `posix_spawn`). All mutable state lives on
/// one dedicated thread running an epoll loop over the jobs' pipes and pidfds and an eventfd for
/// commands; the async methods here only post commands to it. ``shutdown()`` ends it; a runner
/// dropped without it keeps its thread and descriptors (its runs may still be reporting), so
/// whoever creates one stops it.
///
/// With `reapsOrphans` (the real agent only, at most one per process) the process also becomes
/// a child subreaper, so a job's daemonised grandchildren re-parent to the agent rather than to
/// init, and this runner's loop reaps them, never a pid some runner owns (``ChildRegistry``).
///
/// Memory is bounded whatever jobs print: one 64 KiB read buffer for all runs, and per stream at
/// most `output.max_line_bytes + 1` bytes of pending line (and, with `secrets`, the longest
/// secret's length − 1 bytes held back by ``SecretStreamMasker``).
public final class ProcessRunner: Sendable {
    let engine: RunnerEngine

    /// Starts a runner (its descriptors, and its thread unless `loop` serves it).
    ///
    /// - Parameters:
    ///   - reapsOrphans: make the process a child subreaper and reap re-parented orphans (for
    ///     `sundial run`; a test process must not, it would take the harness's children).
    ///   - cgroupTree: the cgroup sub-tree runs are contained in; `nil`: this process's, set up
    ///     once per process (``CgroupTree/forThisProcess()``).
    ///   - loop: the event loop whose thread serves the runner (the agent's); `nil`: a thread of
    ///     its own (`sundial-runner`). The runner leaves the loop when ``shutdown()`` ends.
    /// - Throws: ``RunnerError`` if the kernel refuses an epoll or eventfd (or, with
    ///   `reapsOrphans`, the subreaper role or SIGCHLD's signalfd), or another runner of this
    ///   process already reaps orphans.
    public init(reapsOrphans: Bool = false, cgroupTree: CgroupTree? = nil, loop: EventLoop? = nil) throws(RunnerError) {
        engine = try RunnerEngine(tree: cgroupTree ?? CgroupTree.processTree, reapsOrphans: reapsOrphans, loop: loop)
    }

    /// Stops the runner: kills every active run (SIGKILL to its group and cgroup), waits until
    /// each is reaped and its completion delivered, then ends the thread and closes the
    /// descriptors (and, with `reapsOrphans`, gives up the subreaper role). Starts after this
    /// fail with a launch failure; calling it again returns at once.
    public func shutdown() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in engine.post(.stop(c)) }
    }

    /// Launches one attempt. Returns once the process exists (``RunHandle/pid`` set) or the
    /// launch failed (``RunHandle/pid`` `nil`, and the completion is already
    /// ``RunOutcome/launchFailed(reason:)``). Never throws: a launch failure is a result.
    ///
    /// - Parameter onOutput: receives each output line as it comes; see ``OutputHandler``.
    public func start(_ spec: LaunchSpec, onOutput: @escaping OutputHandler) async -> RunHandle {
        await withCheckedContinuation { (c: CheckedContinuation<RunHandle, Never>) in
            engine.post(.start(spec, onOutput, c))
        }
    }

    /// Builds the ``LaunchSpec`` of `job` (see ``LaunchSpec/init(job:runID:attempt:context:)``)
    /// and starts it; a spec that cannot be built gives a failed handle with its message.
    public func start(
        job: JobSpec, runID: RunID, attempt: Int, context: LaunchContext = .current,
        onOutput: @escaping OutputHandler
    ) async -> RunHandle {
        let spec: LaunchSpec
        do throws(LaunchError) {
            spec = try LaunchSpec(job: job, runID: runID, attempt: attempt, context: context)
        } catch {
            return RunHandle.failed(runID: runID, reason: error.message)
        }
        return await start(spec, onOutput: onOutput)
    }

    /// Stops a run (for `concurrency: replace` and shutdown): SIGTERM to its process group and
    /// every process of its cgroup, SIGKILL to all of them (`cgroup.kill`) after `grace` (at
    /// once if `grace` is zero). Its outcome is
    /// ``RunOutcome/interrupted`` unless it had already timed out. Unknown or finished runs are
    /// ignored. Returns at once; await the run's ``RunHandle/completion()``.
    public func terminate(_ runID: RunID, grace: Duration) {
        engine.post(.terminate(runID, graceMs: Self.graceMs(grace)))
    }

    /// ``terminate(_:grace:)`` for every active run (shutdown, design §2).
    public func terminateAll(grace: Duration) {
        engine.post(.terminate(nil, graceMs: Self.graceMs(grace)))
    }

    private static func graceMs(_ d: Duration) -> Int64 {
        d.components.seconds >= DurationParser.maximumMilliseconds / 1000 ? DurationParser.maximumMilliseconds : max(0, d.milliseconds)
    }

    /// How many threads spawn a burst of starts (see ``RunnerEngine``): set by the environment
    /// variable `SUNDIAL_SPAWN_THREADS` (1: one start at a time, on the runner's thread), else 2
    /// (1 on a single-CPU machine). For benchmarks and diagnostics.
    public static var spawnThreads: Int { RunnerEngine.spawnThreads }

    /// Whether this runner reaps re-parented orphans (see ``init(reapsOrphans:cgroupTree:)``).
    public var reapsOrphans: Bool { engine.reapsOrphans }

    /// The cgroup v2 sub-tree the runs are contained in (``CgroupTree/runsDirectory`` `nil`:
    /// none, and ``CgroupTree/problem`` says why).
    public var cgroupTree: CgroupTree { engine.tree }

    /// The runs whose process has not been reaped yet.
    public var activeRunIDs: Set<RunID> { engine.active.withLock { $0 } }
}

/// The runner could not be set up (the kernel refused a descriptor it needs).
public struct RunnerError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension RunHandle {
    static func failed(runID: RunID, reason: String) -> RunHandle {
        RunHandle(runID: runID, pid: nil, promise: OneShot(RunCompletion(runID: runID, pid: nil, outcome: .launchFailed(reason: reason))))
    }
}
