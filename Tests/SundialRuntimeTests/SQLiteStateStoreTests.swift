import Foundation
import SundialCore
import SundialRuntime
import SundialTesting
import Testing

@Suite("SQLiteStateStore", .offPool)
struct SQLiteStateStoreTests {
    /// Options under which nothing is committed by the background queue during a test.
    static var manual: SQLiteStateStore.Options {
        var o = SQLiteStateStore.Options()
        o.batchInterval = .seconds(3600)
        o.checkpointInterval = .seconds(3600)
        return o
    }

    /// What another process would see in the file right now (committed data only).
    static func committedLedgerRows(_ path: String) throws -> Int {
        try SQLiteProbe.int(path, "SELECT count(*) FROM ledger")
    }

    static func committedRuns(_ path: String) throws -> Int {
        try SQLiteProbe.int(path, "SELECT count(*) FROM runs")
    }

    @Test func batchedChangesWaitUntilFlush() throws {
        let dir = TempDir("batch")
        defer { dir.remove() }
        let path = dir.path + "/state.db"
        let store = try SQLiteStateStore(path: path, options: Self.manual)
        defer { try? store.close() }
        try store.apply([.planned(LedgerEntry(job: "a", scheduledFor: at(1), disposition: .missed, at: at(1)))])
        #expect(try Self.committedLedgerRows(path) == 0)
        try store.flush()
        #expect(try Self.committedLedgerRows(path) == 1)
    }

    /// Power-loss safety does not wait for the checkpoint (issue 15: checkpoints are spaced out
    /// to save flash): a commit's WAL is synced within ``SQLiteStateStore/Options/walSyncInterval``
    /// on its own, once for all the commits of the interval, and not at all without a commit.
    @Test func theWALIsSyncedSoonAfterACommitWithoutWaitingForTheCheckpoint() async throws {
        let dir = TempDir("walsync")
        defer { dir.remove() }
        let path = dir.path + "/state.db"
        var options = Self.manual
        options.walSyncInterval = .seconds(1)
        let store = try SQLiteStateStore(path: path, options: options)
        defer { try? store.close() }
        try await Task.sleep(for: .milliseconds(200))
        #expect(store.walSyncCount == 0)
        try store.apply([.fired(job: "a", scheduledFor: at(1))])
        try store.apply([.fired(job: "b", scheduledFor: at(1))])
        _ = try await waitUntil(timeout: .seconds(10)) { store.walSyncCount != 0 }
        #expect(store.walSyncCount == 1)
        // The checkpoint (an hour away here) has not copied anything into the database file:
        // the WAL still holds the commits.
        var st = stat()
        #expect(stat(path + "-wal", &st) == 0 && st.st_size > 0)
    }

    /// A `state.db` that is a symbolic link to a file elsewhere (config management placing the
    /// database on a data partition): SQLite writes its WAL beside the real file, and that is the
    /// file synced. Also: writes outside the batched commits (a notification queued) are synced
    /// as well.
    @Test func theWALBesideTheRealFileIsSyncedWhenTheDatabaseIsASymbolicLink() async throws {
        let dir = TempDir("walsymlink")
        defer { dir.remove() }
        try #require(mkdir(dir.path + "/data", 0o700) == 0)
        let real = dir.path + "/data/state.db"
        let link = dir.path + "/state.db"
        try #require(symlink(real, link) == 0)
        var options = Self.manual
        options.walSyncInterval = .milliseconds(100)
        // Created through the link: SQLite follows it and puts the WAL beside the real file.
        let store = try SQLiteStateStore(path: link, options: options)
        defer { try? store.close() }
        var st = stat()
        #expect(stat(real + "-wal", &st) == 0)
        #expect(lstat(link + "-wal", &st) != 0)
        let before = store.walSyncCount
        _ = try store.enqueueNotification(payload: "{}", at: at(1), capacity: 10)
        _ = try await waitUntil(timeout: .seconds(10)) { store.walSyncCount != before }
        #expect(store.walSyncCount == before + 1)
        #expect(store.walSyncFailures == 0)
    }

