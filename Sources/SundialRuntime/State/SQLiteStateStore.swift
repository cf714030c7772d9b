import SundialCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The agent's ``StateStore``: an SQLite database (`STATE/state.db`), through SQLite's C API
/// (``SQLiteConnection``; why not GRDB is said there).
///
/// ## Durability and the firing path
/// - **WAL mode, `synchronous=NORMAL`.** A commit is then one `write(2)` to the WAL, no `fsync`:
///   tens of microseconds, so the scheduler never waits on the disk (an SD card's `fsync` can take
///   100 ms). A committed transaction survives a crash of the process (`kill -9`, OOM killer) —
///   the data is in the kernel's page cache. It can be lost only on power loss or a kernel crash,
///   and only for ``Options/walSyncInterval`` (1 s): that long after a commit, the background
///   worker `fdatasync`s the WAL file, which is all a power cut needs (SQLite replays the WAL's
///   checksummed frames on open). The WAL's pages are copied into the database file less often,
///   by a passive checkpoint on a second connection, so it never blocks a commit: at most every
///   ``Options/checkpointInterval`` (5 minutes), or when the WAL reaches
///   ``Options/checkpointWALFrames``. Each checkpoint rewrites every database page changed since
///   the last, and on flash a page changed every minute is then written once per interval rather
///   than every minute (issue 15; docs/benchmarks.md, "Flash wear"). Automatic checkpoints on
///   the writer are off for the same reason.
/// - **Ordering.** Changes that decide whether a scheduled instant runs again
///   (``StateChange/isDurableOnApply``: `.fired`, `.runStarted`) are committed before `apply`
///   returns, in one small transaction together with everything still pending before them. The
///   agent applies `[.fired, .runStarted]` before it launches a run, so after a `kill -9` at any
///   moment a restart finds the instant consumed (never fired twice) and the run in flight
///   (recorded `interrupted`). The rest (attempts, `.runFinished`, the ledger, `markAlive`) is
///   batched by a background queue: committed ``Options/batchInterval`` (100 ms) after the first
///   pending change, or at once when ``Options/maxBatch`` are pending; `flush()` commits it all
///   (shutdown, tests). So a run that finished within those 5 ms before a `kill -9` is recorded
///   `interrupted` on restart; it is never *fired* again.
/// - **Failures.** If a commit fails (full disk, I/O error), its changes stay pending, in order,
///   and are retried with the next commit; the error is thrown by the next `apply`/`flush`.
///
/// ## Retention
/// ``prune(now:)`` applies a ``StateRetention`` (defaults: 30 days, 500 runs and 1,440 ledger
/// entries per job, stored output for 20 runs per job and 64 MiB in all), one job per
/// transaction so that it never holds the writer for long. `markAlive` runs it hourly.
///
/// ## Corruption
/// Opening runs `PRAGMA quick_check`, unless the file is exactly as this store's last clean
/// close left it (``CleanCloseMark``: the check reads the whole file, a second or more on an SD
/// card at the retention's bounds); a damaged, truncated or foreign file throws a
/// ``StateError`` with code `.corrupt` naming the file. ``moveAside(databaseAt:now:)`` implements
/// `--reset-state`: it renames the file (and its `-wal`/`-shm`) to `state.db.corrupt-<time>`.
public final class SQLiteStateStore: StateStore {
    public struct Options: Hashable, Sendable {
        /// How long a batched change may wait before it is committed.
        /// 100 ms: the ends of a burst of runs (100 jobs due together that finish within a few
        /// tens of milliseconds) share one commit; each commit rewrites every page it touches in
        /// the WAL, so on flash fewer commits are fewer bytes (issue 15). The cost: a run that
        /// ended within 100 ms before a `kill -9` is recorded `interrupted`.
        public var batchInterval: Duration = .milliseconds(100)
        /// Pending changes that trigger a commit at once.
        public var maxBatch: Int = 512
        /// Longest delay between a commit and the `fdatasync` of the WAL that makes it safe from
        /// a power cut.
        public var walSyncInterval: Duration = .seconds(1)
        /// Least time between two checkpoints, which copy the WAL into the database file (the
        /// first write after it has passed makes the next one). Longer saves flash: each
        /// checkpoint writes every database page changed since the
        /// last, and the pages a box's fires change (the jobs' rows, the newest leaves of the
        /// ledger and of the runs) are mostly the same from one minute to the next, so five
        /// minutes of minutely fires cost one copy of them rather than five. It changes nothing
        /// to durability (the WAL is synced on its own, ``walSyncInterval``); the cost is a
        /// longer WAL, bounded by ``checkpointWALFrames``.
        public var checkpointInterval: Duration = .seconds(300)
        /// A commit that leaves at least this many frames in the WAL (4 MiB with the 1 KiB pages
        /// of a new database) has it checkpointed at once rather than at the interval: a busy
        /// agent (100 per-second jobs) reaches it in about half a minute, and the log stays small
        /// enough to replay quickly after a crash and for readers to search.
        public var checkpointWALFrames: Int32 = 4096

