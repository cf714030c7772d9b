import SundialCore
import SundialTesting
import Synchronization
import Testing

@testable import SundialRuntime

/// A job's row key: found with one scan of the stored jobs at start, inserted once for a new
/// job, and the same after a restart and after the cache of keys was dropped (the insert then
/// conflicts and the key is read back).
@Suite("SQLiteStateStore job keys", .offPool)
struct SQLiteJobKeyTests {
    @Test func keysAreStableAcrossRestartsAndConflicts() throws {
        let dir = TempDir("jobkeys")
        defer { dir.remove() }
        let path = dir.path + "/state.db"
        let first = try SQLiteStateStore(path: path)
        try first.warmUp(jobs: ["a", "b"])
        let a = try #require(first.jobKeys.withLock { $0["a"] })
        let b = try #require(first.jobKeys.withLock { $0["b"] })
        #expect(a != b)
        try first.close()

        let store = try SQLiteStateStore(path: path)
        defer { try? store.close() }
        try store.warmUp(jobs: ["b", "c"])
        let keys = store.jobKeys.withLock { $0 }
        #expect(keys["b"] == b)
        let c = try #require(keys["c"])
        #expect(c != a && c != b)
        #expect(keys["a"] == nil)  // a removed job's row stays on disk, not in memory

        // A key asked for without the cache: the insert changes nothing, and the stored key
        // comes back, not the rowid of some earlier insert.
        store.jobKeys.withLock { $0.removeAll() }
        let again = try store.writer.withConnection { db in try db.transaction { try store.jobKey("b", in: db) } }
        #expect(again == b)
        let new = try store.writer.withConnection { db in try db.transaction { try store.jobKey("d", in: db) } }
        #expect(![a, b, c].contains(new))
        let aAgain = try store.writer.withConnection { db in try db.transaction { try store.jobKey("a", in: db) } }
        #expect(aAgain == a)
    }
}
