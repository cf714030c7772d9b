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

/// What ``NotificationQueue/push(_:)`` did with a delivery.
public enum NotificationPush: Hashable, Sendable {
    /// Queued.
    case queued
    /// Queued, in place of this delivery of the target that held the most (the queue was
    /// full); the caller logs it as failed.
    case queuedDropping(NotificationRequest)
    /// Not queued: the queue is full and this delivery's target holds the most.
    case refused

    public var accepted: Bool { self != .refused }
}

/// Where deliveries wait for the notifier's workers. Bounded: when full, the target that holds
/// the most gives way, its newest waiting delivery dropped, the new one itself if that target is
/// its own (``TargetQueues`` says why); the caller logs `notify.failed` with reason `queue full`.
///
/// `take` hands out the oldest delivery whose target (``DeliveryTarget``) has none in flight,
/// so the notifier sends several at once, never two for one target, each target's in order.
///
/// Two kinds: ``StateStoreNotificationQueue`` (the agent's: rows in `state.db`, deleted in
/// `done`, so whatever was not done at a stop is offered again by `take` after the restart —
/// delivery is then at least once) and ``MemoryNotificationQueue`` (tests). The notifier relies
/// only on these calls and on `take` returning each id once per process.
public protocol NotificationQueue: Sendable {
    /// Adds `request`, making room if need be. Called on the agent's actor: no I/O.
    func push(_ request: NotificationRequest) -> NotificationPush
    /// The oldest request not yet taken whose target has no delivery in flight, or `nil`.
    func take() -> QueuedNotification?
    /// The delivery of `id` is over (sent, or failed for good): forget it; its target may send
    /// its next one.
    func done(_ id: UInt64)
    /// Deliveries not yet done (waiting or in flight): at start, those a previous agent left.
    var count: Int { get }
}

/// The in-memory queue: deliveries pending at a stop are lost (and not logged as sent).
public final class MemoryNotificationQueue: NotificationQueue {
    private struct State: ~Copyable {
        var queues = TargetQueues()
        var nextID: UInt64 = 1
    }

    /// Waiting and in-flight deliveries together.
    public let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int = 1000) { self.capacity = max(1, capacity) }

    public func push(_ request: NotificationRequest) -> NotificationPush {
        state.withLock { s in
            let admission = s.queues.admit(request.deliveryTarget, capacity: capacity)
            if case .refused = admission { return .refused }
            s.queues.append(request, id: s.nextID)
            s.nextID &+= 1
            if case let .dropped(victim) = admission { return .queuedDropping(victim.request) }
            return .queued
        }
    }

    public func take() -> QueuedNotification? { state.withLock { $0.queues.take() } }

    public func done(_ id: UInt64) { state.withLock { _ = $0.queues.done(id) } }

    /// Waiting plus in flight.
    public var count: Int { state.withLock { $0.queues.count } }
}