    /// A sync that fails (here the WAL's name is made a symbolic-link loop, so opening it fails
    /// with ELOOP) is reported once by the next ``SQLiteStateStore/markAlive(now:)``, which the
    /// agent logs as `state.error`; the call after that is quiet again.
    @Test func aWALSyncThatFailsIsReportedOnce() async throws {
        let dir = TempDir("walfail")
        defer { dir.remove() }
        let path = dir.path + "/state.db"
        var options = Self.manual
        options.walSyncInterval = .milliseconds(100)
        let store = try SQLiteStateStore(path: path, options: options)
        defer { try? store.close() }
        try store.markAlive(now: at(1))
        // SQLite keeps its own descriptor of the WAL; only the name is replaced.
        try #require(unlink(path + "-wal") == 0)
        try #require(symlink(path + "-wal", path + "-wal") == 0)
        try store.apply([.fired(job: "a", scheduledFor: at(1))])
        _ = try await waitUntil(timeout: .seconds(10)) { store.walSyncFailures != 0 }
        #expect(store.walSyncFailures == 1)
        #expect(throws: StateError.self) { try store.markAlive(now: at(2)) }
        try store.markAlive(now: at(3))
        _ = unlink(path + "-wal")
    }

    /// Checkpoints are far apart (``SQLiteStateStore/Options/checkpointInterval``, 5 minutes, to
    /// save flash), but a WAL that has grown to ``SQLiteStateStore/Options/checkpointWALFrames``
    /// is copied into the database at once, so a busy agent's log stays small.
    @Test func aWALThatReachesTheFrameLimitIsCheckpointedAtOnce() async throws {
        let dir = TempDir("walframes")
        defer { dir.remove() }
        // A fresh database's migrations leave their frames in the WAL; closing copies them into
        // the file and truncates the WAL, so the reopened store counts from an empty one.
        try SQLiteStateStore(path: dir.path + "/state.db", options: Self.manual).close()
        var options = Self.manual  // the interval is an hour
        options.checkpointWALFrames = 40
        let store = try SQLiteStateStore(path: dir.path + "/state.db", options: options)
        defer { try? store.close() }
        try store.apply([.fired(job: "a", scheduledFor: at(0))])
        #expect(store.checkpointCount == 0)
        // Durable changes commit one by one: a few frames each, over 40 in all.
        for i in 1...40 { try store.apply([.fired(job: "j\(i % 8)", scheduledFor: at(Int64(i)))]) }
        _ = try await waitUntil(timeout: .seconds(10)) { store.checkpointCount != 0 }
        #expect(store.checkpointCount >= 1)
    }

    /// Below the frame limit, the first write after the interval has passed makes a checkpoint;
    /// writes before it do not (the checkpoint is made by writes, never by a timer that would
    /// keep the worker's thread alive in an idle agent).
    @Test func theFirstWriteAfterTheIntervalMakesACheckpoint() async throws {
        let dir = TempDir("walinterval")
        defer { dir.remove() }
        var options = Self.manual
        options.checkpointInterval = .seconds(2)
        let start = ContinuousClock.now
        let store = try SQLiteStateStore(path: dir.path + "/state.db", options: options)
        defer { try? store.close() }
        try store.apply([.fired(job: "a", scheduledFor: at(1))])
        try store.flush()
        #expect(store.checkpointCount == 0)  // written within the interval of the open
        var n: Int64 = 2
        while store.checkpointCount == 0, ContinuousClock.now < start + .seconds(15) {
            try await Task.sleep(for: .milliseconds(100))
            try store.apply([.fired(job: "a", scheduledFor: at(n))])
            n += 1
        }
        #expect(store.checkpointCount == 1)
        #expect(ContinuousClock.now - start >= .seconds(2))
    }

    @Test func warmUpGivesEveryJobItsRowAndChangesNothingElse() throws {
        let dir = TempDir("warm")
        defer { dir.remove() }
        let path = dir.path + "/state.db"
        let store = try SQLiteStateStore(path: path, options: Self.manual)
        defer { try? store.close() }
        try store.warmUp(jobs: ["a", "b", "c"])
        try store.warmUp(jobs: ["a", "b", "c", "d"])  // idempotent
        #expect(try SQLiteProbe.texts(path, "SELECT name FROM jobs ORDER BY name") == ["a", "b", "c", "d"])
        #expect(try Self.committedRuns(path) == 0)
        #expect(try Self.committedLedgerRows(path) == 0)
        // A job's fire after the warm-up lands on the row the warm-up made.
        try store.apply([.fired(job: "b", scheduledFor: at(5))])
        #expect(try store.restore().lastFired == ["b": at(5)])
    }

