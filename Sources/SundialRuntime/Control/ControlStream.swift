import SundialCore
import Synchronization

/// The agent's side of one streaming control connection (`trigger --wait`, `--follow`,
/// `logs -f`): a bounded queue of encoded ``ControlStreamMessage`` lines that the agent fills
/// from any thread and the control server's loop drains into the socket.
///
/// Bounded so a client can never slow the agent: ``send(_:)`` takes a lock for a copy and never
/// waits for the socket. When a client reads slower than the run writes and the queue would
/// exceed its byte limit, the queue is thrown away and the stream is marked overflowed: the
/// loop then sends one ``ControlStreamMessage/dropped(reason:)`` line and closes the
/// connection (the client says why and exits). A closed stream (the client left, or the server
/// stopped) refuses further messages, and its publisher forgets it (``isOpen``).
public final class ControlStream: Sendable {
    /// The default queue limit: a few thousand typical lines, far more than a client that reads
    /// at all falls behind by, small enough that 128 stalled clients cannot bloat the agent.
    public static let defaultMaxQueuedBytes = 256 * 1024

    struct Drained {
        var bytes: [UInt8]
        /// The agent has sent its last message (the end of the run): close once `bytes` are out.
        var finished: Bool
        var overflowed: Bool
    }

    private struct State {
        var queue: [UInt8] = []
        var finished = false
        var overflowed = false
        var closed = false
    }

    public let maxQueuedBytes: Int
    private let state = Mutex(State())
    private let wake: @Sendable () -> Void

    /// - Parameter wake: tells the server's loop that there is something to drain.
    public init(maxQueuedBytes: Int = ControlStream.defaultMaxQueuedBytes, wake: @escaping @Sendable () -> Void) {
        self.maxQueuedBytes = max(1024, maxQueuedBytes)
        self.wake = wake
    }

    /// Queues `message`; false when the stream no longer takes messages (finished, overflowed
    /// or closed).
    @discardableResult
    public func send(_ message: ControlStreamMessage) -> Bool {
        enqueue(message.line, finishing: false)
    }

    /// Queues `message` as the last one: the connection closes once it is sent.
    public func finish(with message: ControlStreamMessage) { _ = enqueue(message.line, finishing: true) }

    /// Ends the stream without a message (the client sees the connection close).
    public func finish() { _ = enqueue([], finishing: true) }

    private func enqueue(_ line: [UInt8], finishing: Bool) -> Bool {
        let (accepted, signal) = state.withLock { s -> (Bool, Bool) in
            guard !s.finished, !s.overflowed, !s.closed else { return (false, false) }
            if s.queue.count + line.count > maxQueuedBytes {
                s.overflowed = true
                s.queue = []
                return (false, true)
            }
            let wasIdle = s.queue.isEmpty
            s.queue.append(contentsOf: line)
            if finishing { s.finished = true }
            return (true, wasIdle || finishing)
        }
        if signal { wake() }
        return accepted
    }

    /// Whether messages are still taken (a publisher drops streams for which this is false).
    public var isOpen: Bool { state.withLock { !$0.finished && !$0.overflowed && !$0.closed } }

    /// Bytes queued and not yet taken by the loop.
    public var queuedBytes: Int { state.withLock { $0.queue.count } }

    /// Takes everything queued (the loop's side).
    func drain() -> Drained {
        state.withLock { s in
            defer { s.queue = [] }
            return Drained(bytes: s.queue, finished: s.finished, overflowed: s.overflowed)
        }
    }

    /// The connection is gone: refuse further messages.
    func close() {
        state.withLock {
            $0.closed = true
            $0.queue = []
        }
    }
}
