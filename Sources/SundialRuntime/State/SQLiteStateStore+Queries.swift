import SundialCore

// MARK: - Reading and pruning

extension SQLiteStateStore {
    public func restore() throws -> RestoredState {
        try flush()
        return try read { db in
            var state = RestoredState()
            for row in try db.rows("SELECT name, last_fired FROM jobs WHERE last_fired IS NOT NULL") {
                state.lastFired[try row.text(0)] = Instant(unixMillis: try row.int64(1))
            }
            state.inFlight = try db.rows("""
                SELECT r.run_id, j.name, r.trigger, r.scheduled_for, r.started_at,
                       max(r.attempts, coalesce((SELECT max(attempt) FROM attempts WHERE run = r.id), 0), coalesce(p.attempt, 0)),
                       p.pid, p.start_ticks, p.pgid, p.boot_id, p.cgroup
                FROM runs r JOIN jobs j ON j.id = r.job LEFT JOIN processes p ON p.run = r.id
                WHERE r.finished_at IS NULL ORDER BY r.started_at, r.run_id
                """).map { row in
                var process: ProcessIdentity?
                if let pid = try row.optionalInt64(6), let ticks = try row.optionalInt64(7), let pgid = try row.optionalInt64(8),
                   let boot = try row.optionalText(9) {
                    process = ProcessIdentity(pid: Int32(truncatingIfNeeded: pid), startTicks: UInt64(max(0, ticks)),
                                              processGroup: Int32(truncatingIfNeeded: pgid), bootID: boot, cgroup: try row.optionalText(10))
                }
                return RunRecord(
                    id: RunID(rawValue: try row.text(0)), job: try row.text(1), trigger: try trigger(try row.text(2)),
                    scheduledFor: try row.optionalInt64(3).map(Instant.init(unixMillis:)), startedAt: Instant(unixMillis: try row.int64(4)),
                    // The latest attempt launched: a restored run is recorded `interrupted` under
                    // it and retried with the next number (0 attempts: the first never launched).
                    attempt: max(1, Int(try row.int64(5))), process: process)
            }
            state.lastSeen = try db.rows("SELECT last_seen FROM agent WHERE id = 1").first.map { Instant(unixMillis: try $0.int64(0)) }
            state.bootID = try db.rows("SELECT boot_id FROM boot WHERE id = 1").first.map { try $0.text(0) }
            return state
        }
    }

    public func history(job: JobID, limit: Int) throws -> [RunSummary] {
        guard limit > 0 else { return [] }
        try flush()
        return try read { db in
            guard let key = try jobKey(reading: job, in: db) else { return [] }
            return try db.rows("""
                SELECT run_id, trigger, scheduled_for, started_at, finished_at, outcome, exit_code, signal, detail, attempts
                FROM runs WHERE job = ? ORDER BY started_at DESC, run_id DESC LIMIT ?
                """, key, limit).map { try summary(job: job, $0, from: 0) }
        }
    }

    public func latestRuns() throws -> [JobID: RunSummary] {
        try flush()
        return try read { db in
            var out: [JobID: RunSummary] = [:]
            for row in try db.rows("""
                SELECT j.name, r.run_id, r.trigger, r.scheduled_for, r.started_at, r.finished_at, r.outcome,
                       r.exit_code, r.signal, r.detail, r.attempts
                FROM jobs j JOIN runs r
                  ON r.id = (SELECT id FROM runs WHERE job = j.id ORDER BY started_at DESC, run_id DESC LIMIT 1)
                """) {
                let job = try row.text(0)
                out[job] = try summary(job: job, row, from: 1)
            }
            return out
        }
    }

    /// A `RunSummary` from the run columns starting at `i` (run_id, trigger, scheduled_for,
    /// started_at, finished_at, outcome, exit_code, signal, detail, attempts).
    private func summary(job: JobID, _ row: SQLiteRow, from i: Int) throws -> RunSummary {
        var outcome: RunOutcome?
        if let name = try row.optionalText(i + 5) {
            outcome = StateCodes.outcome(name: name, exitCode: try row.optionalInt64(i + 6).map { Int32(truncatingIfNeeded: $0) },
                                         signal: try row.optionalInt64(i + 7).map { Int32(truncatingIfNeeded: $0) },
                                         detail: try row.optionalText(i + 8))
            if outcome == nil { throw StateError(.corrupt, path: path, message: "unknown outcome \(name)") }
        }
        return RunSummary(
            id: RunID(rawValue: try row.text(i)), job: job, trigger: try trigger(try row.text(i + 1)),
            scheduledFor: try row.optionalInt64(i + 2).map(Instant.init(unixMillis:)), startedAt: Instant(unixMillis: try row.int64(i + 3)),
            finishedAt: try row.optionalInt64(i + 4).map(Instant.init(unixMillis:)), outcome: outcome, attempts: Int(try row.int64(i + 9)))
    }

