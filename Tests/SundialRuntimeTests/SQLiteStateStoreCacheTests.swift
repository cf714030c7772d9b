import SundialTesting
import Testing

@testable import SundialRuntime

/// Both connections of the state store keep a small page cache (`Options.cacheKiB`), not
/// SQLite's 2,000 KiB each: what restoring many jobs reads would otherwise stay in an idle
/// agent's private memory (issue 15).
@Suite(.offPool) struct SQLiteStateStoreCacheTests {
    @Test func bothConnectionsUseTheConfiguredCache() throws {
        let dir = TempDir("cache")
        defer { dir.remove() }
        var options = SQLiteStateStore.Options()
        options.cacheKiB = 96
        let store = try SQLiteStateStore(path: dir.path + "/state.db", options: options)
        defer { try? store.close() }
        let writer = try store.writer.withConnection { try $0.rows("PRAGMA cache_size").map { try $0.int64(0) } }
        let aux = try store.aux.withConnection { try $0.rows("PRAGMA cache_size").map { try $0.int64(0) } }
        #expect(writer == [-96])
        #expect(aux == [-96])
        #expect(SQLiteStateStore.Options().cacheKiB == 256)
    }
}
