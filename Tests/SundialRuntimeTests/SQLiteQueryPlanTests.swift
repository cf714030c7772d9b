import SundialCore
import SundialTesting
import Testing

@testable import SundialRuntime

/// The per-job run queries read their rows in the index's order: SQLite sorting the ties of
/// `started_at` in a temporary b-tree for each of 10,000 jobs was a sixth of a start's CPU.
@Suite("SQLiteStateStore query plans", .offPool)
struct SQLiteQueryPlanTests {
    @Test(arguments: [("latest runs", StateQueries.latestRunsSQL), ("history", StateQueries.historySQL)])
    func perJobRunQueriesDoNotSort(_ name: String, _ sql: String) throws {
        let dir = TempDir("plans")
        defer { dir.remove() }
        let store = try SQLiteStateStore(path: dir.path + "/state.db")
        defer { try? store.close() }
        let plan = try store.writer.withConnection { db in
            try db.rows("EXPLAIN QUERY PLAN " + sql).map { try $0.text(3) }
        }
        #expect(!plan.isEmpty)
        #expect(!plan.contains { $0.contains("TEMP B-TREE") }, "\(name): \(plan)")
        #expect(plan.contains { $0.contains("runs_by_job_latest") }, "\(name): \(plan)")
    }
}
