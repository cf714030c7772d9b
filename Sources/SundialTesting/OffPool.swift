import CSundialShim
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` on a thread that is not one of Swift concurrency's cooperative threads, in the
/// calling task (so `#expect` and the test's task-locals work inside), and returns or throws
/// what it did.
///
/// Why: tests run in parallel as tasks on the cooperative pool, which has one thread per CPU
/// (two on the CI machine). A test that blocks a pool thread (`waitpid`, `poll`, a blocking
/// `read`, a sleep between probes, a lock retried with `usleep`) or computes for seconds (a
/// simulated fleet, a million lines) keeps every other test's tasks waiting, and the servers
/// under test answer from tasks too: a neighbour's 5 s deadline then expires without anything
/// being wrong. On a thread of its own the work is shared out by the kernel instead, and the
/// pool stays free for the tasks that only need it for a moment.
///
/// The task runs with a ``TestThreads`` as its executor preference for the duration of `body`.
public func offPool<T, E: Error>(_ body: () throws(E) -> T) async throws(E) -> T {
    try await withTaskExecutorPreference(TestThreads()) { () async throws(E) -> T in try body() }
}

/// A task executor for test code that may block: every job runs at once on a thread of a
/// shared set (``TestThreads/Workers``), never queued behind a blocked one. One instance per
/// test (``OffPoolTrait``) or per ``offPool(_:)`` call; the threads are shared, so that a test
/// awaiting holds none and threads are reused rather than created and ended per test (thread
/// creation and exit take the process's memory-map lock, and hundreds of them a second stalled
/// every thread's page faults). Never linked into the agent, whose own pool (`GlobalExecutor`)
/// is fixed-size on purpose.
public final class TestThreads: TaskExecutor, @unchecked Sendable {
    /// What `/proc/self/task/*/comm` shows for these threads.
    public static let threadName = "test-offpool"

    public init() {}

    /// Threads that exist now (idle or running a job), for tests.
    public static var threadCount: Int { Workers.shared.live.load(ordering: .relaxed) }

    public func enqueue(_ job: consuming ExecutorJob) {
        Workers.shared.run(UnownedJob(job), on: self)
    }

    /// The shared threads: a stack of idle ones, each with a job slot and a semaphore. An
    /// enqueue pops one and fills its slot; with none idle, the job waits in `pending` for the
    /// next thread to finish its job, or for a thread that the spawner thread creates when
    /// none makes progress (not the caller of `enqueue`: that is often a cooperative thread
    /// resuming a test, and `clone` under load is slow). A thread idle for 10 s ends. The lock
    /// is a plain pthread mutex held for a push or a pop.
    final class Workers: @unchecked Sendable {
        static let shared = Workers()

        typealias Item = (job: UnownedJob, executor: TestThreads)

        final class Worker: @unchecked Sendable {
            var item: Item?
            let ready = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
            init() { sem_init(ready, 0, 0) }
            deinit {
                sem_destroy(ready)
                ready.deallocate()
            }
        }

        private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        private var idle: [Worker] = []
        private var pending: [Item] = []
        private var spawnerAwake = false
        /// Jobs started so far: the spawner's measure of progress.
        private let started = Atomic<Int>(0)
        private let spawnWake = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
        private var spawnerStarted = false
        let live = Atomic<Int>(0)

        private init() {
            pthread_mutex_init(lock, nil)
            sem_init(spawnWake, 0, 0)
        }

        private func locked<T>(_ body: () -> T) -> T {
            pthread_mutex_lock(lock)
            defer { pthread_mutex_unlock(lock) }
            return body()
        }

        func run(_ job: UnownedJob, on executor: TestThreads) {
            enum Then {
                case handed(Worker)
                case wakeSpawner, startSpawner, none
            }
            let then = locked { () -> Then in
                if let w = idle.popLast() {
                    w.item = (job, executor)
                    return .handed(w)
                }
                pending.append((job, executor))
                if spawnerAwake { return .none }
                spawnerAwake = true
                if !spawnerStarted {
                    spawnerStarted = true
                    return .startSpawner
                }
                return .wakeSpawner
            }
            switch then {
            case let .handed(w):
                sem_post(w.ready)
            case .wakeSpawner:
                sem_post(spawnWake)
            case .startSpawner:
                if !Self.detached(name: "test-spawner", { [self] in spawnLoop() }) {
                    // No spawner: run what waits here (slower, never stuck).
                    locked {
                        spawnerStarted = false
                        spawnerAwake = false
                    }
                    drainHere()
                    return
                }
                sem_post(spawnWake)
            case .none:
                break
            }
        }

