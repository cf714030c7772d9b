import CSundialShim
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One thread in `epoll_wait` that calls a handler when one of its descriptors is readable: the
/// agent's wake-up timerfd, its signalfd and the state directory's inotify share it, where each
/// had a thread of its own (issue 16; sd-event and NIOPosix are the models).
///
/// The loop never times out: with nothing readable it sleeps in the kernel, so an idle agent
/// is not woken. Handlers run on the loop's thread, one at a time, and must be short (read the
/// descriptor, hand the news to the agent); a slow one delays the others.
///
/// The loop is also an executor (``SerialExecutor`` and ``TaskExecutor``): the agent's actor
/// runs on it, and so do the tasks that launch its runs (but those of `user:`, `group:` and
/// `env_file` jobs, whose preparation may block: ``Agent``), so a wake-up goes from the timerfd to
/// the scheduler's decision, the state commit and the spawn on this one thread, without
/// handing over to another (issue 16: each hand-over cost a wake-up of another thread). Jobs
/// run between batches of descriptor events, in the order they were enqueued; a job enqueued
/// from another thread wakes the loop through its eventfd, one enqueued on the loop's own
/// thread costs no system call. Jobs must not block for long, as handlers must not: what
/// waits (a configuration load, a fleet query) runs on threads of its own.
///
/// Ownership: a descriptor stays its owner's, who closes it in its `deinit`. A registration's
/// handler holds its owner strongly, so the owner (and the descriptor) outlives any call in
/// progress; ``remove(_:)`` drops the handler, which breaks that cycle. Handlers are found by a
/// registration number carried in the epoll event, never by descriptor number, so an event for
/// a descriptor removed (and its number reused) in the meantime reaches nobody.
public final class EventLoop: Sendable {
    public struct StartError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// A registration, for ``remove(_:)``.
    public struct Registration: Hashable, Sendable {
        fileprivate let id: UInt64
    }

    private struct State: ~Copyable {
        var handlers: [UInt64: @Sendable () -> Void] = [:]
        var nextID: UInt64 = 1
        var thread: JoinableThread?
        var stopping = false
        /// The registration whose handler the loop is calling now.
        var running: UInt64?
        /// The loop's thread while it is in `run`, kept after ``stop()`` (which clears `thread`)
        /// until `run` returns: a handler still running then must be recognised as being on the
        /// loop.
        var loopThread: pthread_t?
        /// A loop run by its creator (``runOnCurrentThread()``) is in `run` now.
        var runningOnCaller = false
        /// Executor jobs waiting for the loop, in order.
        var jobs: [UnownedJob] = []
    }

    private let epollFD: Int32
    private let wakeFD: Int32
    private let state = Mutex(State())
    /// Registration number of the wake eventfd (not a handler: it only interrupts the wait).
    private static let wakeID: UInt64 = 0

    /// Creates the loop and starts its thread, `name` as shown by `top -H`; with `startsThread`
    /// false there is no thread: the creator runs the loop with ``runOnCurrentThread()``. The
    /// agent does that with its main thread, which would otherwise only wait for the process
    /// to end (one thread fewer, issue 16).
    public init(name: String = "sundial-loop", startsThread: Bool = true) throws(StartError) {
        let e = sundial_epoll_create()
        guard e >= 0 else { throw StartError(description: "epoll_create1: \(String(cString: strerror(errno)))") }
        let w = sundial_eventfd()
        guard w >= 0 else {
            close(e)
            throw StartError(description: "eventfd: \(String(cString: strerror(errno)))")
        }
        epollFD = e
        wakeFD = w
        guard sundial_epoll_add_readable(e, w, Self.wakeID) == 0 else {
            close(e)
            close(w)
            throw StartError(description: "epoll_ctl: \(String(cString: strerror(errno)))")
        }
        guard startsThread else { return }
        guard let thread = JoinableThread(name: name, { [self] in run() }) else {
            close(e)
            close(w)
            throw StartError(description: "no thread for the event loop: \(String(cString: strerror(errno)))")
        }
        state.withLock {
            $0.thread = thread
            $0.loopThread = thread.id
        }
    }

    /// The loop's thread while it runs (tests aim signals at it).
    var thread: pthread_t? { state.withLock { $0.thread?.id } }

    deinit {
        close(epollFD)
        close(wakeFD)
    }

    /// Calls `handler` on the loop's thread whenever `fd` is readable (level-triggered: a
    /// handler that leaves data unread is called again).
    /// - Returns: nil, with `errno` set, when the kernel refuses the descriptor or the loop is
    ///   stopping.
    public func add(_ fd: Int32, _ handler: @escaping @Sendable () -> Void) -> Registration? {
        let id: UInt64? = state.withLock { s in
            guard !s.stopping else { return nil }
            let id = s.nextID
            s.nextID += 1
            s.handlers[id] = handler
            return id
        }
        guard let id else {
            errno = ECANCELED
            return nil
        }
        let rc = sundial_epoll_add_readable(epollFD, fd, id)
        guard rc == 0 else {
            _ = state.withLock { $0.handlers.removeValue(forKey: id) }
            errno = rc
            return nil
        }
        return Registration(id: id)
    }

    /// Stops calling the registration's handler and stops watching `fd`. Idempotent. Called
    /// from another thread, it returns only once a call of that handler in progress has ended,
    /// so the owner may then close `fd` and release what the handler used; called from a
    /// handler (on the loop's thread), it returns at once.
    public func remove(_ registration: Registration, fd: Int32) {
        _ = state.withLock { $0.handlers.removeValue(forKey: registration.id) }
        _ = sundial_epoll_remove(epollFD, fd)
        if let t = state.withLock({ $0.loopThread }), pthread_equal(t, pthread_self()) != 0 { return }
        // Handlers are short (a read, a hand-over): wait in small steps rather than add a
        // condition variable to every call.
        var pause = timespec(tv_sec: 0, tv_nsec: 100_000)
        while state.withLock({ $0.running == registration.id }) { nanosleep(&pause, nil) }
    }

