import SundialCore
import Synchronization

/// Lets threads (timer, signals, watchers) reach the agent once it exists, in order, without
/// ever losing an input that matters and without an unbounded queue.
///
/// Why coalescing rather than a bounded queue whose producers wait: the producers are the wake
/// timer, the signal thread and the file watchers, whose own loops must keep running (a timer
/// thread blocked on a full queue would stop noticing clock changes), and every input they
/// send is idempotent while it waits: two pending wakes are one tick (the scheduler handles
/// everything due), two clock changes are one step check, two reloads are one load (the agent
/// coalesces reloads itself), and a second shutdown or fatal is ignored by the agent once the
/// first is seen. So the inbox holds at most one pending input of each ``Input`` kind, in
/// arrival order (at most five entries): a duplicate of a kind already waiting is dropped,
/// the first one's reason kept. Nothing else is ever dropped; the old `.bufferingNewest(4096)`
/// stream dropped the *oldest* inputs under a flood, which could be the shutdown.
///
/// Inputs that are not idempotent (a run's launch and end, triggers) never come through here:
/// their producers `await` the agent's actor directly, one call per run in flight, so they are
/// bounded by back-pressure (the producing task waits for the actor) and by the runs active.
/// ``Input`` is a separate type so that the compiler keeps it so.
final class AgentRef: Sendable {
    /// What a thread may send the agent (a subset of ``Agent/Input``, all idempotent while pending).
    enum Input: Sendable {
        case wake, clockChanged
        case reload(reason: String)
        case shutdown(signal: String)
        case fatal(reason: String)

        var agentInput: Agent.Input {
            switch self {
            case .wake: .wake
            case .clockChanged: .clockChanged
            case let .reload(reason): .reload(reason: reason)
            case let .shutdown(signal): .shutdown(signal: signal)
            case let .fatal(reason): .fatal(reason: reason)
            }
        }

        /// Inputs of the same kind coalesce while pending.
        var kind: Int {
            switch self {
            case .wake: 0
            case .clockChanged: 1
            case .reload: 2
            case .shutdown: 3
            case .fatal: 4
            }
        }
    }

    private struct State: Sendable {
        /// Pending inputs in arrival order, at most one per kind.
        var pending: [Input] = []
        /// The consumer, suspended while nothing is pending.
        var waiter: CheckedContinuation<Void, Never>?
        var coalesced = 0
        /// ``close()`` was called: the consumer ends once the pending inputs are handed over.
        var closed = false
    }

    private let state = Mutex(State())
    private let agent = Mutex<Agent?>(nil)

    init() {}

    /// Starts handing the pending inputs (and every later one) to `a`, in order.
    func set(_ a: Agent) {
        agent.withLock { $0 = a }
        // On the agent's loop, when it has one: a wake from the loop's timer handler then
        // reaches the agent on the same thread (issue 16).
        Task(executorPreference: a.loop) { [self] in
            while let input = await next() { await a.deliver(input.agentInput) }
        }
    }

    /// Queues `input` for the agent; never blocks, never grows past one entry per kind.
    func deliver(_ input: Input) {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.pending.contains(where: { $0.kind == input.kind }) {
                s.coalesced += 1
            } else {
                s.pending.append(input)
            }
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume()
    }

    /// Inputs merged into one of the same kind already pending (tests).
    var coalescedCount: Int { state.withLock { $0.coalesced } }

    /// Ends the consumer task (and its hold on the agent) once what is pending is delivered.
    func close() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.closed = true
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume()
    }

    /// The oldest pending input, waiting for one if there is none; `nil` once closed and drained.
    func next() async -> Input? {
        while true {
            let (input, closed) = state.withLock { s in (s.pending.isEmpty ? nil : s.pending.removeFirst(), s.closed) }
            if let input { return input }
            if closed { return nil }
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { s -> Bool in
                    if !s.pending.isEmpty || s.closed { return true }
                    s.waiter = c
                    return false
                }
                if ready { c.resume() }
            }
        }
    }

    func log(_ record: LogRecord) {
        guard let a = agent.withLock({ $0 }) else { return }
        Task { await a.emit(record) }
    }
}