        private func drainHere() {
            while let item = locked({ pending.isEmpty ? nil : pending.removeFirst() }) {
                item.job.runSynchronously(on: item.executor.asUnownedTaskExecutor())
            }
        }

        /// Adds threads while jobs wait and none has started for a millisecond: every thread is
        /// busy or blocked. Growing only then (as libdispatch's overcommit does, faster) keeps
        /// a burst of short jobs (the suite's start) on a few threads, while a job behind
        /// blocked ones still gets a thread of its own within about a millisecond.
        private func spawnLoop() {
            while true {
                while sem_wait(spawnWake) != 0 {}
                var seen = started.load(ordering: .relaxed)
                var grow = live.load(ordering: .relaxed) == 0
                while true {
                    if grow {
                        live.add(1, ordering: .relaxed)
                        if !Self.detached(name: TestThreads.threadName, { [self] in workerLoop() }) {
                            live.subtract(1, ordering: .relaxed)
                            drainHere()
                        }
                    }
                    usleep(1000)
                    let waiting = locked { () -> Bool in
                        if pending.isEmpty { spawnerAwake = false }
                        return !pending.isEmpty
                    }
                    guard waiting else { break }
                    let now = started.load(ordering: .relaxed)
                    grow = now == seen || live.load(ordering: .relaxed) == 0
                    seen = now
                }
            }
        }

        private func workerLoop() {
            defer { live.subtract(1, ordering: .relaxed) }
            let me = Worker()
            while true {
                // The next job: a pending one, or park and wait for one to be handed over.
                let next = locked { () -> Item? in
                    if !pending.isEmpty { return pending.removeFirst() }
                    idle.append(me)
                    return nil
                }
                if let next {
                    started.add(1, ordering: .relaxed)
                    next.job.runSynchronously(on: next.executor.asUnownedTaskExecutor())
                    continue
                }
                var deadline = timespec()
                clock_gettime(CLOCK_REALTIME, &deadline)
                deadline.tv_sec += 10
                var waited = sem_timedwait(me.ready, &deadline)
                while waited != 0 {
                    if errno != ETIMEDOUT {
                        waited = sem_timedwait(me.ready, &deadline)
                        continue
                    }  // EINTR
                    // Idle for 10 s: end, unless a job was handed over meanwhile (then its
                    // post is on the way).
                    let left = locked { () -> Bool in
                        guard let i = idle.firstIndex(where: { $0 === me }) else { return false }
                        idle.remove(at: i)
                        return true
                    }
                    if left { return }
                    while sem_wait(me.ready) != 0 {}
                    waited = 0
                }
                if let item = me.item {
                    me.item = nil
                    started.add(1, ordering: .relaxed)
                    item.job.runSynchronously(on: item.executor.asUnownedTaskExecutor())
                }
            }
        }

        private final class Box: @unchecked Sendable {
            let run: () -> Void
            init(_ run: @escaping () -> Void) { self.run = run }
        }

        /// A detached pthread with an 8 MiB stack, as a pool thread has (deep-recursion tests
        /// need it).
        private static func detached(name: String, _ body: @escaping () -> Void) -> Bool {
            var attr = pthread_attr_t()
            pthread_attr_init(&attr)
            defer { pthread_attr_destroy(&attr) }
            pthread_attr_setstacksize(&attr, 8 << 20)
            pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
            let box = Unmanaged.passRetained(
                Box {
                    _ = sundial_set_thread_name(name)
                    body()
                })
            var tid = pthread_t()
            let rc = pthread_create(
                &tid, &attr,
                { raw in
                    Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().run()
                    return nil
                }, box.toOpaque())
            if rc != 0 { box.release() }
            return rc == 0
        }
    }
}