        /// The defaults, with ``checkpointInterval`` from the environment variable
        /// `SUNDIAL_CHECKPOINT_INTERVAL_MS` (1,000 to 3,600,000) when set: for benchmarks that
        /// compress time (bench/run's typical box stands 15 s for a minute, and so a quarter of
        /// the interval for the interval) and for diagnostics.
        public static func fromEnvironment() -> Options {
            var o = Options()
            if let raw = getenv("SUNDIAL_CHECKPOINT_INTERVAL_MS"), let ms = Int64(String(cString: raw)) {
                o.checkpointInterval = .milliseconds(min(max(1000, ms), 3_600_000))
            }
            return o
        }
        /// A WAL larger than this after a checkpoint gets a `TRUNCATE` checkpoint, which waits for
        /// the writer briefly: under a steady stream of commits a passive checkpoint never catches
        /// up, and the WAL would grow without bound.
        public var walLimitBytes: Int64 = 64 << 20
        /// Pending changes kept while commits fail; beyond it the oldest batched ones are dropped.
        public var maxPending: Int = 100_000
        /// How often the retention is applied (see ``SQLiteStateStore/markAlive(now:)``).
        public var pruneInterval: Duration = .seconds(3600)
        /// Run `PRAGMA quick_check` on open (reads the whole file once: ~0.1 s of CPU per 40 MB)
        /// when the file is not as the last clean close left it (``CleanCloseMark``).
        public var checkOnOpen: Bool = true
        /// The page cache of each of the two connections, in KiB (`PRAGMA cache_size`). SQLite's
        /// default, 2,000 KiB each, filled up at start with the pages that restoring 10,000 jobs
        /// reads and then stayed as private memory of an idle agent; a commit of a fire touches
        /// a few dozen 1 KiB pages, and the kernel's page cache keeps the file besides.
        public var cacheKiB: Int = 256
        /// Write each ended run to the fleet outbox (`--fleet` only; SQLiteStateStore+Outbox.swift).
        public var fleetOutbox: Bool = false
        /// Outbox rows kept while the fleet's database is away; beyond it the oldest are dropped
        /// (and counted). 100,000 runs: over a day of a per-second job.
        public var fleetOutboxCapacity: Int = 100_000
        public init() {}
    }

    /// The database file.
    public let path: String
    /// Whether opening ran `PRAGMA quick_check` (it found the file ok, or the open threw).
    let checkedOnOpen: Bool
    /// The file the writer opened, and when it was last checked whole (`nil`: never, with
    /// ``Options/checkOnOpen`` off): what a clean close records (``CleanCloseMark``).
    private let opened: CleanCloseMark.FileIdentity?
    private let checkedAtUnixSeconds: Int64?
    public let retention: StateRetention
    public let options: Options

    /// The one connection that writes (serialised by its lock).
    let writer: SQLiteDatabase
    /// The write-ahead log's file (``SQLiteConnection/walPath``), synced by ``scheduleWalSync()``.
    let walPath: String
    /// A second connection for queries and checkpoints, so neither blocks a commit (WAL lets
    /// readers and a passive checkpoint run beside the writer).
    let aux: SQLiteDatabase
    let pending = Mutex(Pending())
    /// Job name → `jobs.id`, touched only inside the writer's serialised closures.
    let jobKeys = Mutex([JobID: Int64]())
    /// When the retention was last applied (kept in `agent.last_pruned` across restarts).
    private let lastPrune: Mutex<Instant?>
    /// Batched commits and checkpoints (not a `DispatchQueue`: see ``SerialWorker``).
    let background: SerialWorker

