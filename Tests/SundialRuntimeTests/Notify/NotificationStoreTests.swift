import Foundation
import SundialCore
import SundialTesting
import Synchronization
import Testing

@testable import SundialRuntime

/// Durable notification deliveries (issue 17): the store's `notifications` contract for both
/// stores, and ``StateStoreNotificationQueue`` over it (what a restart finds, the bound).
@Suite("Notification deliveries in the state store", .offPool)
struct NotificationStoreTests {
    static let t0 = Instant(unixMillis: 1_767_571_200_000)

    static func request(_ run: String, job: JobID = "backup") -> NotificationRequest {
        var facts = NotificationFacts(
            event: .failure,
            fact: RunFact(
                kind: .attemptEnded(willRetry: false), job: job,
                outcome: .failure(exitCode: 2), at: t0), box: "b")
        facts.runID = RunID(rawValue: run)
        return NotificationRequest(
            event: .failure, target: .webhook(WebhookSpec(url: "http://127.0.0.1:9/h", retries: 1)),
            job: job, entry: 0, envFile: nil, facts: facts)
    }

    @Test("enqueue, pending oldest first (paged by id), delete", arguments: StoreKind.allCases)
    func enqueuePendingDelete(kind: StoreKind) throws {
        let (store, done) = try kind.make()
        defer { done() }
        #expect(try store.pendingNotifications(after: 0, limit: 10) == [])
        let a = try #require(try store.enqueueNotification(payload: "{\"n\":1}", at: Self.t0))
        let b = try #require(try store.enqueueNotification(payload: "{\"n\":2}", at: Self.t0 + .seconds(1)))
        let c = try #require(try store.enqueueNotification(payload: "{\"n\":3}", at: Self.t0 + .seconds(2)))
        #expect(a < b && b < c)
        let all = try store.pendingNotifications(after: 0, limit: 10)
        #expect(all.map(\.payload) == ["{\"n\":1}", "{\"n\":2}", "{\"n\":3}"])
        #expect(all.first == StoredNotification(id: a, payload: "{\"n\":1}", enqueuedAt: Self.t0, attempts: 0))
        #expect(try store.pendingNotifications(after: 0, limit: 2).map(\.id) == [a, b])
        #expect(try store.pendingNotifications(after: b, limit: 2).map(\.id) == [c])
        #expect(try store.pendingNotifications(after: 0, limit: 0) == [])
        try store.deleteNotification(id: b)
        try store.deleteNotification(id: 999_999)  // unknown: ignored
        #expect(try store.pendingNotifications(after: 0, limit: 10).map(\.id) == [a, c])
    }

