/// A notification delivery kept in the state store (`notifications` table) until it has ended,
/// so that one pending at a stop or a crash is delivered after the restart (issue 17).
///
/// The payload is ``NotificationRequest/json`` as text: the store keeps it opaque, so the
/// request's shape can grow without a migration.
public struct StoredNotification: Hashable, Sendable {
    /// The row's id: increasing in enqueue order (oldest first is id order).
    public var id: Int64
    public var payload: String
    public var enqueuedAt: Instant
    /// Attempts recorded on the row (0 until a release records them; kept so that one can cap
    /// redeliveries across restarts without a migration).
    public var attempts: Int

    public init(id: Int64, payload: String, enqueuedAt: Instant, attempts: Int = 0) {
        self.id = id
        self.payload = payload
        self.enqueuedAt = enqueuedAt
        self.attempts = attempts
    }

    /// Rows a store keeps at most. A full queue refuses new deliveries (the notifier logs
    /// `notify.failed` with reason `queue full`) rather than drop the oldest silently. 10,000
    /// rows of about 1 KB: a long outage of every receiver costs at most ~10 MB on disk.
    public static let capacity = 10_000
}