    enum Op: Sendable {
        case change(StateChange)
        case alive(Instant)
        /// Outbox rows up to this id were published (``fleetOutboxPublished(through:)``).
        case outboxDone(Int64)
    }

    struct Pending {
        var ops: [Op] = []
        var commitScheduled = false
        /// A checkpoint is queued on the background worker.
        var checkpointQueued = false
        /// When the last checkpoint was made (or the store opened): ``SystemClock``'s monotonic
        /// milliseconds (which count a suspend, as the interval should).
        var lastCheckpointMs = SystemClock().monotonicNow()
        /// The WAL's frames right after the last checkpoint (a few when it restarted).
        var framesAfterCheckpoint: Int32 = 0
        var walSyncScheduled = false
        /// WAL syncs and checkpoints done (tests).
        var walSyncs = 0
        var checkpoints = 0
        /// WAL syncs the kernel refused (`fdatasync` or `open` failed other than for a WAL that
        /// is not there), and the last `errno`.
        var walSyncFailures = 0
        var lastWalSyncErrno: Int32 = 0
        /// Failures already reported by ``markAlive(now:)``.
        var walSyncFailuresReported = 0
        var lastError: StateError?
        var dropped = 0
        var closed = false
    }

    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    ///
    /// - Throws: ``StateError`` `.corrupt` (damaged or not a database), `.newerSchema`, `.io`.
    public init(path: String, retention: StateRetention = .default, options: Options = Options()) throws {
        background = SerialWorker(name: "sundial-state")
        self.path = path
        self.retention = retention
        self.options = options
        // Before the database is opened: a crash from here on must leave no mark behind.
        let now = Int64(time(nil))
        let mark = CleanCloseMark(databasePath: path).consume(nowUnixSeconds: now)
        let check = options.checkOnOpen && mark == nil
        checkedOnOpen = check
        checkedAtUnixSeconds = options.checkOnOpen ? (check ? now : mark?.checkedAtUnixSeconds) : nil
        do {
            let cachePragma = "PRAGMA cache_size = -\(max(16, options.cacheKiB))"
            writer = try SQLiteDatabase(path: path)
            try writer.withConnection { db in
                // WAL and synchronous=NORMAL: see "Durability" above. No automatic checkpoints on
                // the writer (the background checkpoint does them, off the firing path).
                // journal_size_limit: when the WAL restarts after a checkpoint, give back the
                // space beyond the limit, so a burst does not leave a huge WAL file behind.
                // 1 KiB pages for a new database (an existing one keeps its size: changing it
                // needs a VACUUM): a commit writes each page it touches, whole, to the WAL, and
                // a fire touches a handful of B-tree leaves; at 4 KiB that was most of the
                // disk writes per fire (issue 15, flash wear). Ignored once the file has pages.
                try db.execute(script: "PRAGMA page_size = 1024; \(cachePragma)")
                try db.execute(
                    script:
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = \(options.walLimitBytes)"
                )
                if check {
                    let result = try db.rows("PRAGMA quick_check").map { try $0.text(0) }
                    if result != ["ok"] {
                        throw StateError(.corrupt, path: path, message: result.prefix(3).joined(separator: "; "))
                    }
                }
                let migrator = Self.migrator
                if try migrator.hasBeenSuperseded(db) {
                    throw StateError(.newerSchema, path: path, message: "unknown schema migrations")
                }
                try migrator.migrate(db)
            }
            opened = CleanCloseMark.FileIdentity(path: path)
            lastPrune = Mutex(
                try writer.withConnection { db in
                    try db.rows("SELECT last_pruned FROM agent WHERE id = 1").first?.optionalInstant(0)
                })
            walPath = try writer.withConnection { $0.walPath } ?? path + "-wal"
            try writer.withConnection { $0.countWALFrames() }
            aux = try SQLiteDatabase(path: path)
            try aux.withConnection { try $0.execute(script: "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0; \(cachePragma)") }
        } catch {
            throw Self.stateError(error, path: path)
        }
    }

    deinit {
        writer.close()
        aux.close()
    }

