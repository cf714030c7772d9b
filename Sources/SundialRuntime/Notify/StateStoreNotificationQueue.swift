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
/// runs on the notifier's thread and first writes what the inbox still holds, so a delivery is
/// always a row before it is attempted, and ``done(_:)`` (a delete) can never run before its
/// insert. A delivery pushed less than a write ago is lost by a `kill -9`; one pushed before a
/// clean stop is not (``flush()``).
///
/// ## At least once
/// At start, the rows a previous agent left are offered first, oldest first. A delivery that was
/// sent but whose row was not yet deleted when the agent died is sent again: the JSON document
/// carries `run_id` (and `event`) so that a receiver can recognise a repeat.
///
/// ## Bounded
/// At most `capacity` deliveries, waiting or in flight: beyond it `push` refuses (the notifier
/// logs `notify.failed`, reason `queue full`) — the oldest are never dropped to make room. The
/// rows left by the previous agent are read at start (at most `capacity`, about 1 KB each).
/// A row that does not decode (a damaged database) is deleted and reported through `onError`.
/// When the store cannot write (full disk), the delivery is still attempted, from memory only,
/// and `onError` says so.
public final class StateStoreNotificationQueue: NotificationQueue {
    private struct State: ~Copyable {
        var inbox: [NotificationRequest] = []
        var ready: [QueuedNotification] = []
        var readyHead = 0
        var inFlight: Set<UInt64> = []
        /// Ids of deliveries kept only in memory (the store failed): no row to delete.
        var memoryOnly: Set<UInt64> = []
        var nextMemoryID: UInt64 = 1 << 62
        var count: Int { inbox.count + ready.count - readyHead + inFlight.count }
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
        state.withLock { $0.ready = restored }
    }

    public func push(_ request: NotificationRequest) -> Bool {
        let accepted = state.withLock { s in
            guard s.count < capacity else { return false }
            s.inbox.append(request)
            return true
        }
        if accepted { worker.async { [self] in writeInbox() } }
        return accepted
    }

    public func take() -> QueuedNotification? {
        writeInbox()
        return state.withLock { s in
            guard s.readyHead < s.ready.count else { return nil }
            let item = s.ready[s.readyHead]
            s.readyHead += 1
            if s.readyHead == s.ready.count {
                s.ready.removeAll(keepingCapacity: false)
                s.readyHead = 0
            }
            s.inFlight.insert(item.id)
            return item
        }
    }

    public func done(_ id: UInt64) {
        let stored = state.withLock { s in
            s.inFlight.remove(id)
            return s.memoryOnly.remove(id) == nil
        }
        guard stored, let row = Int64(exactly: id) else { return }
        do { try store.deleteNotification(id: row) } catch {
            onError("cannot forget delivered notification \(row) (it may be delivered again after a restart): \(error)")
        }
    }

    /// Waiting, being written and in flight.
    public var count: Int { state.withLock { $0.count } }

    /// Writes what is still in memory only (a clean stop: the agent has stopped pushing).
    public func flush() {
        worker.sync()
        writeInbox()
    }

    /// Moves the inbox to the store and to `ready`, in push order.
    private func writeInbox() {
        writing.withLock { _ in
            let batch = state.withLock { s -> [NotificationRequest] in
                defer { s.inbox.removeAll() }
                return s.inbox
            }
            guard !batch.isEmpty else { return }
            var written: [(QueuedNotification, memoryOnly: Bool)] = []
            var failure: String?
            for request in batch {
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
                    written.append((QueuedNotification(id: UInt64(id), request: request), false))
                } else {
                    let mid = state.withLock { s in
                        defer { s.nextMemoryID += 1 }
                        return s.nextMemoryID
                    }
                    written.append((QueuedNotification(id: mid, request: request), true))
                }
            }
            state.withLock { s in
                for (item, memoryOnly) in written {
                    s.ready.append(item)
                    if memoryOnly { s.memoryOnly.insert(item.id) }
                }
            }
            if let failure {
                onError("cannot keep a notification in the state database (it is sent, but would be lost by a restart): \(failure)")
            }
        }
    }
}
