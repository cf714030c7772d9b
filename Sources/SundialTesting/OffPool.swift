#if canImport(Glibc)
import Glibc
#endif
import CSundialShim
import Synchronization

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
/// The task runs with ``TestThreads/shared`` as its executor preference for the duration of
/// `body`; child tasks it starts go there too (each job on a free thread, never queued behind a
/// blocked one).
public func offPool<T, E: Error>(_ body: () throws(E) -> T) async throws(E) -> T {
    try await withTaskExecutorPreference(TestThreads.shared) { () async throws(E) -> T in try body() }
}

/// A task executor for work that may block: every job runs at once, on an idle thread of this
/// executor or a new one (threads idle for a few seconds end). Never linked into the agent,
/// whose own pool (`GlobalExecutor`) is fixed-size on purpose.
public final class TestThreads: TaskExecutor, @unchecked Sendable {
    public static let shared = TestThreads()
    /// What `/proc/self/task/*/comm` shows for these threads.
    public static let threadName = "test-offpool"

    private struct State {
        var queue: [UnownedJob] = []
        var idle = 0
        var threads = 0
    }

    // A pthread mutex and condition (not `Mutex`): idle threads wait on the condition with a
    // timeout, under the same lock as the queue.
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var state = State()

    private init() {
        pthread_mutex_init(lock, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(wake, &attr)
        pthread_condattr_destroy(&attr)
    }

    /// Threads that exist now (idle or running a job), for tests of this executor.
    public var threadCount: Int {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return state.threads
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        pthread_mutex_lock(lock)
        state.queue.append(job)
        // An idle thread for every queued job, or one more thread.
        let spawn = state.idle < state.queue.count
        if spawn { state.threads += 1 } else { pthread_cond_signal(wake) }
        pthread_mutex_unlock(lock)
        if spawn, !startThread() {
            // No thread to be had: run a job here rather than leave it (slower, never stuck).
            pthread_mutex_lock(lock)
            state.threads -= 1
            let next = state.queue.isEmpty ? nil : state.queue.removeFirst()
            pthread_mutex_unlock(lock)
            next?.runSynchronously(on: asUnownedTaskExecutor())
        }
    }

    private func loop() {
        pthread_mutex_lock(lock)
        while true {
            if !state.queue.isEmpty {
                let job = state.queue.removeFirst()
                pthread_mutex_unlock(lock)
                job.runSynchronously(on: asUnownedTaskExecutor())
                pthread_mutex_lock(lock)
                continue
            }
            state.idle += 1
            var deadline = timespec()
            clock_gettime(CLOCK_MONOTONIC, &deadline)
            deadline.tv_sec += 5
            let rc = pthread_cond_timedwait(wake, lock, &deadline)
            state.idle -= 1
            if rc == ETIMEDOUT, state.queue.isEmpty {
                state.threads -= 1
                pthread_mutex_unlock(lock)
                return
            }
        }
    }

    private final class Box: @unchecked Sendable {
        let executor: TestThreads
        init(_ executor: TestThreads) { self.executor = executor }
    }

    /// A detached pthread with an 8 MiB stack, as a pool thread has (deep-recursion tests
    /// need it).
    private func startThread() -> Bool {
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        defer { pthread_attr_destroy(&attr) }
        pthread_attr_setstacksize(&attr, 8 << 20)
        pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
        let box = Unmanaged.passRetained(Box(self))
        var tid = pthread_t()
        let rc = pthread_create(&tid, &attr, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            _ = sundial_set_thread_name(TestThreads.threadName)
            box.executor.loop()
            return nil
        }, box.toOpaque())
        if rc != 0 { box.release() }
        return rc == 0
    }
}