    /// Commits everything pending, checkpoints (so the file alone holds everything) and closes
    /// both connections, then marks the file cleanly closed (``CleanCloseMark``). Later calls
    /// throw ``StateError`` `.closed`.
    public func close() throws {
        try flush()
        pending.withLock { $0.closed = true }
        background.sync()
        _ = try? aux.withConnection { try $0.checkpoint(.truncate) }
        let damaged = writer.metCorruption || aux.metCorruption
        writer.close()
        aux.close()
        if !damaged, let opened, let checkedAtUnixSeconds {
            CleanCloseMark(databasePath: path).record(opened: opened, walPath: walPath, checkedAtUnixSeconds: checkedAtUnixSeconds)
        }
    }

    // MARK: - Writing

    public func apply(_ changes: [StateChange]) throws {
        guard !changes.isEmpty else { return }
        if changes.contains(where: \.isDurableOnApply) {
            try commit(adding: changes.map(Op.change))
        } else {
            try enqueue(changes.map(Op.change))
        }
    }

    /// Records the alive mark, and applies the retention (``prune(now:)``) on the background
    /// worker when ``Options/pruneInterval`` has passed since the last time, which the database
    /// remembers across restarts (a restart within the interval does not pay for it again; a
    /// last time in the future, after the clock was set back, counts as long ago): the agent
    /// marks itself alive every few minutes while it runs, so history stays bounded without a
    /// timer of its own.
    /// Also where a WAL sync the kernel refused since the last call is reported (as a thrown
    /// ``StateError``, which the agent logs as `state.error`): the sync runs on the background
    /// worker, which has no one to tell, and this is called on every wake-up of the agent.
    public func markAlive(now: Instant) throws {
        try enqueue([.alive(now)])
        let failed = pending.withLock { p -> (Int, Int32)? in
            guard p.walSyncFailures > p.walSyncFailuresReported else { return nil }
            defer { p.walSyncFailuresReported = p.walSyncFailures }
            return (p.walSyncFailures - p.walSyncFailuresReported, p.lastWalSyncErrno)
        }
        let due = lastPrune.withLock { last -> Bool in
            if let last, last <= now, now - last < options.pruneInterval { return false }
            last = now
            return true
        }
        // A failed prune is retried at the next interval; a failing disk shows in commits first.
        if due { background.async { [self] in try? prune(now: now) } }
        if let (count, code) = failed {
            throw StateError(
                .io, path: walPath,
                message:
                    "cannot sync the write-ahead log (\(String(cString: strerror(code))), \(count) time\(count == 1 ? "" : "s")): what was committed since the last good sync may not survive a power cut"
            )
        }
    }

    public func flush() throws { try commit(adding: []) }

    func enqueueOutboxDone(_ id: Int64) throws { try enqueue([.outboxDone(id)]) }

    private func enqueue(_ ops: [Op]) throws {
        let (scheduleNow, scheduleLater, error) = try pending.withLock { p -> (Bool, Bool, StateError?) in
            guard !p.closed else { throw StateError(.closed, path: path, message: "the state store is closed") }
            p.ops.append(contentsOf: ops)
            if p.ops.count > options.maxPending {
                let excess = p.ops.count - options.maxPending
                p.ops.removeFirst(excess)
                p.dropped += excess
            }
            let error = p.lastError
            p.lastError = nil
            if p.ops.count >= options.maxBatch { return (true, false, error) }
            if !p.commitScheduled {
                p.commitScheduled = true
                return (false, true, error)
            }
            return (false, false, error)
        }
        if scheduleNow {
            background.async { [self] in try? commit(adding: []) }
        } else if scheduleLater {
            let scheduled = background.asyncAfter(milliseconds: options.batchInterval.milliseconds) { [self] in
                try? commit(adding: [])
            }
            // No thread for the batch timer (resources exhausted): commit now, on the caller.
            if !scheduled { try? commit(adding: []) }
        }
        if let error { throw error }
    }