    @Test("beyond the cap enqueue refuses; the oldest are kept; room again after a delete", arguments: StoreKind.allCases)
    func capRefusesAndKeepsTheOldest(kind: StoreKind) throws {
        let (store, done) = try kind.make()
        defer { done() }
        let ids = try (1...3).map { try #require(try store.enqueueNotification(payload: "\($0)", at: Self.t0, capacity: 3)) }
        #expect(try store.enqueueNotification(payload: "4", at: Self.t0, capacity: 3) == nil)
        #expect(try store.pendingNotifications(after: 0, limit: 10).map(\.payload) == ["1", "2", "3"])
        try store.deleteNotification(id: ids[0])
        #expect(try store.enqueueNotification(payload: "4", at: Self.t0, capacity: 3) != nil)
        #expect(try store.pendingNotifications(after: 0, limit: 10).map(\.payload) == ["2", "3", "4"])
        #expect(StoredNotification.capacity == 10_000)
    }

    @Test("SQLite: kept rows survive closing and reopening the database")
    func sqliteRowsSurviveReopen() throws {
        let dir = TempDir("notifyq")
        defer { dir.remove() }
        let path = dir.path + "/state.db"
        let store = try SQLiteStateStore(path: path)
        _ = try store.enqueueNotification(payload: "kept", at: Self.t0)
        try store.close()
        let again = try SQLiteStateStore(path: path)
        defer { try? again.close() }
        #expect(try again.pendingNotifications(after: 0, limit: 10).map(\.payload) == ["kept"])
    }

    @Test("the queue: a delivery is a row until done; a new queue (a restart) offers what was not done, oldest first")
    func queueSurvivesARestart() throws {
        let store = MemoryStateStore()
        let clock = VirtualClock(wall: Self.t0)
        let q = StateStoreNotificationQueue(store: store, clock: clock)
        #expect(q.count == 0)
        #expect([q.push(Self.request("R1")), q.push(Self.request("R2")), q.push(Self.request("R3"))] == [.queued, .queued, .queued])
        let first = try #require(q.take())
        #expect(first.request == Self.request("R1"))
        #expect(try store.pendingNotifications(after: 0, limit: 10).count == 3)  // written before the first was taken
        q.done(first.id)
        _ = try #require(q.take())  // R2 taken, never done: the agent stopped while sending it
        #expect(try store.pendingNotifications(after: 0, limit: 10).count == 2)

        let restarted = StateStoreNotificationQueue(store: store, clock: clock)
        #expect(restarted.count == 2)
        // One target: R3 waits until R2 has ended, as before the restart.
        let r2 = try #require(restarted.take())
        #expect(r2.request.facts.runID?.rawValue == "R2" && restarted.take() == nil)
        restarted.done(r2.id)
        let r3 = try #require(restarted.take())
        #expect(r3.request.facts.runID?.rawValue == "R3" && restarted.take() == nil)
        restarted.done(r3.id)
        #expect(try store.pendingNotifications(after: 0, limit: 10) == [])
    }

    @Test("the queue is bounded (taken-not-done counts); a row that does not decode is deleted and reported")
    func queueBoundAndDamagedRows() throws {
        let store = MemoryStateStore()
        let clock = VirtualClock(wall: Self.t0)
        _ = try store.enqueueNotification(payload: "{not json", at: Self.t0)
        _ = try store.enqueueNotification(payload: Self.request("OLD").json.jsonText, at: Self.t0)
        let errors = Mutex<[String]>([])
        let q = StateStoreNotificationQueue(store: store, clock: clock, capacity: 2) { m in errors.withLock { $0.append(m) } }
        #expect(errors.withLock { $0.count } == 1 && errors.withLock { $0.first?.contains("does not decode") } == true)
        #expect(try store.pendingNotifications(after: 0, limit: 10).count == 1)
        #expect(q.count == 1)
        #expect(q.push(Self.request("R1")) == .queued)
        #expect(q.push(Self.request("R2")) == .refused)
        let old = try #require(q.take())
        #expect(old.request.facts.runID?.rawValue == "OLD")
        #expect(q.push(Self.request("R2")) == .refused)
        q.done(old.id)
        #expect(q.push(Self.request("R2")) == .queued)
    }

    @Test("the notifier delivers what a previous agent left, before anything new, and forgets it once sent")
    func notifierResumesLeftovers() async throws {
        let store = MemoryStateStore()
        let clock = VirtualClock(wall: Self.t0)
        _ = try store.enqueueNotification(payload: Self.request("LEFT").json.jsonText, at: Self.t0)
        let sink = MemoryEventSink()
        let sender = NotifierTests.ScriptedSender([.sent(detail: "HTTP 204")])
        let notifier = Notifier(
            queue: StateStoreNotificationQueue(store: store, clock: clock), sender: sender,
            log: EventLog(sink: sink, clock: clock), clock: clock, box: "b")
        #expect(notifier.resumePending() == 1)
        #expect(notifier.waitForDeliveries(upToMs: 10_000) == 0)
        #expect(sender.seen.withLock { $0.map(\.facts.runID?.rawValue) } == ["LEFT"])
        let sent = NotifierTests().lines(sink, "notify.sent")
        #expect(sent.count == 1 && sent.first?["run_id"] == "LEFT")
        #expect(try store.pendingNotifications(after: 0, limit: 10) == [])
    }
}
