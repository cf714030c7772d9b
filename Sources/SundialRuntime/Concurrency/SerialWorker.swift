import CSundialShim
import Dispatch

#if canImport(Glibc)
import Glibc
#endif

/// A serial queue of closures, some delayed, run on a named thread that exists only while there
/// is work.
///
/// Replaces a `DispatchQueue` for the state store's batched commits and checkpoints: any
/// `async` on a dispatch queue starts libdispatch's thread pool, whose monitor then wakes the
/// process every second forever (see ``GlobalExecutor``). This worker's thread waits with a
/// timeout only for a delayed closure that is due, and exits once nothing is queued, so an idle
/// agent has no such thread at all. Closures run one at a time, in submission order (delayed
/// ones in deadline order, when due).
final class SerialWorker: @unchecked Sendable {
    private struct Delayed {
        var deadlineNs: UInt64
        var seq: UInt64
        var work: @Sendable () -> Void
    }

    private let name: String
    // `@unchecked Sendable`: every field below is touched only with `mutex` held.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>
    private var ready: [@Sendable () -> Void] = []
    private var readyHead = 0
    private var delayed: [Delayed] = []
    private var seq: UInt64 = 0
    private var threadRunning = false

    init(name: String) {
        self.name = name
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        cond = .allocate(capacity: 1)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    /// Runs `work` after everything submitted before it.
    func async(_ work: @escaping @Sendable () -> Void) {
        locked {
            ready.append(work)
            wakeLocked()
        }
    }

    /// Runs `work` once `milliseconds` have passed (monotonic time), in turn.
    ///
    /// - Returns: `false` when no thread could be started (the kernel refused one: a cgroup's
    ///   `pids.max`, say); `work` is then dropped and will not run, and the caller must do
    ///   without the delay.
    @discardableResult
    func asyncAfter(milliseconds: Int64, _ work: @escaping @Sendable () -> Void) -> Bool {
        let deadline = Self.monotonicNs() &+ UInt64(max(0, milliseconds)) &* 1_000_000
        return locked {
            seq &+= 1
            let item = Delayed(deadlineNs: deadline, seq: seq, work: work)
            let at = delayed.firstIndex { ($0.deadlineNs, $0.seq) > (item.deadlineNs, item.seq) } ?? delayed.endIndex
            delayed.insert(item, at: at)
            if wakeLocked() { return true }
            delayed.removeAll { $0.seq == item.seq }
            return false
        }
    }

    /// Waits until every closure submitted with ``async(_:)`` before this call has run (not the
    /// delayed ones that are not due yet), as `DispatchQueue.sync {}` does. Must not be called
    /// from a closure of this worker.
    func sync() {
        let done = DispatchSemaphore(value: 0)
        async { done.signal() }
        done.wait()
    }

    // MARK: - The thread

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    /// Wakes the thread, or starts it (mutex held). Returns whether a thread runs.
    @discardableResult
    private func wakeLocked() -> Bool {
        if threadRunning {
            pthread_cond_signal(cond)
            return true
        }
        threadRunning = true
        let started = DetachedThread.run(name) { [self] in loop() }
        if !started {
            // No thread to be had (out of resources): run what is ready here, on the caller.
            // Rare and slow beats lost commits. (Delayed work cannot be waiting: the thread
            // ends only when there is none, and `asyncAfter` takes back what it cannot start.)
            threadRunning = false
            let work = ready[readyHead...]
            ready.removeAll()
            readyHead = 0
            pthread_mutex_unlock(mutex)
            for w in work { w() }
            pthread_mutex_lock(mutex)
        }
        return started
    }

    private func loop() {
        pthread_mutex_lock(mutex)
        while true {
            if let first = delayed.first, first.deadlineNs <= Self.monotonicNs() {
                delayed.removeFirst()
                ready.append(first.work)
            }
            if readyHead < ready.count {
                let work = ready[readyHead]
                readyHead += 1
                if readyHead == ready.count {
                    ready.removeAll(keepingCapacity: true)
                    readyHead = 0
                }
                pthread_mutex_unlock(mutex)
                work()
                pthread_mutex_lock(mutex)
                continue
            }
            guard let next = delayed.first else { break }
            var ts = timespec(tv_sec: Int(next.deadlineNs / 1_000_000_000), tv_nsec: Int(next.deadlineNs % 1_000_000_000))
            _ = pthread_cond_timedwait(cond, mutex, &ts)
        }
        threadRunning = false
        pthread_mutex_unlock(mutex)
    }

    private static func monotonicNs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
