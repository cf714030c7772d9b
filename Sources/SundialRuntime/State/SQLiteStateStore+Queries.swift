import GRDB
import SundialCore

// MARK: - Reading and pruning

extension SQLiteStateStore {
    public func restore() throws -> RestoredState {
        try flush()
        return try read { db in
            var state = RestoredState()
            for row in try Row.fetchAll(db, sql: "SELECT name, last_fired FROM jobs WHERE last_fired IS NOT NULL") {
                state.lastFired[row[0]] = Instant(unixMillis: row[1])
            }
            state.inFlight = try Row.fetchAll(db, sql: """
                SELECT r.run_id, j.name, r.trigger, r.scheduled_for, r.started_at,
                       max(r.attempts, coalesce((SELECT max(attempt) FROM attempts WHERE run = r.id), 0), coalesce(p.attempt, 0)),
                       p.pid, p.start_ticks, p.pgid, p.boot_id, p.cgroup
                FROM runs r JOIN jobs j ON j.id = r.job LEFT JOIN processes p ON p.run = r.id
                WHERE r.finished_at IS NULL ORDER BY r.started_at, r.run_id
                """).map { row in
                var process: ProcessIdentity?
                if let pid = row[6] as Int32?, let ticks = row[7] as Int64?, let pgid = row[8] as Int32?, let boot = row[9] as String? {
                    process = ProcessIdentity(pid: pid, startTicks: UInt64(max(0, ticks)), processGroup: pgid, bootID: boot, cgroup: row[10])
                }
                return RunRecord(
                    id: RunID(rawValue: row[0]), job: row[1], trigger: try trigger(row[2]),
                    scheduledFor: (row[3] as Int64?).map(Instant.init(unixMillis:)), startedAt: Instant(unixMillis: row[4]),
                    // The latest attempt launched: a restored run is recorded `interrupted` under
                    // it and retried with the next number (0 attempts: the first never launched).
                    attempt: max(1, row[5] as Int), process: process)
            }
            state.lastSeen = try Int64.fetchOne(db, sql: "SELECT last_seen FROM agent WHERE id = 1").map(Instant.init(unixMillis:))
            return state
        }
    }

    public func history(job: JobID, limit: Int) throws -> [RunSummary] {
        guard limit > 0 else { return [] }
        try flush()
        return try read { db in
            guard let key = try Int64.fetchOne(db, sql: "SELECT id FROM jobs WHERE name = ?", arguments: [job]) else { return [] }
            return try Row.fetchAll(db, sql: """
                SELECT run_id, trigger, scheduled_for, started_at, finished_at, outcome, exit_code, signal, detail, attempts
                FROM runs WHERE job = ? ORDER BY started_at DESC, run_id DESC LIMIT ?
                """, arguments: [key, limit]).map { try summary(job: job, $0, from: 0) }
        }
    }

    public func latestRuns() throws -> [JobID: RunSummary] {
        try flush()
        return try read { db in
            var out: [JobID: RunSummary] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT j.name, r.run_id, r.trigger, r.scheduled_for, r.started_at, r.finished_at, r.outcome,
                       r.exit_code, r.signal, r.detail, r.attempts
                FROM jobs j JOIN runs r
                  ON r.id = (SELECT id FROM runs WHERE job = j.id ORDER BY started_at DESC, run_id DESC LIMIT 1)
                """) {
                let job: String = row[0]
                out[job] = try summary(job: job, row, from: 1)
            }
            return out
        }
    }

    /// A `RunSummary` from the run columns starting at `i` (run_id, trigger, scheduled_for,
    /// started_at, finished_at, outcome, exit_code, signal, detail, attempts).
    private func summary(job: JobID, _ row: Row, from i: Int) throws -> RunSummary {
        var outcome: RunOutcome?
        if let name = row[i + 5] as String? {
            outcome = StateCodes.outcome(name: name, exitCode: row[i + 6], signal: row[i + 7], detail: row[i + 8])
            if outcome == nil { throw StateError(.corrupt, path: path, message: "unknown outcome \(name)") }
        }
        return RunSummary(
            id: RunID(rawValue: row[i]), job: job, trigger: try trigger(row[i + 1]),
            scheduledFor: (row[i + 2] as Int64?).map(Instant.init(unixMillis:)), startedAt: Instant(unixMillis: row[i + 3]),
            finishedAt: (row[i + 4] as Int64?).map(Instant.init(unixMillis:)), outcome: outcome, attempts: row[i + 9])
    }

    public func ledger(job: JobID, since: Instant) throws -> [LedgerEntry] {
        try flush()
        return try read { db in
            guard let key = try Int64.fetchOne(db, sql: "SELECT id FROM jobs WHERE name = ?", arguments: [job]) else { return [] }
            return try Row.fetchAll(db, sql: """
                SELECT scheduled_for, disposition, reason, run_id, at FROM ledger
                WHERE job = ? AND scheduled_for >= ? ORDER BY scheduled_for
                """, arguments: [key, since.unixMillis]).map { row in
                guard let d = StateCodes.disposition(name: row[1], reason: row[2], runID: row[3]) else {
                    throw StateError(.corrupt, path: path, message: "unknown ledger disposition \(row[1] as String)")
                }
                return LedgerEntry(job: job, scheduledFor: Instant(unixMillis: row[0]), disposition: d, at: Instant(unixMillis: row[4]))
            }
        }
    }

    /// Applies ``retention`` one job per transaction, so the writer is never held for long and a
    /// fire waiting to commit gets in between.
    public func prune(now: Instant) throws {
        try flush()
        let cutoff = (now - retention.maxAge).unixMillis
        let keys = try read { try Int64.fetchAll($0, sql: "SELECT id FROM jobs") }
        for key in keys {
            try guarded {
                try writer.write { db in
                    // Finished runs that are too old, or beyond the newest `maxRunsPerJob`.
                    let victims = try Int64.fetchAll(db, sql: """
                        SELECT id FROM runs WHERE job = ?1 AND started_at < ?2 AND finished_at IS NOT NULL
                        UNION
                        SELECT id FROM (SELECT id, finished_at FROM runs WHERE job = ?1
                                        ORDER BY started_at DESC, run_id DESC LIMIT -1 OFFSET ?3)
                        WHERE finished_at IS NOT NULL
                        """, arguments: [key, cutoff, retention.maxRunsPerJob])
                    let delAttempts = try db.cachedStatement(sql: "DELETE FROM attempts WHERE run = ?")
                    let delRun = try db.cachedStatement(sql: "DELETE FROM runs WHERE id = ?")
                    for id in victims {
                        try delAttempts.execute(arguments: [id])
                        try delRun.execute(arguments: [id])
                    }
                    try db.execute(sql: """
                        DELETE FROM ledger WHERE job = ?1 AND (scheduled_for < ?2 OR scheduled_for IN
                          (SELECT scheduled_for FROM ledger WHERE job = ?1 ORDER BY scheduled_for DESC LIMIT -1 OFFSET ?3))
                        """, arguments: [key, cutoff, retention.maxLedgerEntriesPerJob])
                }
            }
        }
    }

    /// Reads on the auxiliary connection (never blocking the writer), mapping errors.
    func read<T>(_ body: (Database) throws -> T) throws -> T {
        try guarded { try aux.read(body) }
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
