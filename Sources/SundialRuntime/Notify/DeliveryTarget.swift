import SundialCore

/// Where a delivery goes, as far as ordering is concerned: the notifier sends at most one
/// delivery per target at a time, in queueing order, and the queues bound each target's share.
///
/// A webhook is its URL (two entries that differ only in headers or retries reach the same
/// receiver, and a dead receiver is dead for both); a command is its argv.
public enum DeliveryTarget: Hashable, Sendable {
    case command([String])
    case webhook(url: String)

    public init(_ target: NotifyTarget) {
        switch target {
        case let .command(argv): self = .command(argv)
        case let .webhook(spec): self = .webhook(url: spec.url)
        }
    }
}

extension NotificationRequest {
    /// The target this delivery is serialised with.
    public var deliveryTarget: DeliveryTarget { DeliveryTarget(target) }
}
