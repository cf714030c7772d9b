import CSundialShim  // `timespec`'s fields (see PathProbe.swift)
import OrderedCollections
import SundialCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Publishes the local outbox (state.db `fleet_outbox`) to the fleet's `sundial_runs`, on a
/// thread of its own that exists only with `--fleet`.
///
/// Why this shape: scheduling must never wait on PostgreSQL. A run's end lands in the outbox in
/// the same SQLite commit as the run (durable at once, whatever the network does); this thread
/// reads batches from the store's reader connection, sends each batch in one statement
/// (`INSERT ... ON CONFLICT (run_id) DO NOTHING`: sending again after a crash or a lost reply
/// changes nothing) and then has the rows deleted by the store's batched writer. When
/// PostgreSQL is away it backs off (doubling, at most ``Options/maxBackoffMs``) and catches up in
/// order when it returns, including after an agent restart (the rows are in the file).
///
/// Each cycle also marks the box alive in `sundial_boxes` (what `sundial fleet status` shows as
/// last contact), and hourly it applies the fleet database's retention (docs/fleet-database.md).
public final class FleetRunPublisher: @unchecked Sendable {
    public struct Options: Sendable {
        /// Rows per statement (an output tail is at most `output.keep_bytes`, 64 KiB by default).
        public var batchSize = 100
        /// Time between cycles when everything is published.
        public var intervalMs: Int64 = 2_000
        public var maxBackoffMs: Int64 = 30_000
        /// Retention in the fleet database: ended claims (kept only to refuse a late claim of an
        /// instant already run) and run records, and how often it is applied.
        public var claimRetentionDays = 7
        public var runRetentionDays = 30
        public var retentionIntervalMs: Int64 = 3_600_000
        /// Rows deleted per retention statement, so that a big backlog never holds locks long.
        public var retentionBatch = 10_000
        public init() {}
    }

    public let box: String
    public let version: String
    public let options: Options
    private let store: SQLiteStateStore
    private let connection: PostgresConnection
    private let log: @Sendable (LogRecord) -> Void
    private let state = Mutex(State())
    /// A pipe: `wake()` writes a byte, the thread's `poll` on the read end returns.
    private let wakeRead: Int32
    private let wakeWrite: Int32

    private struct State {
        var thread: JoinableThread?
        var stopping = false
        var published = 0
        var failures = 0
        var lastError: String?
        var lastRetentionMs: Int64?
    }

    public init(
        store: SQLiteStateStore, settings: PostgresSettings, box: String, version: String, options: Options = Options(),
        log: @escaping @Sendable (LogRecord) -> Void
    ) {
        self.store = store
        self.box = box
        self.version = version
        self.options = options
        self.log = log
        connection = PostgresConnection(settings: settings)
        connection.onConnect = { c throws(PostgresError) in try FleetDatabaseSchema.migrate(c) }
        // Retries are paced by this thread's own backoff.
        connection.maxBackoffMs = 0
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            for fd in fds {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            }
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
    }

    deinit {
        stop()
        if wakeRead >= 0 { close(wakeRead) }
        if wakeWrite >= 0 { close(wakeWrite) }
    }

    /// Records published by this publisher since it started (tests, metrics).
    public var publishedCount: Int { state.withLock { $0.published } }
    public var lastError: String? { state.withLock { $0.lastError } }

    /// Starts the thread. False when the kernel refused one (then nothing is published, and the
    /// outbox keeps filling up to its bound).
    @discardableResult
    public func start() -> Bool {
        state.withLock { s in
            guard s.thread == nil else { return true }
            s.stopping = false
            s.thread = JoinableThread(name: "sundial-fleet") { [self] in loop() }
            return s.thread != nil
        }
    }

    /// Publishes what it can right away (e.g. after runs ended, or on shutdown).
    public func wake() {
        var one: UInt8 = 1
        _ = write(wakeWrite, &one, 1)
    }

    /// Stops the thread (after the statement in progress, bounded by the statement timeout).
    public func stop() {
        let thread = state.withLock { s -> JoinableThread? in
            s.stopping = true
            defer { s.thread = nil }
            return s.thread
        }
        guard let thread else { return }
        wake()
        thread.join()
        connection.close()
    }

    private func loop() {
        var waitMs: Int64 = 0
        while !state.withLock({ $0.stopping }) {
            if waitMs > 0 { sleep(ms: waitMs) }
            if state.withLock({ $0.stopping }) { break }
            waitMs = cycle() ? options.intervalMs : backoffMs()
        }
    }

    private func backoffMs() -> Int64 {
        let n = state.withLock { $0.failures }
        return min(options.maxBackoffMs, 250 << Int64(min(max(n - 1, 0), 16)))
    }

