import SundialCore
import SundialTesting
import Synchronization
import Testing

@testable import SundialRuntime

/// `flush()`, and so every read (`restore`, `history`, `status`), sees every change applied
/// before it, including a batch the background worker has taken from the queue and is still
/// committing. It returned at once when the queue was empty, and a read right after a burst
/// could miss the burst's end (seen as `StateStoreContractTests` failing on a loaded machine:
/// a finished run restored as in flight, no alive mark).
@Suite("SQLiteStateStore flush", .offPool)
struct SQLiteStateStoreFlushTests {
    @Test func aFlushWaitsForTheBatchTheWorkerIsCommitting() throws {
        let dir = TempDir("flush")
        defer { dir.remove() }
        let path = dir.path + "/state.db"
        var options = SQLiteStateStore.Options()
        options.checkpointInterval = .seconds(3600)
        options.maxBatch = 1  // the worker commits as soon as anything is queued
        let store = try SQLiteStateStore(path: path, options: options)
        defer { try? store.close() }
        // A batch big enough that its transaction takes a while, so the window in which the
        // worker holds it (queue empty, nothing committed) is wide; a few rounds for certainty.
        var expected = 0
        for round in 0..<4 {
            let entries = (0..<20_000).map { i in
                StateChange.planned(
                    LedgerEntry(job: "job-\(i % 50)", scheduledFor: at(Int64(round * 20_000 + i)), disposition: .missed, at: at(1)))
            }
            try store.apply(entries)
            expected += entries.count
            // Wait until the worker has taken the batch (the queue is empty)...
            let deadline = ContinuousClock.now + .seconds(30)
            while store.pending.withLock({ !$0.ops.isEmpty }), ContinuousClock.now < deadline {}
            // ...then a flush must not return before the batch is in the file.
            try store.flush()
            #expect(try SQLiteProbe.int(path, "SELECT count(*) FROM ledger") == expected, "round \(round)")
        }
    }
}
