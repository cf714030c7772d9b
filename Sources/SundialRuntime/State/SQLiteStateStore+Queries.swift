import SundialCore
import Synchronization

// MARK: - Reading and pruning

extension SQLiteStateStore {
    public func restore() throws -> RestoredState {
        try flush()
        return try read { try StateQueries(path: path, db: $0).restore() }
    }

    public func history(job: JobID, limit: Int) throws -> [RunSummary] {
        guard limit > 0 else { return [] }
        try flush()
        return try read { try StateQueries(path: path, db: $0).history(job: job, limit: limit) }
    }

    public func latestRuns() throws -> [JobID: RunSummary] {
        try flush()
        return try read { try StateQueries(path: path, db: $0).latestRuns() }
    }

    public func ledger(job: JobID, since: Instant) throws -> [LedgerEntry] {
        try flush()
        return try read { try StateQueries(path: path, db: $0).ledger(job: job, since: since) }
    }

    public func output(run id: RunID) throws -> [RunOutputRecord] {
        try flush()
        return try read { try StateQueries(path: path, db: $0).output(run: id) }
    }

    /// Cut in SQLite: an attempt that kept 16 MiB costs no 16 MiB string here.
    public func outputTail(run id: RunID, maxBytes: Int) throws -> [RunOutputRecord] {
        try flush()
        return try read { try StateQueries(path: path, db: $0).outputTail(run: id, maxBytes: maxBytes) }
    }

    /// A job's finished runs that are older than the cutoff (`?2`) or beyond its newest `?3`,
    /// newest in the order of `StateQueries.historySQL`.
    static let pruneRunsSQL = """
        SELECT id FROM runs WHERE job = ?1 AND started_at < ?2 AND finished_at IS NOT NULL
        UNION
        SELECT id FROM (SELECT id, finished_at FROM runs WHERE job = ?1
                        ORDER BY started_at DESC, id DESC LIMIT -1 OFFSET ?3)
        WHERE finished_at IS NOT NULL
        """

    /// Applies ``retention`` one job per transaction, so the writer is never held for long and a
    /// fire waiting to commit gets in between; only to the jobs ``pruneCandidates(cutoff:)``
    /// finds, so a box whose history is within bounds pays two index scans, not a transaction
    /// per job (10,000 of them at every start of a 10,000-job agent: a fifth of its start-up
    /// CPU, docs/benchmarks.md).
    public func prune(now: Instant) throws {
        try flush()
        let cutoff = (now - retention.maxAge).unixMillis
        let keys = try pruneCandidates(cutoff: cutoff)
        for key in keys {
            try guarded {
                try writer.withConnection { db in
                    try db.transaction {
                        // Finished runs that are too old, or beyond the newest `maxRunsPerJob`.
                        let victims = try db.rows(Self.pruneRunsSQL, key, cutoff, retention.maxRunsPerJob)
                            .map { try $0.int64(0) }
                        for id in victims {
                            try db.execute("DELETE FROM attempts WHERE run = ?", id)
                            try db.execute("DELETE FROM outputs WHERE run = ?", id)
                            try db.execute("DELETE FROM runs WHERE id = ?", id)
                        }
                        try db.execute(
                            """
                            DELETE FROM ledger WHERE job = ?1 AND (scheduled_for < ?2 OR scheduled_for IN
                              (SELECT scheduled_for FROM ledger WHERE job = ?1 ORDER BY scheduled_for DESC LIMIT -1 OFFSET ?3))
                            """, key, cutoff, retention.maxLedgerEntriesPerJob)
                    }
                }
            }
        }
        // All stored output within its byte budget: the oldest runs' output goes first.
        try guarded {
            try writer.withConnection { db in
                try db.transaction {
                    var total = try db.rows("SELECT coalesce(sum(length(CAST(text AS BLOB))), 0) FROM outputs").first?.int64(0) ?? 0
                    guard total > Int64(retention.maxOutputBytes) else { return }
                    let oldest = try db.rows(
                        """
                        SELECT o.run, sum(length(CAST(o.text AS BLOB))) FROM outputs o JOIN runs r ON r.id = o.run
                        GROUP BY o.run ORDER BY min(r.started_at), o.run
                        """)
                    for row in oldest where total > Int64(retention.maxOutputBytes) {
                        try db.execute("DELETE FROM outputs WHERE run = ?", try row.int64(0))
                        total -= try row.int64(1)
                    }
                }
            }
        }
        try guarded {
            try writer.withConnection { db in
                // The row exists: the prune flushed the alive mark that asked for it.
                try db.execute("UPDATE agent SET last_pruned = ? WHERE id = 1", now.unixMillis)
            }
        }
        wrote()
    }

    /// The jobs (`jobs.id`) that may have runs or ledger entries past ``retention``: more of
    /// them than kept, or one older than `cutoff`. A superset of what the prune removes (an
    /// old run still in flight makes its job a candidate, and the prune then keeps it): both
    /// queries read only the indexes `runs_by_job` and the ledger's primary key.
    func pruneCandidates(cutoff: Int64) throws -> [Int64] {
        try read { db in
            try db.rows(
                """
                SELECT job FROM runs GROUP BY job HAVING count(*) > ?1 OR min(started_at) < ?2
                UNION
                SELECT job FROM ledger GROUP BY job HAVING count(*) > ?3 OR min(scheduled_for) < ?2
                """, retention.maxRunsPerJob, cutoff, retention.maxLedgerEntriesPerJob
            ).map { try $0.int64(0) }
        }
    }

    /// Reads on the auxiliary connection (never blocking the writer), mapping errors.
    func read<T: Sendable>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        try guarded { try aux.withConnection { db in try db.transaction(readOnly: true) { try body(db) } } }
    }

    func guarded<T>(_ body: () throws -> T) throws -> T {
        if pending.withLock({ $0.closed }) { throw StateError(.closed, path: path, message: "the state store is closed") }
        do { return try body() } catch { throw Self.stateError(error, path: path) }
    }

}
