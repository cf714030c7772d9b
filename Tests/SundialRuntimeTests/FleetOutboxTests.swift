import Foundation
import SundialCore
import SundialRuntime
import SundialTesting
import Testing

/// The fleet outbox in state.db (migration v8): filled in the run's own commit with --fleet,
/// bounded, emptied as published.
@Suite("FleetOutbox", .offPool)
struct FleetOutboxTests {
    static func options(outbox: Bool, capacity: Int = 100_000) -> SQLiteStateStore.Options {
        var o = SQLiteStateStore.Options()
        o.batchInterval = .seconds(3600)
        o.checkpointInterval = .seconds(3600)
        o.fleetOutbox = outbox
        o.fleetOutboxCapacity = capacity
        return o
    }

    static func runAndFinish(_ store: SQLiteStateStore, _ i: Int, job: String = "report", output: String? = nil) throws {
        let r = RunRecord(id: rid(i), job: job, trigger: .schedule, scheduledFor: at(Int64(i)), startedAt: at(Int64(i)))
        try store.apply([.fired(job: job, scheduledFor: at(Int64(i))), .runStarted(r)])
        var end: [StateChange] = []
        if let output { end.append(.outputStored(RunOutputRecord(runID: r.id, attempt: 1, text: output))) }
        end.append(.runFinished(runID: r.id, outcome: .failure(exitCode: 3), at: at(Int64(i) + 2)))
        try store.apply(end)
    }

    @Test func aRunsEndIsRecordedWithItsOutputOnlyWithTheOutboxOn() throws {
        let dir = TempDir("outbox")
        defer { dir.remove() }
        let store = try SQLiteStateStore(path: dir.path + "/state.db", options: Self.options(outbox: true))
        defer { try? store.close() }
        try Self.runAndFinish(store, 1, output: "disk full\n")
        // Nothing before the commit: the record is written in the run's own transaction.
        #expect(try store.fleetOutbox(limit: 10).isEmpty)
        try store.flush()
        let records = try store.fleetOutbox(limit: 10)
        #expect(records.count == 1)
        let r = try #require(records.first)
        #expect(r.runID == rid(1).rawValue && r.job == "report" && r.attempt == 1 && r.outcome == "failure" && r.exitCode == 3)
        #expect(r.scheduledFor == at(1) && r.startedAt == at(1) && r.finishedAt == at(3) && r.outputTail == "disk full\n")

        let dir2 = TempDir("no-outbox")
        defer { dir2.remove() }
        let plain = try SQLiteStateStore(path: dir2.path + "/state.db", options: Self.options(outbox: false))
        defer { try? plain.close() }
        try Self.runAndFinish(plain, 1)
        try plain.flush()
        #expect(try plain.fleetOutbox(limit: 10).isEmpty)
    }

    @Test func theOutboxIsBoundedDroppingTheOldestAndCountingThem() throws {
        let dir = TempDir("outbox-bound")
        defer { dir.remove() }
        let store = try SQLiteStateStore(path: dir.path + "/state.db", options: Self.options(outbox: true, capacity: 3))
        defer { try? store.close() }
        for i in 0..<5 { try Self.runAndFinish(store, i) }
        try store.flush()
        #expect(try store.fleetOutbox(limit: 10).map(\.runID) == [rid(2), rid(3), rid(4)].map(\.rawValue))
        let counts = try store.fleetOutboxCounts()
        #expect(counts.waiting == 3 && counts.dropped == 2)
    }

    @Test func publishedRowsLeaveWithTheNextCommitAndSurviveAReopenUntilThen() throws {
        let dir = TempDir("outbox-done")
        defer { dir.remove() }
        let path = dir.path + "/state.db"
        do {
            let store = try SQLiteStateStore(path: path, options: Self.options(outbox: true))
            for i in 0..<4 { try Self.runAndFinish(store, i) }
            try store.flush()
            let batch = try store.fleetOutbox(limit: 2)
            try store.fleetOutboxPublished(through: batch.last!.id)
            try store.close()
        }
        let store = try SQLiteStateStore(path: path, options: Self.options(outbox: true))
        defer { try? store.close() }
        #expect(try store.fleetOutbox(limit: 10).map(\.runID) == [rid(2), rid(3)].map(\.rawValue))
    }
}
