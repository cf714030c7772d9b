import SundialCore
import Synchronization

/// A delivery waiting in a ``NotificationQueue``, with the id its queue gave it.
public struct QueuedNotification: Hashable, Sendable {
    public var id: UInt64
    public var request: NotificationRequest
    public init(id: UInt64, request: NotificationRequest) {
        self.id = id
        self.request = request
    }
}

/// Where deliveries wait for the notifier's worker. Bounded: `push` refuses when full rather
/// than grow (the caller logs `notify.failed` with reason `queue full`).
///
/// Two kinds: ``StateStoreNotificationQueue`` (the agent's: rows in `state.db`, deleted in
/// `done`, so whatever was not done at a stop is offered again by `take` after the restart —
/// delivery is then at least once) and ``MemoryNotificationQueue`` (tests). The notifier relies
/// only on these calls and on `take` returning each id once per process.
public protocol NotificationQueue: Sendable {
    /// Adds `request`; `false` when the queue is full. Called on the agent's actor: no I/O.
    func push(_ request: NotificationRequest) -> Bool
    /// The oldest request not yet taken, or `nil`.
    func take() -> QueuedNotification?
    /// The delivery of `id` is over (sent, or failed for good): forget it.
    func done(_ id: UInt64)
    /// Deliveries not yet done (waiting or in flight): at start, those a previous agent left.
    var count: Int { get }
}

/// The in-memory queue: deliveries pending at a stop are lost (and not logged as sent).
public final class MemoryNotificationQueue: NotificationQueue {
    private struct State: ~Copyable {
        var waiting: [QueuedNotification] = []
        var head = 0
        var inFlight: Set<UInt64> = []
        var nextID: UInt64 = 1
    }

    /// Waiting and in-flight deliveries together.
    public let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int = 1000) { self.capacity = max(1, capacity) }

    public func push(_ request: NotificationRequest) -> Bool {
        state.withLock { s in
            guard s.waiting.count - s.head + s.inFlight.count < capacity else { return false }
            s.waiting.append(QueuedNotification(id: s.nextID, request: request))
            s.nextID &+= 1
            return true
        }
    }

    public func take() -> QueuedNotification? {
        state.withLock { s in
            guard s.head < s.waiting.count else { return nil }
            let item = s.waiting[s.head]
            s.head += 1
            if s.head == s.waiting.count {
                s.waiting.removeAll(keepingCapacity: true)
                s.head = 0
            }
            s.inFlight.insert(item.id)
            return item
        }
    }

    public func done(_ id: UInt64) { state.withLock { _ = $0.inFlight.remove(id) } }

    /// Waiting plus in flight.
    public var count: Int { state.withLock { $0.waiting.count - $0.head + $0.inFlight.count } }
}