    /// Commits everything pending plus `extra`, in order, in one transaction. The pending ops are
    /// taken *inside* the writer's serialised closure, so commits from the batching queue and from
    /// `apply` can never reorder changes.
    private func commit(adding extra: [Op]) throws {
        if extra.isEmpty {
            let nothing = pending.withLock { p in
                p.commitScheduled = false
                return p.ops.isEmpty && p.lastError == nil
            }
            if nothing {
                // An empty queue is not "all committed": the worker may have taken a batch and be
                // inside its transaction, holding the writer's lock. Taking that lock waits for
                // it, so a flush (and the read after it) sees every change applied before; when
                // that commit failed, it put its batch back, and this commit retries it.
                try writer.withConnection { _ in }
                if pending.withLock({ $0.ops.isEmpty && $0.lastError == nil }) { return }
            }
        }
        var frames: Int32 = 0
        do {
            try writer.withConnection { db in
                defer { frames = db.walFrames }
                let (ops, earlier) = try pending.withLock { p -> ([Op], StateError?) in
                    guard !p.closed else { throw StateError(.closed, path: path, message: "the state store is closed") }
                    let ops = p.ops + extra
                    p.ops = []
                    let e = p.lastError
                    p.lastError = nil
                    return (ops, e)
                }
                if ops.isEmpty {
                    if let earlier { throw earlier }
                    return
                }
                do {
                    try db.transaction {
                        for op in ops { try write(op, in: db) }
                    }
                } catch {
                    jobKeys.withLock { $0.removeAll() }  // ids inserted by the rolled-back transaction
                    let e = Self.stateError(error, path: path)
                    pending.withLock { p in
                        p.ops.insert(contentsOf: ops, at: 0)
                        p.lastError = e
                    }
                    throw e
                }
            }
        } catch {
            throw Self.stateError(error, path: path)
        }
        wrote(walFrames: frames)
    }

    /// Every committed write calls this (batched commits, notifications, pruning, the warm-up):
    /// its WAL frames are then synced within ``Options/walSyncInterval``, and it asks for a
    /// checkpoint when one is due (``scheduleCheckpoint(walFrames:)``), whichever path made it.
    ///
    /// - Parameter walFrames: the WAL's frames after the write, when the caller read them under
    ///   the writer's lock already (the batched and durable commits: the firing path takes that
    ///   lock once); `nil` reads them here.
    func wrote(walFrames: Int32? = nil) {
        scheduleWalSync()
        let frames = walFrames ?? (try? writer.withConnection { $0.walFrames }) ?? 0
        scheduleCheckpoint(walFrames: frames)
    }

    /// Syncs the WAL ``Options/walSyncInterval`` after a commit (one sync for all the commits of
    /// the interval). The file is opened afresh each time: SQLite may truncate or recreate it.
    /// A checkpoint due first syncs it too; this one is then almost free. A WAL that is not
    /// there (a `TRUNCATE` checkpoint or the close removed it) has nothing to sync; a sync the
    /// kernel refuses is counted (``walSyncFailures``) and reported by the next
    /// ``markAlive(now:)``.
    private func scheduleWalSync() {
        let schedule = pending.withLock { p in
            if p.walSyncScheduled || p.closed { return false }
            p.walSyncScheduled = true
            return true
        }
        guard schedule else { return }
        let wal = walPath
        let scheduled = background.asyncAfter(milliseconds: options.walSyncInterval.milliseconds) { [self] in
            pending.withLock { $0.walSyncScheduled = false }
            let fd = open(wal, O_RDONLY | O_CLOEXEC)
            var failure: Int32 = 0
            if fd < 0 {
                if errno == ENOENT { return }
                failure = errno
            } else {
                if fdatasync(fd) != 0 { failure = errno }
                Glibc.close(fd)
            }
            pending.withLock { p in
                if failure == 0 {
                    p.walSyncs += 1
                } else {
                    p.walSyncFailures += 1
                    p.lastWalSyncErrno = failure
                }
            }
        }
        if !scheduled { pending.withLock { $0.walSyncScheduled = false } }
    }

    /// WAL syncs done so far (``Options/walSyncInterval``; tests and diagnostics).
    public var walSyncCount: Int { pending.withLock { $0.walSyncs } }
    /// WAL syncs that failed (an I/O error of the disk, say), for diagnostics.
    public var walSyncFailures: Int { pending.withLock { $0.walSyncFailures } }

    /// WAL checkpoints done so far (tests and diagnostics).
    public var checkpointCount: Int { pending.withLock { $0.checkpoints } }

