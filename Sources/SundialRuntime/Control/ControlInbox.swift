import CSundialShim
import Synchronization

/// What reaches the control server's loop thread from elsewhere: the agent's replies (its
/// handler runs as a Swift task) and the request to stop, each followed by a signal on
/// ``wakeFD`` (an eventfd the loop polls).
///
/// Bounded: at most ``maxInFlight`` handler tasks may be outstanding, counting tasks whose
/// connection timed out or closed (their late replies are dropped by the loop), so a handler
/// that never answers cannot make the loop start tasks without limit.
final class ControlInbox: Sendable {
    struct Reply: Sendable {
        var connection: UInt64
        var serial: UInt64
        /// Whether the reply is followed by a stream (``ControlResponse/startsStream``).
        var startsStream: Bool
        /// The response encoded, by the handler's task: a `logs` reply is megabytes of JSON, and
        /// encoding it on the loop thread held up everything else the loop serves. (The decoded
        /// response is not kept beside it.)
        var line: [UInt8]
    }

    private struct State {
        var replies: [Reply] = []
        var inFlight = 0
        var stopping = false
        /// False once the loop has ended and ``wakeFD`` may be closed: nothing signals it then.
        var open = true
    }

    let wakeFD: Int32
    let maxInFlight: Int
    private let state = Mutex(State())
    /// Connections held by the loop (``ControlServer/activeClients``).
    let clients = Atomic<Int>(0)

    init(wakeFD: Int32, maxInFlight: Int) {
        self.wakeFD = wakeFD
        self.maxInFlight = max(1, maxInFlight)
    }

    /// Reserves room for one more handler task; false when ``maxInFlight`` are outstanding.
    func begin() -> Bool {
        state.withLock { s in
            guard s.inFlight < maxInFlight else { return false }
            s.inFlight += 1
            return true
        }
    }

    /// A handler task's answer (every task begun posts exactly once).
    func post(_ reply: Reply) {
        state.withLock { s in
            s.inFlight -= 1
            guard s.open, !s.stopping else { return }
            s.replies.append(reply)
            sundial_eventfd_signal(wakeFD)
        }
    }

    /// A stream has lines for the loop (``ControlStream``): wake it (an eventfd write, cheap and
    /// never blocking: the counter just grows until the loop drains it).
    func wake() {
        state.withLock { s in
            guard s.open, !s.stopping else { return }
            sundial_eventfd_signal(wakeFD)
        }
    }

    func requestStop() {
        state.withLock { s in
            guard s.open else { return }
            s.stopping = true
            sundial_eventfd_signal(wakeFD)
        }
    }

    /// The replies posted since the last call, and whether to stop.
    func take() -> (replies: [Reply], stopping: Bool) {
        state.withLock { s in
            defer { s.replies.removeAll() }
            return (s.replies, s.stopping)
        }
    }

    /// Called once the loop has ended, before ``wakeFD`` is closed.
    func close() {
        state.withLock {
            $0.open = false
            $0.replies.removeAll()
        }
    }
}
