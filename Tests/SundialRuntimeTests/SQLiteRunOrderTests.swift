import SundialCore
import SundialTesting
import Testing

@testable import SundialRuntime

/// "Newest" among a job's runs is the latest `started_at`, and among runs started in the same
/// millisecond the one recorded last. Every query that picks newest runs agrees on it (status,
/// history, the recent-runs view, the prune), and reads them from `runs_by_job` in index order:
/// the tie-break is the row key, which every index entry already ends with, so no query sorts.
@Suite("SQLiteStateStore run order", .offPool)
struct SQLiteRunOrderTests {
    @Test func runsStartedInTheSameMillisecondAreNewestInTheOrderTheyWereRecorded() throws {
        let dir = TempDir("runorder")
        defer { dir.remove() }
        let path = dir.path + "/state.db"
        let store = try SQLiteStateStore(path: path, retention: StateRetention(maxAge: .seconds(1_000_000), maxRunsPerJob: 2))
        defer { try? store.close() }
        // Recorded in this order, all at the same instant; their ids sort the other way round.
        let ids = ["01JZZZ", "01JMMM", "01JAAA"].map { RunID(rawValue: $0 + String(repeating: "0", count: 20)) }
        for id in ids {
            let r = RunRecord(id: id, job: "a", trigger: .manual, scheduledFor: nil, startedAt: at(10))
            try store.apply([.runStarted(r), .runFinished(runID: id, outcome: .success(exitCode: 0), at: at(11))])
        }
        let older = RunRecord(id: rid(1), job: "a", trigger: .manual, scheduledFor: nil, startedAt: at(5))
        try store.apply([.runStarted(older), .runFinished(runID: older.id, outcome: .success(exitCode: 0), at: at(6))])
        try store.flush()

        #expect(try store.latestRuns()["a"]?.id == ids[2])
        #expect(try store.history(job: "a", limit: 10).map(\.id) == [ids[2], ids[1], ids[0], older.id])
        #expect(try store.recentRuns(limit: 2)["a"]?.map(\.id) == [ids[2], ids[1]])
        let reader = try StateReader(path: path)
        #expect(try reader.latestRuns()["a"]?.id == ids[2])

        try store.prune(now: at(20))
        #expect(try store.history(job: "a", limit: 10).map(\.id) == [ids[2], ids[1]])
    }

    /// A temporary b-tree for the ORDER BY in these plans is a sort per job: 64 M instructions when a
    /// 10,000-job agent starts, most of it for jobs that have no runs at all.
    @Test(arguments: [StateQueries.latestRunsSQL, StateQueries.historySQL, SQLiteStateStore.pruneRunsSQL, WriteSQL.outputTrim])
    func newestRunsAreReadInIndexOrder(sql: String) throws {
        let dir = TempDir("runplan")
        defer { dir.remove() }
        let path = dir.path + "/state.db"
        try SQLiteStateStore(path: path).close()
        let db = try SQLiteConnection(path: path)
        defer { db.close() }
        let plan = try db.rows("EXPLAIN QUERY PLAN " + sql).map { try $0.text(3) }  // parameters unbound: NULL
        #expect(plan.contains { $0.contains("runs_by_job") }, "\(plan)")
        // ("USE TEMP B-TREE FOR UNION" in the prune is its de-duplication, not a sort.)
        #expect(!plan.contains { $0.contains("TEMP B-TREE FOR") && $0.contains("ORDER BY") }, "\(plan)")
    }
}