    /// Queues a checkpoint when the WAL has grown by ``Options/checkpointWALFrames`` since the
    /// last one (counted from what that one left: a WAL a reader kept from restarting does not
    /// make every later commit a checkpoint), or when ``Options/checkpointInterval`` has passed
    /// since the last one. Made by a write, never by a long timer: one five minutes out would
    /// keep the worker's thread alive for as long, and an idle agent would never be without it.
    /// What an agent wrote before falling quiet stays in the synced WAL until its next write or
    /// its stop. The checkpoint runs ``Options/walSyncInterval`` after the write that makes it,
    /// with the WAL's sync, not at once: that write is often a tick's fire, and the checkpoint's
    /// syncs and the WAL's restart (under the writer's lock) would meet the tick's other commits.
    private func scheduleCheckpoint(walFrames frames: Int32) {
        let mono = SystemClock().monotonicNow()
        let queue = pending.withLock { p in
            if p.checkpointQueued || p.closed { return false }
            // Fewer frames than the last checkpoint left: the WAL has restarted since.
            let base = frames < p.framesAfterCheckpoint ? 0 : p.framesAfterCheckpoint
            let grown = Int64(frames) - Int64(base) >= Int64(options.checkpointWALFrames)
            guard grown || mono - p.lastCheckpointMs >= options.checkpointInterval.milliseconds else { return false }
            p.checkpointQueued = true
            return true
        }
        guard queue else { return }
        let scheduled = background.asyncAfter(milliseconds: options.walSyncInterval.milliseconds) { [self] in
            let closed = pending.withLock { p in
                p.checkpointQueued = false
                return p.closed
            }
            if !closed { checkpoint() }
        }
        // No thread for the timer (resources exhausted): the next write asks again.
        if !scheduled { pending.withLock { $0.checkpointQueued = false } }
    }

    /// Copies the WAL into the database file (passive: never waits for the writer), on the
    /// background worker.
    private func checkpoint() {
        _ = try? aux.withConnection { try $0.checkpoint(.passive) }
        let mono = SystemClock().monotonicNow()
        pending.withLock { p in
            p.checkpoints += 1
            p.lastCheckpointMs = mono
        }
        var st = stat()
        let wal = stat(walPath, &st) == 0 ? Int64(st.st_size) : 0
        if wal > options.walLimitBytes { _ = try? aux.withConnection { try $0.checkpoint(.truncate) } }
        // The first write after a completed checkpoint restarts the WAL, and with
        // synchronous=NORMAL SQLite syncs the WAL header then (an fdatasync, 1-3 ms here).
        // Make that write here, off the scheduler's path, rather than in the commit that
        // precedes the next launch (profiled in docs/benchmarks.md: it was most of a lone
        // job's lateness).
        let frames = try? writer.withConnection { db -> Int32 in
            try db.execute("INSERT INTO wal_touch(id, n) VALUES (1, 1) ON CONFLICT(id) DO UPDATE SET n = n + 1")
            return db.walFrames
        }
        pending.withLock { $0.framesAfterCheckpoint = frames ?? 0 }
    }

    /// How many batched changes were dropped because commits kept failing (see ``Options/maxPending``).
    public var droppedChanges: Int { pending.withLock { $0.dropped } }

    // MARK: - Errors and --reset-state

    static func stateError(_ error: any Error, path: String) -> StateError {
        if let e = error as? StateError { return e }
        if let e = error as? SQLiteError {
            return StateError(e.isCorruption ? .corrupt : .io, path: path, message: e.message)
        }
        return StateError(.io, path: path, message: "\(error)")
    }

    /// Moves a bad database (and its `-wal` and `-shm` files) aside as
    /// `<path>.corrupt-<UTC time>` so that the agent can start fresh (`--reset-state`).
    ///
    /// - Returns: the new path of the database file, or `nil` when there was no file.
    /// - Throws: ``StateError`` `.io` when a rename fails.
    @discardableResult
    public static func moveAside(databaseAt path: String, now: Instant) throws -> String? {
        let stamp = String(RFC3339.format(now, utcOffsetSeconds: 0, fractionDigits: 3).filter { $0 != ":" && $0 != "-" })
        let target = "\(path).corrupt-\(stamp)"
        func exists(_ p: String) -> Bool { access(p, F_OK) == 0 }
        guard exists(path) else { return nil }
        unlink(CleanCloseMark(databasePath: path).path)
        for suffix in ["", "-wal", "-shm"] where exists(path + suffix) {
            if rename(path + suffix, target + suffix) != 0 {
                throw StateError(.io, path: path + suffix, message: "cannot move aside to \(target + suffix): \(String(cString: strerror(errno)))")
            }
        }
        return target
    }
}
