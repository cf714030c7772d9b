import SundialCore
import SundialTesting
import Testing

@testable import SundialRuntime

/// The prune visits only the jobs whose history is past the retention: at every start of a
/// 10,000-job agent it used to open a write transaction for each job, a fifth of start-up CPU.
@Suite("SQLiteStateStore prune candidates", .offPool)
struct SQLiteStatePruneTests {
    @Test func onlyJobsPastTheRetentionAreCandidates() throws {
        let dir = TempDir("prune")
        defer { dir.remove() }
        let path = dir.path + "/state.db"
        let retention = StateRetention(maxAge: .seconds(1000), maxRunsPerJob: 3, maxLedgerEntriesPerJob: 2)
        let store = try SQLiteStateStore(path: path, retention: retention)
        defer { try? store.close() }
        var n = 0
        func run(_ job: JobID, at s: Int64, finished: Bool = true) throws {
            n += 1
            let r = RunRecord(id: rid(n), job: job, trigger: .schedule, scheduledFor: at(s), startedAt: at(s))
            try store.apply([.fired(job: job, scheduledFor: at(s)), .runStarted(r)])
            if finished { try store.apply([.runFinished(runID: r.id, outcome: .success(exitCode: 0), at: at(s + 1))]) }
        }
        func planned(_ job: JobID, at s: Int64) throws {
            try store.apply([.planned(LedgerEntry(job: job, scheduledFor: at(s), disposition: .skipped(.needs), at: at(s)))])
        }
        // Twenty jobs within every bound: three runs and two ledger entries each, all recent.
        for j in 0..<20 {
            for s: Int64 in [2000, 2100, 2200] { try run(JobID("ok\(j)"), at: s) }
            for s: Int64 in [2000, 2100] { try planned(JobID("ok\(j)"), at: s) }
        }
        for s: Int64 in [2000, 2100, 2200, 2300] { try run("runs", at: s) }  // one run too many
        try run("old", at: 100)  // older than the cutoff (1000 s before 2500)
        for s: Int64 in [2000, 2100, 2200] { try planned("ledger", at: s) }  // one entry too many
        try planned("oldLedger", at: 10)
        try store.flush()

        let cutoff = (at(2500) - retention.maxAge).unixMillis
        let names = try store.pruneCandidates(cutoff: cutoff).map { key in
            try SQLiteProbe.texts(path, "SELECT name FROM jobs WHERE id = \(key)").first ?? "?"
        }
        #expect(Set(names) == ["runs", "old", "ledger", "oldLedger"])

        // And the prune itself still removes what it must, and leaves the rest.
        try store.prune(now: at(2500))
        #expect(try store.history(job: "runs", limit: 10).count == 3)
        #expect(try store.history(job: "old", limit: 10).isEmpty)
        #expect(try store.history(job: "ok0", limit: 10).count == 3)
        #expect(try store.pruneCandidates(cutoff: cutoff).isEmpty)
    }
}
