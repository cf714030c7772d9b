import SundialCore
import SundialRuntime
import SundialTesting
import Testing

/// A run's start as `history`, the status pages and the API show it is its first process's
/// start, not the decision to run it: a loop busy with output once delayed the spawn by four
/// seconds while the history said 0.5 s (D6 of the hostile probe).
@Suite(.offPool) struct RunStartTests {
    @Test func theFirstAttemptsProcessStartIsTheRunsStart() throws {
        let dir = TempDir("runstart")
        defer { dir.remove() }
        let store = try SQLiteStateStore(path: dir.path + "/state.db", options: SQLiteStateStoreTests.manual)
        defer { try? store.close() }
        let decided = at(2)
        try store.apply([
            .runStarted(RunRecord(id: rid(1), job: "a", trigger: .schedule, scheduledFor: decided, startedAt: decided)),
            .attemptStarted(runID: rid(1), attempt: 1, pid: 42, at: at(6)),
            // A retry's start is the attempt's, not the run's.
            .attemptStarted(runID: rid(1), attempt: 2, pid: 43, at: at(9)),
            // A launch that never made a process keeps the decision.
            .runStarted(RunRecord(id: rid(2), job: "b", trigger: .schedule, scheduledFor: decided, startedAt: decided)),
            .attemptStarted(runID: rid(2), attempt: 1, pid: nil, at: at(7)),
            // An ordinary start, milliseconds after the decision, leaves the row as it is (no
            // rewrite of the row and its index entries, on flash, at every fire).
            .runStarted(RunRecord(id: rid(3), job: "c", trigger: .schedule, scheduledFor: decided, startedAt: decided)),
            .attemptStarted(runID: rid(3), attempt: 1, pid: 44, at: Instant(unixMillis: decided.unixMillis + 5)),
        ])
        try store.flush()
        #expect(try store.history(job: "c", limit: 5).map(\.startedAt) == [decided])
        #expect(try store.history(job: "a", limit: 5).map(\.startedAt) == [at(6)])
        #expect(try store.history(job: "b", limit: 5).map(\.startedAt) == [decided])
        #expect(try store.recentRuns(limit: 5)["a"]?.map(\.startedAt) == [at(6)])
    }
}