    /// Ends the loop and waits for its thread (unless called from a handler, when the loop
    /// ends after that handler returns). Handlers are dropped. Idempotent.
    public func stop() {
        let (first, thread): (Bool, JoinableThread?) = state.withLock { s in
            guard !s.stopping else { return (false, nil) }
            s.stopping = true
            s.handlers.removeAll()
            defer { s.thread = nil }
            return (true, s.thread)
        }
        guard first else { return }
        sundial_eventfd_signal(wakeFD)
        if let thread {
            if thread.isCurrent { thread.detach() } else { thread.join() }
            return
        }
        // Run by its creator: wait (off the loop's thread) until `runOnCurrentThread` returns,
        // so no handler runs once `stop` has returned, as with a thread of its own.
        if let t = state.withLock({ $0.loopThread }), pthread_equal(t, pthread_self()) != 0 { return }
        var pause = timespec(tv_sec: 0, tv_nsec: 100_000)
        while state.withLock({ $0.runningOnCaller }) { nanosleep(&pause, nil) }
    }

    /// Runs the loop on the calling thread until ``stop()``, for a loop created with
    /// `startsThread: false`. Blocks every signal on this thread, as the loop's own thread
    /// does (they are read from a signalfd). Returns at once when the loop was stopped already
    /// or is run elsewhere.
    public func runOnCurrentThread() {
        let mayRun = state.withLock { s in
            guard !s.stopping, s.thread == nil, s.loopThread == nil else { return false }
            s.loopThread = pthread_self()
            s.runningOnCaller = true
            return true
        }
        guard mayRun else { return }
        run()
        state.withLock { $0.runningOnCaller = false }
    }

    /// The loop's thread has left `run` for good: it no longer counts as the loop's (glibc
    /// reuses a joined thread's handle for the next thread it creates, which must not pass
    /// ``checkIsolated()`` or skip the waits meant for other threads).
    private func forgetLoopThread() {
        state.withLock { s in
            if let t = s.loopThread, pthread_equal(t, pthread_self()) != 0 { s.loopThread = nil }
        }
    }

    private func run() {
        // Signals are read from the signalfd, never delivered to this thread.
        var all = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_BLOCK, &all, nil)
        let capacity = 16
        let tokens = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity)
        defer {
            tokens.deallocate()
            forgetLoopThread()
        }
        var batch: [UnownedJob] = []
        while true {
            // Jobs first, one batch (those enqueued meanwhile wait for the next turn, after the
            // descriptors have been looked at, so a job that keeps re-enqueueing itself cannot
            // starve them); with more waiting, the wait below only polls.
            let more = runJobs(&batch)
            let n = sundial_epoll_wait(epollFD, tokens, Int32(capacity), more ? 0 : -1)
            if n < 0 {
                if errno == EINTR { continue }
                return  // EBADF/EINVAL: nothing sensible left to do
            }
            for i in 0..<Int(n) {
                let id = tokens[i]
                if id == Self.wakeID {
                    sundial_eventfd_drain(wakeFD)
                    if state.withLock({ $0.stopping }) { return }
                    continue
                }
                // Looked up per event: a handler earlier in this batch may have removed it.
                guard
                    let handler = state.withLock({ s -> (@Sendable () -> Void)? in
                        guard let h = s.handlers[id] else { return nil }
                        s.running = id
                        return h
                    })
                else { continue }
                handler()
                state.withLock { $0.running = nil }
            }
        }
    }

    /// Runs the jobs enqueued so far; returns whether more were enqueued meanwhile.
    private func runJobs(_ batch: inout [UnownedJob]) -> Bool {
        state.withLock { swap(&$0.jobs, &batch) }
        guard !batch.isEmpty else { return false }
        let serial = asUnownedSerialExecutor()
        let task = asUnownedTaskExecutor()
        for job in batch { job.runSynchronously(isolatedTo: serial, taskExecutor: task) }
        batch.removeAll(keepingCapacity: true)
        return state.withLock { !$0.jobs.isEmpty }
    }

    /// Executor jobs waiting for the loop now (tests order jobs with it).
    var queuedJobs: Int { state.withLock { $0.jobs.count } }

    /// Whether the caller runs on the loop's thread.
    var inLoopThread: Bool {
        guard let t = state.withLock({ $0.loopThread }) else { return false }
        return pthread_equal(t, pthread_self()) != 0
    }
}

extension EventLoop: SerialExecutor, TaskExecutor {
    /// Queues `job` for the loop's thread. Jobs enqueued after the loop has stopped never run
    /// (the agent's services stop the loop last, once nothing is left to run on it).
    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let wake = state.withLock { s -> Bool in
            let wasEmpty = s.jobs.isEmpty
            s.jobs.append(unowned)
            // The loop's own thread looks at the queue before it sleeps; a non-empty queue has
            // been signalled already.
            guard wasEmpty else { return false }
            guard let t = s.loopThread else { return true }
            return pthread_equal(t, pthread_self()) == 0
        }
        if wake { sundial_eventfd_signal(wakeFD) }
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }

    public func asUnownedTaskExecutor() -> UnownedTaskExecutor { UnownedTaskExecutor(ordinary: self) }

    public func checkIsolated() {
        precondition(inLoopThread, "not on the event loop's thread")
    }
}