    private func sleep(ms: Int64) {
        var p = pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)
        _ = poll(&p, 1, Int32(clamping: ms))
        var drain = [UInt8](repeating: 0, count: 64)
        _ = read(wakeRead, &drain, drain.count)
    }

    /// One cycle: heartbeat, every batch waiting, retention when due. True when all went well.
    /// Public for tests (which drive cycles without the thread).
    @discardableResult
    public func cycle() -> Bool {
        do throws(PostgresError) {
            try connection.query(
                """
                INSERT INTO sundial_boxes (box, last_contact, version) VALUES ($1, now(), $2)
                ON CONFLICT (box) DO UPDATE SET last_contact = now(), version = excluded.version
                """, [box, version])
            // Bounded: at most this many batches per cycle, so stop() is never held long.
            for _ in 0..<50 {
                let batch: [FleetOutboxRecord]
                do { batch = try store.fleetOutbox(limit: options.batchSize) } catch {
                    noteFailure("cannot read the fleet outbox: \(error)")
                    return false
                }
                guard let last = batch.last else { break }
                try publish(batch)
                try? store.fleetOutboxPublished(through: last.id)
                state.withLock { $0.published += batch.count }
                if batch.count < options.batchSize { break }
            }
            try retentionIfDue()
        } catch {
            noteFailure(error.message)
            return false
        }
        let recovered = state.withLock { s -> Bool in
            defer {
                s.failures = 0
                s.lastError = nil
            }
            return s.failures > 0
        }
        if recovered {
            log(.fleet(.init(.publishRecovered, at: Self.wallNow(), level: .info, ["box": .string(box)])))
        }
        return true
    }

    private func noteFailure(_ message: String) {
        let first = state.withLock { s -> Bool in
            s.failures += 1
            s.lastError = message
            return s.failures == 1
        }
        // Logged once per outage (the first failure), not once per retry.
        if first {
            log(
                .fleet(
                    .init(
                        .publishError, at: Self.wallNow(), level: .warn,
                        [
                            "message": .string(message),
                            "hint": .string("runs stay in the local outbox (state.db) and are published when the database is back"),
                        ])))
        }
    }

    private func publish(_ batch: [FleetOutboxRecord]) throws(PostgresError) {
        func ints(_ v: [Int64?]) -> String { "{" + v.map { $0.map(String.init) ?? "NULL" }.joined(separator: ",") + "}" }
        func texts(_ v: [String?]) -> String {
            "{"
                + v.map { $0.map { PostgresFleetCoordinator.textArray([Self.withoutNUL($0)]).dropFirst().dropLast() }.map(String.init) ?? "NULL" }
                .joined(separator: ",") + "}"
        }
        try connection.query(
            """
            INSERT INTO sundial_runs (run_id, job, box, attempt, scheduled_for, started_at, finished_at, outcome, exit_code, token, output_tail)
            SELECT r.run_id, r.job, $1, r.attempt, sundial_ts(r.sf), sundial_ts(r.st), sundial_ts(r.fin), r.outcome, r.exit_code,
              (SELECT c.token FROM sundial_claims c WHERE c.job = r.job AND c.scheduled_for = sundial_ts(r.sf) AND c.box = $1),
              r.tail
            FROM unnest($2::text[], $3::text[], $4::int[], $5::bigint[], $6::bigint[], $7::bigint[], $8::text[], $9::int[], $10::text[])
              AS r(run_id, job, attempt, sf, st, fin, outcome, exit_code, tail)
            ON CONFLICT (run_id) DO NOTHING
            """,
            [
                box,
                texts(batch.map(\.runID)), texts(batch.map(\.job)), ints(batch.map { Int64($0.attempt) }),
                ints(batch.map { $0.scheduledFor?.unixMillis }), ints(batch.map { $0.startedAt.unixMillis }), ints(batch.map { $0.finishedAt.unixMillis }),
                texts(batch.map(\.outcome)), ints(batch.map { $0.exitCode.map(Int64.init) }), texts(batch.map(\.outputTail)),
            ])
    }

    private func retentionIfDue() throws(PostgresError) {
        let now = PostgresConnection.monotonicMs()
        // First applied one interval after start: a fleet restarting together does not all
        // delete at once, and a box's first cycle is only its backlog.
        let due = state.withLock { s -> Bool in
            guard let last = s.lastRetentionMs else {
                s.lastRetentionMs = now
                return false
            }
            if now - last < options.retentionIntervalMs { return false }
            s.lastRetentionMs = now
            return true
        }
        guard due else { return }
        let statements = [
            "DELETE FROM sundial_claims WHERE ctid = ANY(ARRAY(SELECT ctid FROM sundial_claims WHERE state <> 'running' AND finished_at < now() - $1 * interval '1 day' LIMIT $2))",
            "DELETE FROM sundial_runs WHERE ctid = ANY(ARRAY(SELECT ctid FROM sundial_runs WHERE finished_at < now() - $1 * interval '1 day' LIMIT $2))",
            "DELETE FROM sundial_boxes WHERE ctid = ANY(ARRAY(SELECT ctid FROM sundial_boxes WHERE last_contact < now() - $1 * interval '1 day' LIMIT $2))",
        ]
        let days = [options.claimRetentionDays, options.runRetentionDays, options.runRetentionDays]
        for (sql, d) in zip(statements, days) {
            try connection.query(sql, [String(d), String(options.retentionBatch)])
        }
    }

    static func withoutNUL(_ s: String) -> String { s.contains("\0") ? String(s.unicodeScalars.filter { $0 != "\0" }.map(Character.init)) : s }

    static func wallNow() -> Instant {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Instant(unixMillis: Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000)
    }
}
