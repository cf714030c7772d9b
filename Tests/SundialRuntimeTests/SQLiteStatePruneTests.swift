import SundialCore
import SundialTesting
import Testing

@testable import SundialRuntime

/// The prune visits only the jobs whose history is past the retention: at every start of a
/// 10,000-job agent it used to open a write transaction for each job, a fifth of start-up CPU.
@Suite("SQLiteStateStore prune", .offPool)
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

    /// The time of the last prune is kept in the database: a restart within the interval does
    /// not apply the retention again (finding the jobs past it reads every run's index entry),
    /// one after it does, and a time in the future (the clock was set back) does not hold it off.
    @Test func theLastPruneOutlivesARestart() throws {
        let dir = TempDir("prunerestart")
        defer { dir.remove() }
        let path = dir.path + "/state.db"
        var options = SQLiteStateStore.Options()
        options.pruneInterval = .seconds(3600)
        let retention = StateRetention(maxAge: .seconds(1_000_000), maxRunsPerJob: 2)
        var n = 0
        func finishedRuns(_ store: SQLiteStateStore, _ count: Int) throws {
            for _ in 0..<count {
                n += 1
                let r = RunRecord(id: rid(n), job: "a", trigger: .schedule, scheduledFor: at(Int64(n)), startedAt: at(Int64(n)))
                try store.apply([
                    .fired(job: "a", scheduledFor: at(Int64(n))), .runStarted(r),
                    .runFinished(runID: r.id, outcome: .success(exitCode: 0), at: at(Int64(n) + 1)),
                ])
            }
        }
        do {
            let store = try SQLiteStateStore(path: path, retention: retention, options: options)
            try finishedRuns(store, 5)
            try store.markAlive(now: at(100))
            #expect(try eventually { try store.history(job: "a", limit: 10).count == 2 })
            try store.close()
        }
        do {
            // Restarted 10 minutes later: the first mark does not prune.
            let store = try SQLiteStateStore(path: path, retention: retention, options: options)
            try finishedRuns(store, 3)
            try store.markAlive(now: at(700))
            store.background.sync()  // where a prune would have run
            try store.flush()
            #expect(try store.history(job: "a", limit: 10).count == 5)
            try store.close()
        }
        do {
            // Restarted past the interval since that prune: the first mark prunes.
            let store = try SQLiteStateStore(path: path, retention: retention, options: options)
            try store.markAlive(now: at(100 + 3600))
            #expect(try eventually { try store.history(job: "a", limit: 10).count == 2 })
            try finishedRuns(store, 3)
            try store.close()
        }
        do {
            // The clock set back by a day: the stored time is in the future, and counts as long ago.
            let store = try SQLiteStateStore(path: path, retention: retention, options: options)
            try store.markAlive(now: at(100 - 86_400))
            #expect(try eventually { try store.history(job: "a", limit: 10).count == 2 })
            try store.close()
        }
    }
}