/// `@Suite(.offPool)` or `@Test(.offPool)`: the whole test body runs as by ``offPool(_:)``, on
/// ``TestThreads``, and at most ``TestSlots/width`` tests run at once (a test with a time limit
/// waits for a slot at most a quarter of it, ``longestSlotWait(for:)``). Every suite of this
/// package carries it, so that no test holds a cooperative thread (those are left to the code
/// under test: the servers' handlers, the agent's tasks, which must not queue behind tests),
/// and so that a parallel run does not start the whole suite at once: with every test
/// started together, hundreds of threads, child processes and forks of this large process
/// (each holding its memory-map lock while it copies the page tables) stalled everything, the
/// servers' threads included, for many seconds.
public struct OffPoolTrait: TestTrait, SuiteTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?,
        performing function: @Sendable () async throws -> Void
    ) async throws {
        // Only test cases take a slot: a suite holding one while its tests wait for theirs
        // could use them all up.
        guard testCase != nil else {
            try await withTaskExecutorPreference(TestThreads()) { try await function() }
            return
        }
        let slot = await TestSlots.shared.acquire(waitingAtMost: Self.longestSlotWait(for: test))
        defer { TestSlots.shared.release(slot) }
        try await withTaskExecutorPreference(TestThreads()) { try await function() }
    }

    /// How long a test case may wait for a slot: a quarter of its `.timeLimit`, none without
    /// one. swift-testing starts a test's time limit before its scope traits, so the wait here
    /// counts against it: queued behind the long tests of a loaded parallel run,
    /// `AgentRefFloodTests` (a 3 s body) waited 26 s for a slot, and over 60 s when CPU hogs ran
    /// beside it. After that wait it runs beside the others, over the width.
    public static func longestSlotWait(for test: Test) -> Duration? {
        test.traits.compactMap { ($0 as? TimeLimitTrait)?.timeLimit }.min().map { $0 / 4 }
    }
}

extension Trait where Self == OffPoolTrait {
    /// See ``OffPoolTrait``.
    public static var offPool: OffPoolTrait { OffPoolTrait() }
}

/// How many tests run at once: `SUNDIAL_TEST_WIDTH`, or 4 per CPU and at least 8 (most tests
/// wait on processes, sockets and timers rather than compute).
public final class TestSlots: Sendable {
    public static let shared = TestSlots(width: TestSlots.defaultWidth)

    public static var defaultWidth: Int {
        if let v = getenv("SUNDIAL_TEST_WIDTH"), let n = Int(String(cString: v)), n > 0 { return n }
        return max(8, 4 * Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// What ``acquire(waitingAtMost:)`` got, to give back to ``release(_:)``.
    public enum Slot: Sendable, Hashable {
        /// One of the `width` slots.
        case held
        /// None: the longest wait passed first, so the test runs over the width.
        case beyondWidth
    }

    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Slot, Never>
    }

    public let width: Int
    private let state: Mutex<(free: Int, waiters: [Waiter], nextID: UInt64)>

    public init(width: Int) {
        self.width = width
        state = Mutex((width, [], 0))
    }

    /// Slots free now, and tests waiting for one (tests).
    public var free: Int { state.withLock { $0.free } }
    public var waiting: Int { state.withLock { $0.waiters.count } }

    /// Waits (holding no thread) for a free slot, in arrival order; with `longest`, at most
    /// that long, then returns `.beyondWidth`.
    public func acquire(waitingAtMost longest: Duration? = nil) async -> Slot {
        var timer: Task<Void, Never>?
        let slot = await withCheckedContinuation { (c: CheckedContinuation<Slot, Never>) in
            let id = state.withLock { s -> UInt64? in
                if s.free > 0 {
                    s.free -= 1
                    return nil
                }
                s.nextID += 1
                s.waiters.append(Waiter(id: s.nextID, continuation: c))
                return s.nextID
            }
            guard let id else { return c.resume(returning: .held) }
            if let longest {
                timer = Task { [self] in
                    try? await Task.sleep(for: longest)
                    stopWaiting(id)
                }
            }
        }
        timer?.cancel()
        return slot
    }

    /// Lets waiter `id` go without a slot, unless it has one already.
    private func stopWaiting(_ id: UInt64) {
        let waiter = state.withLock { s -> Waiter? in
            guard let i = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return s.waiters.remove(at: i)
        }
        waiter?.continuation.resume(returning: .beyondWidth)
    }

    /// Hands a held slot to the longest waiter, or frees it.
    public func release(_ slot: Slot) {
        guard slot == .held else { return }
        let next = state.withLock { s -> Waiter? in
            if s.waiters.isEmpty {
                s.free += 1
                return nil
            }
            return s.waiters.removeFirst()
        }
        next?.continuation.resume(returning: .held)
    }
}