    @Test func aDurableChangeCommitsEverythingBeforeIt() throws {
        let dir = TempDir("durable")
        defer { dir.remove() }
        let path = dir.path + "/state.db"
        let store = try SQLiteStateStore(path: path, options: Self.manual)
        defer { try? store.close() }
        try store.apply([.planned(LedgerEntry(job: "a", scheduledFor: at(1), disposition: .missed, at: at(1)))])
        let r = RunRecord(id: rid(1), job: "a", trigger: .schedule, scheduledFor: at(2), startedAt: at(2))
        try store.apply([.fired(job: "a", scheduledFor: at(2)), .runStarted(r)])
        // No flush: the fire and the run are in the file at once, with the change queued before them.
        #expect(try Self.committedRuns(path) == 1)
        #expect(try Self.committedLedgerRows(path) == 1)
    }

    @Test func aFullBatchIsCommittedWithoutWaitingForTheInterval() throws {
        let dir = TempDir("fullbatch")
        defer { dir.remove() }
        let path = dir.path + "/state.db"
        var options = Self.manual
        options.maxBatch = 10
        let store = try SQLiteStateStore(path: path, options: options)
        defer { try? store.close() }
        for i in 0..<10 {
            try store.apply([.planned(LedgerEntry(job: "a", scheduledFor: at(Int64(i)), disposition: .missed, at: at(1)))])
        }
        // The batch interval is an hour: only the size rule can commit these.
        #expect(try eventually { try Self.committedLedgerRows(path) == 10 })
    }

    @Test func theBatchIntervalCommitsOnItsOwn() throws {
        let dir = TempDir("interval")
        defer { dir.remove() }
        let path = dir.path + "/state.db"
        var options = SQLiteStateStore.Options()
        options.batchInterval = .milliseconds(5)
        let store = try SQLiteStateStore(path: path, options: options)
        defer { try? store.close() }
        try store.apply([.planned(LedgerEntry(job: "a", scheduledFor: at(1), disposition: .missed, at: at(1)))])
        #expect(try eventually { try Self.committedLedgerRows(path) == 1 })
    }

    @Test func reopenAfterCloseKeepsEverything() throws {
        let dir = TempDir("reopen")
        defer { dir.remove() }
        let path = dir.path + "/state.db"
        let r = RunRecord(id: rid(1), job: "a", trigger: .schedule, scheduledFor: at(60), startedAt: at(60))
        do {
            let store = try SQLiteStateStore(path: path, options: Self.manual)
            try store.apply([.fired(job: "a", scheduledFor: at(60)), .runStarted(r)])
            try store.apply([.planned(LedgerEntry(job: "a", scheduledFor: at(60), disposition: .ran(r.id), at: at(60)))])
            try store.markAlive(now: at(90))
            try store.close()
            #expect(throws: StateError.self) { try store.apply([.fired(job: "a", scheduledFor: at(61))]) }
        }
        // After close the WAL is checkpointed into the main file.
        let wal = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0
        #expect(wal == 0)
        let store = try SQLiteStateStore(path: path, options: Self.manual)
        defer { try? store.close() }
        #expect(try store.restore() == RestoredState(lastFired: ["a": at(60)], inFlight: [r], lastSeen: at(90)))
        #expect(try store.ledger(job: "a", since: t0).count == 1)
    }

    @Test func walModeAndNormalSync() throws {
        let dir = TempDir("pragmas")
        defer { dir.remove() }
        let store = try SQLiteStateStore(path: dir.path + "/state.db")
        try store.close()
        #expect(try SQLiteProbe.texts(dir.path + "/state.db", "PRAGMA journal_mode") == ["wal"])
        #expect(try SQLiteProbe.int(dir.path + "/state.db", "SELECT count(*) FROM grdb_migrations") == 10)  // v1 to v10
    }

    // MARK: - Corruption and --reset-state

