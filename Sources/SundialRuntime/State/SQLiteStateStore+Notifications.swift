import SundialCore

// MARK: - Notification deliveries (the `notifications` table, migration v7)

extension SQLiteStateStore {
    /// One small transaction on the writer: a count (the cap), an insert. Not batched like run
    /// ends: the caller (``StateStoreNotificationQueue``, on its own thread) wants the row kept
    /// before it says so, and it is never on the firing path — a fire waiting for the writer
    /// waits at most this transaction's tens of microseconds, as it would for a batch commit.
    public func enqueueNotification(payload: String, at: Instant, capacity: Int) throws -> Int64? {
        let id = try guarded {
            try writer.withConnection { db in
                try db.transaction { () throws -> Int64? in
                    let count = try db.value("SELECT count(*) FROM notifications")
                    guard case let .integer(n)? = count, n < Int64(max(0, capacity)) else { return nil }
                    try db.execute("INSERT INTO notifications(payload, enqueued_at) VALUES (?, ?)", payload, at.unixMillis)
                    guard case let .integer(id)? = try db.value("SELECT last_insert_rowid()") else {
                        throw StateError(.io, path: path, message: "the notification row just inserted has no id")
                    }
                    return id
                }
            }
        }
        wrote()
        return id
    }

    public func pendingNotifications(after: Int64, limit: Int) throws -> [StoredNotification] {
        guard limit > 0 else { return [] }
        return try read { db in
            try db.rows("SELECT id, payload, enqueued_at, attempts FROM notifications WHERE id > ? ORDER BY id LIMIT ?", after, limit).map {
                StoredNotification(
                    id: try $0.int64(0), payload: try $0.text(1), enqueuedAt: try $0.instant(2),
                    attempts: Int(try $0.int64(3)))
            }
        }
    }

    public func deleteNotification(id: Int64) throws {
        try guarded { try writer.withConnection { try $0.execute("DELETE FROM notifications WHERE id = ?", id) } }
        wrote()
    }
}
