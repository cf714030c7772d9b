import SundialCore
import Synchronization

/// The durable ``NotificationQueue``: every delivery is a row of the state store's
/// `notifications` table from its queueing until it ends, so one pending at a stop (or a crash)
/// is delivered after the restart (issue 17).
///
/// ## Never on the firing path
/// ``push(_:)`` runs on the agent's actor, so it does no I/O: it checks the bound against a
/// count kept in memory, appends to an inbox and wakes this queue's own thread, which writes
/// the inbox to the store (one small transaction per row, tens of microseconds each). ``take()``
/// runs on a notifier's worker and first writes what the inbox still holds, so a delivery is
/// always a row before it is attempted, and ``done(_:)`` (a delete) can never run before its
/// insert. A delivery pushed less than a write ago is lost by a `kill -9`; one pushed before a
/// clean stop is not (``flush()``).
///
/// ## At least once
/// At start, the rows a previous agent left are offered first, oldest first (a target's before
/// any new one of that target; another target need not wait for them). A delivery that was
/// sent but whose row was not yet deleted when the agent died is sent again: the JSON document
/// carries `run_id` (and `event`) so that a receiver can recognise a repeat.
///
/// ## Bounded
/// At most `capacity` deliveries, waiting or in flight. When full, the target that holds the
/// most gives way (``TargetQueues``): the new delivery is refused if its own target holds at
/// least as many as any other, otherwise the newest waiting delivery of the biggest target is
/// dropped (its row deleted by the next write, before the new row, so the table's own cap sees
/// the room); either way the notifier logs `notify.failed`, reason `queue full`. A target's
/// oldest deliveries are never dropped to make room. The rows left by the previous agent are
/// read at start (at most `capacity`, about 1 KB each).
/// A row that does not decode (a damaged database) is deleted and reported through `onError`.
/// When the store cannot write (full disk), the delivery is still attempted, from memory only,
/// and `onError` says so.
///
/// ## One at a time per target
/// ``take()`` offers the oldest delivery whose target has none in flight, a restored one or a
/// new one alike, so each target's deliveries are attempted in queueing order even across a
/// restart.
public final class StateStoreNotificationQueue: NotificationQueue {
    private struct State: ~Copyable {
        var queues = TargetQueues()
        /// Pushed and not yet written, as sequence numbers of `queues`, in push order.
        var unwritten: [UInt64] = []
        /// Rows of dropped deliveries, deleted by the next write before its inserts.
        var deletes: [Int64] = []
        /// Ids of deliveries kept only in memory (the store failed): no row to delete.
        var memoryOnly: Set<UInt64> = []
        var nextMemoryID: UInt64 = 1 << 62
    }

    public let capacity: Int
    private let store: any StateStore
    private let clock: any SundialClock
    private let onError: @Sendable (String) -> Void
    private let state = Mutex(State())
    /// Serialises inbox writes (this queue's thread and ``take()``), so rows keep push order.
    private let writing = Mutex(())
    private let worker = SerialWorker(name: "sundial-notifyq")

    /// Reads the deliveries a previous agent left (at most `capacity`); they are the first
    /// ``take()`` returns.
    public init(
        store: any StateStore, clock: any SundialClock, capacity: Int = StoredNotification.capacity,
        onError: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.store = store
        self.clock = clock
        self.capacity = max(1, capacity)
        self.onError = onError
        var restored: [QueuedNotification] = []
        var after: Int64 = 0
        do {
            while restored.count < self.capacity {
                let page = try store.pendingNotifications(after: after, limit: min(256, self.capacity - restored.count))
                guard let last = page.last else { break }
                after = last.id
                for row in page {
                    guard let request = (try? JSONParser.parse(row.payload)).flatMap(NotificationRequest.init(json:)) else {
                        onError("notification \(row.id) in the state database does not decode; deleted")
                        try? store.deleteNotification(id: row.id)
                        continue
                    }
                    restored.append(QueuedNotification(id: UInt64(row.id), request: request))
                }
            }
        } catch {
            onError("cannot read the notifications left by the previous agent: \(error)")
        }
        state.withLock { s in
            for item in restored { s.queues.append(item.request, id: item.id) }
        }
    }