    public func ledger(job: JobID, since: Instant) throws -> [LedgerEntry] {
        try flush()
        return try read { db in
            guard let key = try jobKey(reading: job, in: db) else { return [] }
            return try db.rows("""
                SELECT scheduled_for, disposition, reason, run_id, at FROM ledger
                WHERE job = ? AND scheduled_for >= ? ORDER BY scheduled_for
                """, key, since.unixMillis).map { row in
                let name = try row.text(1)
                guard let d = StateCodes.disposition(name: name, reason: try row.optionalText(2), runID: try row.optionalText(3)) else {
                    throw StateError(.corrupt, path: path, message: "unknown ledger disposition \(name)")
                }
                return LedgerEntry(job: job, scheduledFor: Instant(unixMillis: try row.int64(0)), disposition: d, at: Instant(unixMillis: try row.int64(4)))
            }
        }
    }

    public func output(run id: RunID) throws -> [RunOutputRecord] {
        try flush()
        return try read { db in
            try db.rows("""
                SELECT o.attempt, o.text, o.dropped FROM outputs o JOIN runs r ON r.id = o.run
                WHERE r.run_id = ? ORDER BY o.attempt
                """, id.rawValue).map {
                RunOutputRecord(runID: id, attempt: Int(try $0.int64(0)), text: try $0.text(1), droppedBytes: Int(try $0.int64(2)))
            }
        }
    }

    /// Applies ``retention`` one job per transaction, so the writer is never held for long and a
    /// fire waiting to commit gets in between.
    public func prune(now: Instant) throws {
        try flush()
        let cutoff = (now - retention.maxAge).unixMillis
        let keys = try read { try $0.rows("SELECT id FROM jobs").map { try $0.int64(0) } }
        for key in keys {
            try guarded {
                try writer.withConnection { db in try db.transaction {
                    // Finished runs that are too old, or beyond the newest `maxRunsPerJob`.
                    let victims = try db.rows("""
                        SELECT id FROM runs WHERE job = ?1 AND started_at < ?2 AND finished_at IS NOT NULL
                        UNION
                        SELECT id FROM (SELECT id, finished_at FROM runs WHERE job = ?1
                                        ORDER BY started_at DESC, run_id DESC LIMIT -1 OFFSET ?3)
                        WHERE finished_at IS NOT NULL
                        """, key, cutoff, retention.maxRunsPerJob).map { try $0.int64(0) }
                    for id in victims {
                        try db.execute("DELETE FROM attempts WHERE run = ?", id)
                        try db.execute("DELETE FROM outputs WHERE run = ?", id)
                        try db.execute("DELETE FROM runs WHERE id = ?", id)
                    }
                    try db.execute("""
                        DELETE FROM ledger WHERE job = ?1 AND (scheduled_for < ?2 OR scheduled_for IN
                          (SELECT scheduled_for FROM ledger WHERE job = ?1 ORDER BY scheduled_for DESC LIMIT -1 OFFSET ?3))
                        """, key, cutoff, retention.maxLedgerEntriesPerJob)
                } }
            }
        }
        // All stored output within its byte budget: the oldest runs' output goes first.
        try guarded {
            try writer.withConnection { db in try db.transaction {
                var total = try db.rows("SELECT coalesce(sum(length(CAST(text AS BLOB))), 0) FROM outputs").first?.int64(0) ?? 0
                guard total > Int64(retention.maxOutputBytes) else { return }
                let oldest = try db.rows("""
                    SELECT o.run, sum(length(CAST(o.text AS BLOB))) FROM outputs o JOIN runs r ON r.id = o.run
                    GROUP BY o.run ORDER BY min(r.started_at), min(r.run_id)
                    """)
                for row in oldest where total > Int64(retention.maxOutputBytes) {
                    try db.execute("DELETE FROM outputs WHERE run = ?", try row.int64(0))
                    total -= try row.int64(1)
                }
            } }
        }
    }

    /// Reads on the auxiliary connection (never blocking the writer), mapping errors.
    func read<T: Sendable>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        try guarded { try aux.withConnection { db in try db.transaction(readOnly: true) { try body(db) } } }
    }

    /// `jobs.id` of `job` for a query, without inserting it.
    private func jobKey(reading job: JobID, in db: SQLiteConnection) throws -> Int64? {
        try db.rows("SELECT id FROM jobs WHERE name = ?", job).first.map { try $0.int64(0) }
    }

    func guarded<T>(_ body: () throws -> T) throws -> T {
        if pending.withLock({ $0.closed }) { throw StateError(.closed, path: path, message: "the state store is closed") }
        do { return try body() } catch { throw Self.stateError(error, path: path) }
    }

    private func trigger(_ text: String) throws -> RunTrigger {
        guard let t = RunTrigger(rawValue: text) else { throw StateError(.corrupt, path: path, message: "unknown trigger \(text)") }
        return t
    }
}
