import Synchronization

/// A value delivered once, awaited by any number of tasks: how the runner's thread hands a
/// run's end to async code without owning a task per run.
final class OneShot<Value: Sendable>: Sendable {
    private struct State: ~Copyable {
        var value: Value?
        var waiters: [CheckedContinuation<Value, Never>] = []
    }

    private let state = Mutex(State(value: nil))

    init() {}

    init(_ value: Value) { state.withLock { $0.value = value } }

    /// Delivers `value`; later calls are ignored.
    func fulfill(_ value: Value) {
        let waiters: [CheckedContinuation<Value, Never>] = state.withLock { s in
            guard s.value == nil else { return [] }
            s.value = value
            let w = s.waiters
            s.waiters = []
            return w
        }
        for w in waiters { w.resume(returning: value) }
    }

    func peek() -> Value? { state.withLock { $0.value } }

    func value() async -> Value {
        await withCheckedContinuation { (c: CheckedContinuation<Value, Never>) in
            let ready: Value? = state.withLock { s in
                if let v = s.value { return v }
                s.waiters.append(c)
                return nil
            }
            if let ready { c.resume(returning: ready) }
        }
    }
}