    @Test func aFileThatIsNotADatabaseGivesAClearError() throws {
        let dir = TempDir("garbage")
        defer { dir.remove() }
        let path = dir.path + "/state.db"
        try Data(repeating: 0x5A, count: 10_000).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: StateError.self) { try SQLiteStateStore(path: path) }
        #expect(error?.code == .corrupt)
        #expect(error?.description.contains(path) == true)
        #expect(error?.description.contains("--reset-state") == true)
    }

    @Test func aTruncatedDatabaseGivesAClearErrorAndResetMovesItAside() throws {
        let dir = TempDir("truncated")
        defer { dir.remove() }
        let path = dir.path + "/state.db"
        do {
            let store = try SQLiteStateStore(path: path)
            for i in 0..<2_000 {
                let r = RunRecord(id: rid(i), job: "job-\(i % 7)", trigger: .schedule, scheduledFor: at(Int64(i)), startedAt: at(Int64(i)))
                try store.apply([
                    .fired(job: r.job, scheduledFor: at(Int64(i))), .runStarted(r), .runFinished(runID: r.id, outcome: .success(exitCode: 0), at: at(Int64(i))),
                ])
            }
            try store.close()
        }
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        #expect(size > 40_000)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(size / 2))
        try handle.close()

        let error = #expect(throws: StateError.self) { try SQLiteStateStore(path: path) }
        #expect(error?.code == .corrupt)
        #expect(error?.description.contains(path) == true)

        let aside = try SQLiteStateStore.moveAside(databaseAt: path, now: Instant(unixMillis: 1_780_000_000_123))
        #expect(aside == path + ".corrupt-20260528T202640.123Z")
        #expect(FileManager.default.fileExists(atPath: aside!))
        #expect(!FileManager.default.fileExists(atPath: path))
        let fresh = try SQLiteStateStore(path: path)
        defer { try? fresh.close() }
        #expect(try fresh.restore() == RestoredState())
    }

    /// A hand-edited database can hold what Sundial never writes: a REAL in an INTEGER column
    /// (SQLite keeps `1e19` or `9e999` as REAL; converting one beyond Int64 trapped) or an
    /// instant past the year 9999 (formatting or arithmetic on it could trap). Both are damage:
    /// the clear error that names --reset-state, not a crash at every start.
    @Test(arguments: ["1e19", "9e999", "-9e999", "4611686018427387904", "'soon'"])
    func aTimeNoSundialWritesIsADamagedDatabaseNotATrap(value: String) throws {
        let dir = TempDir("real")
        defer { dir.remove() }
        let path = dir.path + "/state.db"
        do {
            let store = try SQLiteStateStore(path: path)
            try store.apply([.fired(job: "a", scheduledFor: at(0))])
            try store.close()
        }
        try SQLiteConnection(path: path).execute(script: "UPDATE jobs SET last_fired = \(value)")
        let error = #expect(throws: StateError.self) {
            let store = try SQLiteStateStore(path: path)
            defer { try? store.close() }
            _ = try store.restore()
        }
        #expect(error?.code == .corrupt)
        #expect(error?.description.contains("--reset-state") == true)
        // A REAL that fits is read as the integer it stands for (60000.5 stays REAL in an
        // INTEGER column; 60000.0 would be stored as an integer).
        try SQLiteConnection(path: path).execute(script: "UPDATE jobs SET last_fired = 60000.5")
        let store = try SQLiteStateStore(path: path)
        defer { try? store.close() }
        #expect(try store.restore().lastFired == ["a": Instant(unixMillis: 60_000)])
    }

    @Test func moveAsideWithoutAFileDoesNothing() throws {
        let dir = TempDir("noaside")
        defer { dir.remove() }
        #expect(try SQLiteStateStore.moveAside(databaseAt: dir.path + "/state.db", now: t0) == nil)
    }

    @Test func aDatabaseFromANewerSundialIsRefused() throws {
        let dir = TempDir("newer")
        defer { dir.remove() }
        let path = dir.path + "/state.db"
        try SQLiteStateStore(path: path).close()
        try SQLiteConnection(path: path).execute(script: "INSERT INTO grdb_migrations(identifier) VALUES ('v99')")
        let error = #expect(throws: StateError.self) { try SQLiteStateStore(path: path) }
        #expect(error?.code == .newerSchema)
    }

    // MARK: - Single instance

    @Test func theStateDirectoryIsCreatedPrivateAndLockedOnce() throws {
        let dir = TempDir("lock")
        defer { dir.remove() }
        let statePath = dir.path + "/a/b/state"
        let held = try StateDirectory.acquire(path: statePath)
        let mode = try FileManager.default.attributesOfItem(atPath: statePath)[.posixPermissions] as! Int
        #expect(mode == 0o700)
        #expect(held.databasePath == statePath + "/state.db")
        #expect(held.defaultSocketPath == statePath + "/sundial.sock")

        let error = #expect(throws: StateError.self) { try StateDirectory.acquire(path: statePath) }
        #expect(error?.code == .locked)
        #expect(error?.holderPID == getpid())
        #expect(error?.description.contains("pid \(getpid())") == true)
        #expect(error?.description.contains(statePath) == true)

        held.release()
        let again = try StateDirectory.acquire(path: statePath)
        again.release()
    }

    /// A database written by the last release built on GRDB (made by `sundial run` of 0.1.0 at
    /// `ca6b241` with two per-second jobs for 4 s) opens as it is: same migration log, same
    /// schema, its history intact. Upgrades must not cost a box its state.
    @Test func aDatabaseWrittenByTheGRDBReleaseOpensUnchanged() throws {
        let dir = TempDir("upgrade")
        defer { dir.remove() }
        let fixture = String(#filePath.dropLast("SQLiteStateStoreTests.swift".count)) + "Fixtures/state-grdb-0.1.0.db"
        let path = dir.path + "/state.db"
        try FileManager.default.copyItem(atPath: fixture, toPath: path)
        let store = try SQLiteStateStore(path: path, options: Self.manual)
        defer { try? store.close() }
        let restored = try store.restore()
        let last = Instant(unixMillis: 1_796_178_514_000)
        #expect(restored.lastFired == ["tick": last, "fails": last])
        #expect(restored.inFlight.isEmpty)
        let fails = try store.history(job: "fails", limit: 10)
        #expect(fails.count == 4)
        #expect(fails.allSatisfy { $0.outcome == .failure(exitCode: 1) && $0.attempts == 1 })
        #expect(try store.history(job: "tick", limit: 10).allSatisfy { $0.outcome == .success(exitCode: 0) })
        #expect(try SQLiteProbe.int(path, "SELECT count(*) FROM grdb_migrations") == 10)  // v4 to v10 added
        // And it takes new writes on the rows it had.
        try store.apply([.fired(job: "tick", scheduledFor: last + .seconds(1))])
        #expect(try store.restore().lastFired["tick"] == last + .seconds(1))
    }

    /// The retention is applied by the store itself, at the first alive mark and then every
    /// `pruneInterval`: before, nothing in the agent called `prune`, and history grew forever.
    @Test func aliveMarksApplyTheRetentionOnTheBackgroundWorker() throws {
        let dir = TempDir("autoprune")
        defer { dir.remove() }
        var options = SQLiteStateStore.Options()
        options.pruneInterval = .seconds(3600)
        let store = try SQLiteStateStore(path: dir.path + "/state.db", retention: StateRetention(maxRunsPerJob: 2), options: options)
        defer { try? store.close() }
        func finishedRuns(_ range: Range<Int>) throws {
            for i in range {
                let r = RunRecord(id: rid(i), job: "a", trigger: .schedule, scheduledFor: at(Int64(i)), startedAt: at(Int64(i)))
                try store.apply([
                    .fired(job: "a", scheduledFor: at(Int64(i))), .runStarted(r),
                    .runFinished(runID: r.id, outcome: .success(exitCode: 0), at: at(Int64(i) + 1)),
                ])
            }
        }
        try finishedRuns(0..<5)
        try store.markAlive(now: at(10))
        #expect(try eventually { try store.history(job: "a", limit: 10).count == 2 })
        // Within the interval, marks do not prune again...
        try finishedRuns(5..<8)
        try store.markAlive(now: at(20))
        try store.flush()
        #expect(try store.history(job: "a", limit: 10).count == 5)
        // ...and after it they do.
        try store.markAlive(now: at(3700))
        #expect(try eventually { try store.history(job: "a", limit: 10).map(\.id) == [rid(7), rid(6)] })
    }

    /// The status pages' bulk reads answer what one `history` call per job would, in one query.
    @Test func bulkReadsMatchHistoryPerJob() throws {
        let dir = TempDir("bulk")
        defer { dir.remove() }
        let store = try SQLiteStateStore(path: dir.path + "/state.db", options: Self.manual)
        defer { try? store.close() }
        var n = 0
        for job in ["a", "b", "c"] {
            for i in 0..<(job == "c" ? 1 : 5) {
                n += 1
                let r = RunRecord(id: rid(n), job: job, trigger: .schedule, scheduledFor: at(Int64(i * 10)), startedAt: at(Int64(i * 10)))
                try store.apply([.fired(job: job, scheduledFor: r.scheduledFor!), .runStarted(r)])
                if i < 4 { try store.apply([.runFinished(runID: r.id, outcome: .success(exitCode: 0), at: at(Int64(i * 10 + 1)))]) }
            }
        }
        let bulk = try store.recentRuns(limit: 3)
        for job in ["a", "b", "c"] { #expect(bulk[job] == (try store.history(job: job, limit: 3)), "\(job)") }
        #expect(bulk.count == 3)
        // Since 25 s: runs finished at or after it, and the one still in flight (started at 40 s).
        let since = try store.runs(since: at(25), limit: 10)
        #expect(since["a"]?.map(\.startedAt) == [at(40), at(30)])
        #expect(since["c"] == nil)
    }

    @Test func aStatePathThatIsAFileIsAnError() throws {
        let dir = TempDir("notdir")
        defer { dir.remove() }
        _ = FileManager.default.createFile(atPath: dir.path + "/file", contents: Data())
        let error = #expect(throws: StateError.self) { try StateDirectory.acquire(path: dir.path + "/file") }
        #expect(error?.code == .io)
    }
}

@Suite("StateReader (read-only, beside a running agent)", .offPool)
struct StateReaderTests {
    /// What the CLI shows when no agent answers: the committed history, the ledger, stored
    /// output — read while a store (the agent) still has the file open and keeps writing.
    @Test func readsCommittedStateBesideAWriterAndNeverWrites() throws {
        let dir = TempDir("reader")
        defer { dir.remove() }
        let path = dir.path + "/state.db"
        let store = try SQLiteStateStore(path: path)
        defer { try? store.close() }
        let r = RunRecord(id: rid(1), job: "backup", trigger: .schedule, scheduledFor: at(0), startedAt: at(0))
        try store.apply([.fired(job: "backup", scheduledFor: at(0)), .runStarted(r)])
        try store.apply([
            .outputStored(RunOutputRecord(runID: r.id, attempt: 1, text: "copied 3 files\n")),
            .runFinished(runID: r.id, outcome: .failure(exitCode: 2), at: at(5)),
            .planned(LedgerEntry(job: "backup", scheduledFor: at(0), disposition: .ran(r.id), at: at(0))),
        ])
        try store.flush()
        let reader = try StateReader(path: path)
        #expect(try reader.history(job: "backup", limit: 5).map(\.outcome) == [.failure(exitCode: 2)])
        #expect(try reader.latestRuns()["backup"]?.id == rid(1))
        #expect(try reader.ledger(job: "backup", since: at(0)).map(\.disposition) == [.ran(rid(1))])
        #expect(try reader.output(run: rid(1)).map(\.text) == ["copied 3 files\n"])
        #expect(try reader.jobs() == ["backup"])
        #expect(try reader.restore().lastFired == ["backup": at(0)])
        // The writer goes on; the reader sees each new commit.
        try store.apply([.fired(job: "backup", scheduledFor: at(60))])
        #expect(try reader.restore().lastFired == ["backup": at(60)])
    }

    @Test func aMissingOrForeignFileIsAClearError() throws {
        let dir = TempDir("reader-bad")
        defer { dir.remove() }
        let missing = #expect(throws: StateError.self) { try StateReader(path: dir.path + "/none.db") }
        #expect(missing?.code == .io)
        #expect(FileManager.default.fileExists(atPath: dir.path + "/none.db") == false)  // not created
        let other = dir.path + "/other.db"
        try SQLiteConnection(path: other).execute(script: "CREATE TABLE t (x)")
        let foreign = #expect(throws: StateError.self) { try StateReader(path: other) }
        #expect(foreign?.code == .corrupt)
    }
}
