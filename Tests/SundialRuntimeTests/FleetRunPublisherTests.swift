import Foundation
import SundialCore
import SundialRuntime
import SundialTesting
import Testing

/// The result backend against a real PostgreSQL: idempotent by run id, catching up after an
/// outage and a restart, never logging the password.
@Suite("FleetRunPublisher", .serialized, .enabled(if: PGTest.enabled), .offPool)
struct FleetRunPublisherTests {
    static func store(_ dir: TempDir) throws -> SQLiteStateStore {
        var o = SQLiteStateStore.Options()
        o.fleetOutbox = true
        o.batchInterval = .milliseconds(5)
        return try SQLiteStateStore(path: dir.path + "/state.db", options: o)
    }

    static func count(_ url: String, _ sql: String = "SELECT count(*) FROM sundial_runs") throws -> Int {
        let c = PostgresConnection(settings: PostgresSettings(url: url))
        defer { c.close() }
        return Int(try c.query(sql).first?.first.flatMap { $0 } ?? "-1") ?? -1
    }

    @Test func publishingIsIdempotentByRunIDAndRecordsTheFencingToken() throws {
        let url = try PGTest.freshURL()
        let dir = TempDir("pub")
        defer { dir.remove() }
        let store = try Self.store(dir)
        defer { try? store.close() }
        // The instant of run 1 was claimed by this box: its token goes with the record.
        let coordinator = PGTest.coordinator(url, box: "box-a")
        guard case let .won(lease) = coordinator.claim(FleetClaimKey(job: "report", scheduledFor: at(1)), box: "box-a", leaseMs: 30_000, forbidOverlap: false)
        else {
            Issue.record("claim failed")
            return
        }
        for i in 1...3 { try FleetOutboxTests.runAndFinish(store, i, output: "line \(i)\n") }
        try store.flush()
        let events = LockedBox([Event]())
        let p = FleetRunPublisher(store: store, settings: PostgresSettings(url: url), box: "box-a", version: "test") { e in events.mutate { $0.append(e.event) }
        }
        #expect(try store.fleetOutbox(limit: 10).count == 3)
        #expect(p.cycle(), "\(p.lastError ?? "")")
        #expect(p.publishedCount == 3)
        #expect(try Self.count(url) == 3)
        #expect(try Self.count(url, "SELECT token FROM sundial_runs WHERE run_id = '\(rid(1).rawValue)'") == Int(lease.token))
        #expect(try Self.count(url, "SELECT count(*) FROM sundial_runs WHERE output_tail = 'line 2\n' AND box = 'box-a' AND exit_code = 3") == 1)
        #expect(try Self.count(url, "SELECT count(*) FROM sundial_boxes WHERE box = 'box-a'") == 1)
        // The outbox empties with the store's next commit.
        try store.flush()
        #expect(try store.fleetOutbox(limit: 10).isEmpty)
        // The same records again (a crash before the delete committed): nothing changes.
        let again = FleetRunPublisher(store: store, settings: PostgresSettings(url: url), box: "box-a", version: "test") { _ in }
        for i in 1...3 { try FleetOutboxTests.runAndFinish(store, i + 100) }
        try store.flush()
        #expect(again.cycle())
        #expect(try Self.count(url) == 6)
        // Status and history read it back.
        let db = PostgresConnection(settings: PostgresSettings(url: url))
        defer { db.close() }
        let status = try FleetQueries.status(db)
        #expect(status.map(\.box) == ["box-a"])
        #expect(status.first?.lastOutcomes.map(\.job) == ["report"])
        let history = try FleetQueries.history(db, job: "report", limit: 4)
        #expect(history.count == 4 && history.first?.box == "box-a")
        #expect(events.value.filter { $0.level != .info }.isEmpty)
    }

    @Test func anOutageIsWaitedOutAndEverythingPublishedAfterARestartOfBoth() throws {
        _ = try PGTest.requireURL()
        let cluster = try PrivatePGCluster()
        defer { cluster.destroy() }
        let dir = TempDir("pub-outage")
        defer { dir.remove() }
        var options = FleetRunPublisher.Options()
        options.intervalMs = 50
        options.maxBackoffMs = 200
        let events = LockedBox([Event]())
        do {
            let store = try Self.store(dir)
            let p = FleetRunPublisher(store: store, settings: PostgresSettings(url: cluster.url), box: "a", version: "t", options: options) { e in
                events.mutate { $0.append(e.event) }
            }
            #expect(p.start())
            for i in 0..<5 { try FleetOutboxTests.runAndFinish(store, i) }
            #expect(eventually(timeout: .seconds(20)) { (try? Self.count(cluster.url)) == 5 })
            try cluster.stop()
            for i in 5..<10 { try FleetOutboxTests.runAndFinish(store, i) }
            // Failing meanwhile, without blocking the store (these applies returned at once).
            #expect(eventually(timeout: .seconds(20)) { p.lastError != nil })
            p.stop()
            try store.close()
        }
        // The agent restarts while the database is still down, then the database returns.
        let store = try Self.store(dir)
        defer { try? store.close() }
        #expect(try store.fleetOutbox(limit: 100).count == 5)
        let p = FleetRunPublisher(store: store, settings: PostgresSettings(url: cluster.url), box: "a", version: "t", options: options) { e in
            events.mutate { $0.append(e.event) }
        }
        #expect(p.start())
        defer { p.stop() }
        try cluster.start()
        #expect(eventually(timeout: .seconds(30)) { (try? Self.count(cluster.url)) == 10 })
        #expect(try Self.count(cluster.url, "SELECT count(DISTINCT run_id) FROM sundial_runs") == 10)
        let names = events.value.map(\.name)
        #expect(names.contains("fleet.publish.error") && names.contains("fleet.publish.recovered"))
        // The password never appears in what was logged.
        let logged = events.value.map { String(decoding: $0.jsonLine(), as: UTF8.self) }.joined()
        #expect(!cluster.password.isEmpty && !logged.contains(cluster.password))
    }
}