    public func push(_ request: NotificationRequest) -> NotificationPush {
        let result = state.withLock { s -> NotificationPush in
            let admission = s.queues.admit(request.deliveryTarget, capacity: capacity)
            if case .refused = admission { return .refused }
            s.unwritten.append(s.queues.append(request, id: nil))
            guard case let .dropped(victim) = admission else { return .queued }
            // Not written yet: no row (if it is being written, the write deletes it again).
            if let id = victim.id, s.memoryOnly.remove(id) == nil, let row = Int64(exactly: id) { s.deletes.append(row) }
            return .queuedDropping(victim.request)
        }
        if result.accepted { worker.async { [self] in writeInbox() } }
        return result
    }

    public func take() -> QueuedNotification? {
        writeInbox()
        return state.withLock { $0.queues.take() }
    }

    public func done(_ id: UInt64) {
        // The row goes before the delivery stops counting, so that a push let in by the room
        // finds the table's own cap not yet reached.
        let stored = state.withLock { !$0.memoryOnly.contains(id) }
        if stored, let row = Int64(exactly: id) {
            delete(row, "cannot forget delivered notification \(row) (it may be delivered again after a restart)")
        }
        state.withLock { s in
            s.memoryOnly.remove(id)
            s.queues.done(id)
        }
    }

    /// Waiting, being written and in flight.
    public var count: Int { state.withLock { $0.queues.count } }

    /// Writes what is still in memory only (a clean stop: the agent has stopped pushing).
    public func flush() {
        worker.sync()
        writeInbox()
    }

    /// Deletes the rows of dropped deliveries, then writes the pushed ones, in push order,
    /// giving each its id (a row's, or a memory one when the store refuses).
    private func writeInbox() {
        writing.withLock { _ in
            let (batch, deletes) = state.withLock { s -> ([(seq: UInt64, request: NotificationRequest)], [Int64]) in
                defer {
                    s.unwritten.removeAll()
                    s.deletes.removeAll()
                }
                let batch = s.unwritten.compactMap { seq in s.queues.waiting(seq).map { (seq, $0.request) } }
                return (batch, s.deletes)
            }
            for row in deletes { delete(row, "cannot delete dropped notification \(row) (it may be delivered after a restart)") }
            guard !batch.isEmpty else { return }
            var written: [(seq: UInt64, id: UInt64, memoryOnly: Bool)] = []
            var failure: String?
            for (seq, request) in batch {
                var id: Int64?
                do {
                    id = try store.enqueueNotification(payload: request.json.jsonText, at: clock.wallNow(), capacity: capacity)
                    // The in-memory count is kept below `capacity`: a refusal means rows this
                    // queue does not know of (another writer); deliver it anyway, from memory.
                    if id == nil { failure = "the notifications table is full" }
                } catch {
                    failure = "\(error)"
                }
                if let id {
                    written.append((seq, UInt64(id), false))
                } else {
                    let mid = state.withLock { s in
                        defer { s.nextMemoryID += 1 }
                        return s.nextMemoryID
                    }
                    written.append((seq, mid, true))
                }
            }
            let orphans = state.withLock { s -> [Int64] in
                var orphans: [Int64] = []
                for w in written {
                    if s.queues.setID(w.id, for: w.seq) {
                        if w.memoryOnly { s.memoryOnly.insert(w.id) }
                    } else if !w.memoryOnly, let row = Int64(exactly: w.id) {
                        // Dropped while its row was being written.
                        orphans.append(row)
                    }
                }
                return orphans
            }
            for row in orphans { delete(row, "cannot delete dropped notification \(row) (it may be delivered after a restart)") }
            if let failure {
                onError("cannot keep a notification in the state database (it is sent, but would be lost by a restart): \(failure)")
            }
        }
    }

    private func delete(_ row: Int64, _ failure: String) {
        do { try store.deleteNotification(id: row) } catch { onError("\(failure): \(error)") }
    }
}
