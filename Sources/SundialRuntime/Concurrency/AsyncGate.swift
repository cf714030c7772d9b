import Synchronization

/// At most `permits` tasks past ``enter()`` at once; the others wait in order, suspended (no
/// thread held). Hand-written: the packages in reach offer no async semaphore (swift-async-
/// algorithms has none), and this is twenty lines.
///
/// A waiter is not removed when its task is cancelled: it waits for its turn and then sees
/// `Task.isCancelled` (the control server's reading requests do), which keeps the gate simple
/// and the order fair. Every ``enter()`` must be followed by one ``leave()``.
final class AsyncGate: Sendable {
    private struct State {
        var free: Int
        /// Bounded by its callers (the control server: at most its in-flight requests).
        var waiting: [CheckedContinuation<Void, Never>] = []
    }
    private let state: Mutex<State>

    init(permits: Int) { state = Mutex(State(free: max(1, permits))) }

    func enter() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.free > 0 {
                    s.free -= 1
                    return true
                }
                s.waiting.append(c)
                return false
            }
            if now { c.resume() }
        }
    }

    func leave() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if !s.waiting.isEmpty { return s.waiting.removeFirst() }
            s.free += 1
            return nil
        }
        next?.resume()
    }

    /// Callers admitted by ``admit(atMost:)`` and not yet ``dismiss()``ed: counted when
    /// admitted, before their tasks reach ``enter()``.
    private let admitted = Atomic<Int>(0)

    /// Admits one more caller unless `limit` are admitted already.
    func admit(atMost limit: Int) -> Bool {
        var current = admitted.load(ordering: .acquiring)
        while current < limit {
            let (exchanged, original) = admitted.compareExchange(
                expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// An admitted caller is done.
    func dismiss() { admitted.subtract(1, ordering: .acquiringAndReleasing) }
}
