import SundialCore

/// The state database's queries, on one connection: used by ``SQLiteStateStore`` (on its
/// auxiliary connection) and by ``StateReader`` (read-only, for the CLI when no agent answers).
struct StateQueries {
    let path: String
    let db: SQLiteConnection

    func restore() throws -> RestoredState {
        var state = RestoredState()
        for row in try db.rows("SELECT name, last_fired FROM jobs WHERE last_fired IS NOT NULL") {
            state.lastFired[try row.text(0)] = try row.instant(1)
        }
        state.inFlight = try db.rows(
            """
            SELECT r.run_id, j.name, r.trigger, r.scheduled_for, r.started_at,
                   max(r.attempts, coalesce((SELECT max(attempt) FROM attempts WHERE run = r.id), 0), coalesce(p.attempt, 0)),
                   p.pid, p.start_ticks, p.pgid, p.boot_id, p.cgroup
            FROM runs r JOIN jobs j ON j.id = r.job LEFT JOIN processes p ON p.run = r.id
            WHERE r.finished_at IS NULL ORDER BY r.started_at, r.run_id
            """
        ).map { row in
            var process: ProcessIdentity?
            if let pid = try row.optionalInt64(6), let ticks = try row.optionalInt64(7), let pgid = try row.optionalInt64(8),
                let boot = try row.optionalText(9)
            {
                process = ProcessIdentity(
                    pid: Int32(truncatingIfNeeded: pid), startTicks: UInt64(max(0, ticks)),
                    processGroup: Int32(truncatingIfNeeded: pgid), bootID: boot, cgroup: try row.optionalText(10))
            }
            return RunRecord(
                id: RunID(rawValue: try row.text(0)), job: try row.text(1), trigger: try trigger(try row.text(2)),
                scheduledFor: try row.optionalInstant(3), startedAt: try row.instant(4),
                // The latest attempt launched: a restored run is recorded `interrupted` under
                // it and retried with the next number (0 attempts: the first never launched).
                attempt: max(1, Int(try row.int64(5))), process: process)
        }
        state.lastSeen = try db.rows("SELECT last_seen FROM agent WHERE id = 1").first.map { try $0.instant(0) }
        if try hasTable("paused") {
            state.paused = Set(try db.rows("SELECT name FROM paused").map { try $0.text(0) })
        }
        if try hasTable("boot") {  // a read-only reader may see a database from before v4
            state.bootID = try db.rows("SELECT boot_id FROM boot WHERE id = 1").first.map { try $0.text(0) }
        }
        if try hasTable("owed") {
            for row in try db.rows("SELECT j.name, o.scheduled_for FROM owed o JOIN jobs j ON j.id = o.job ORDER BY o.job, o.scheduled_for") {
                state.owed[try row.text(0), default: []].append(try row.instant(1))
            }
        }
        return state
    }

    func history(job: JobID, limit: Int) throws -> [RunSummary] {
        guard let key = try jobKey(reading: job) else { return [] }
        return try db.rows(Self.historySQL, key, limit).map { try summary(job: job, $0, from: 0) }
    }

    /// A job's runs, newest first. Runs started in the same millisecond are ordered by their
    /// row key (the order they were recorded), which every entry of `runs_by_job` ends with, so
    /// the index gives the order and no query sorts; `run_id` as the tie-break made SQLite sort
    /// each job's rows in a temporary b-tree (``latestRunsSQL`` for 10,000 jobs with 30 runs
    /// each: 24–37 ms, 12 ms without the sort; `sqlite3` with `.timer on`, docs/benchmarks.md,
    /// sixteenth session). `SQLiteRunOrderTests` checks the plans.
    static let historySQL = """
        SELECT run_id, trigger, scheduled_for, started_at, finished_at, outcome, exit_code, signal, detail, attempts
        FROM runs WHERE job = ? ORDER BY started_at DESC, id DESC LIMIT ?
        """

    /// The latest run of every job, in the order of ``historySQL``.
    static let latestRunsSQL = """
        SELECT j.name, r.run_id, r.trigger, r.scheduled_for, r.started_at, r.finished_at, r.outcome,
               r.exit_code, r.signal, r.detail, r.attempts
        FROM jobs j JOIN runs r
          ON r.id = (SELECT id FROM runs WHERE job = j.id ORDER BY started_at DESC, id DESC LIMIT 1)
        """

    func latestRuns() throws -> [JobID: RunSummary] {
        var out: [JobID: RunSummary] = [:]
        for row in try db.rows(Self.latestRunsSQL) {
            let job = try row.text(0)
            out[job] = try summary(job: job, row, from: 1)
        }
        return out
    }

    func ledger(job: JobID, since: Instant) throws -> [LedgerEntry] {
        guard let key = try jobKey(reading: job) else { return [] }
        return try db.rows(
            """
            SELECT scheduled_for, disposition, reason, run_id, at FROM ledger
            WHERE job = ? AND scheduled_for >= ? ORDER BY scheduled_for
            """, key, since.unixMillis
        ).map { row in
            let name = try row.text(1)
            guard let d = StateCodes.disposition(name: name, reason: try row.optionalText(2), runID: try row.optionalText(3)) else {
                throw StateError(.corrupt, path: path, message: "unknown ledger disposition \(name)")
            }
            return LedgerEntry(job: job, scheduledFor: try row.instant(0), disposition: d, at: try row.instant(4))
        }
    }

    func output(run id: RunID) throws -> [RunOutputRecord] {
        try db.rows(
            """
            SELECT o.attempt, o.text, o.dropped FROM outputs o JOIN runs r ON r.id = o.run
            WHERE r.run_id = ? ORDER BY o.attempt
            """, id.rawValue
        ).map {
            RunOutputRecord(runID: id, attempt: Int(try $0.int64(0)), text: try $0.text(1), droppedBytes: Int(try $0.int64(2)))
        }
    }

    /// The newest `maxBytes + 1` bytes of each attempt's text from SQLite (one byte more than
    /// shown, so ``RunOutputRecord/tail(maxBytes:)`` can tell a cut at a line's start from one
    /// in its middle), the bytes before them counted as dropped.
    func outputTail(run id: RunID, maxBytes: Int) throws -> [RunOutputRecord] {
        let window = max(1, maxBytes + 1)
        return try db.rows(
            """
            SELECT o.attempt, CAST(substr(CAST(o.text AS BLOB), -?2) AS TEXT), o.dropped, length(CAST(o.text AS BLOB))
            FROM outputs o JOIN runs r ON r.id = o.run
            WHERE r.run_id = ?1 ORDER BY o.attempt
            """, id.rawValue, window
        ).map {
            let text = try $0.text(1)
            // A damaged `dropped` must not trap the page: saturated, never negative.
            let before = max(0, Int(try $0.int64(3)) - text.utf8.count)
            let (dropped, overflow) = max(0, Int(try $0.int64(2))).addingReportingOverflow(before)
            return RunOutputRecord(runID: id, attempt: Int(try $0.int64(0)), text: text, droppedBytes: overflow ? .max : dropped)
                .tail(maxBytes: maxBytes)
        }
    }

    /// A `RunSummary` from the run columns starting at `i` (run_id, trigger, scheduled_for,
    /// started_at, finished_at, outcome, exit_code, signal, detail, attempts).
    func summary(job: JobID, _ row: SQLiteRow, from i: Int) throws -> RunSummary {
        var outcome: RunOutcome?
        if let name = try row.optionalText(i + 5) {
            outcome = StateCodes.outcome(
                name: name, exitCode: try row.optionalInt64(i + 6).map { Int32(truncatingIfNeeded: $0) },
                signal: try row.optionalInt64(i + 7).map { Int32(truncatingIfNeeded: $0) },
                detail: try row.optionalText(i + 8))
            if outcome == nil { throw StateError(.corrupt, path: path, message: "unknown outcome \(name)") }
        }
        return RunSummary(
            id: RunID(rawValue: try row.text(i)), job: job, trigger: try trigger(try row.text(i + 1)),
            scheduledFor: try row.optionalInstant(i + 2), startedAt: try row.instant(i + 3),
            finishedAt: try row.optionalInstant(i + 4), outcome: outcome, attempts: Int(try row.int64(i + 9)))
    }

    /// `jobs.id` of `job` for a query, without inserting it.
    func jobKey(reading job: JobID) throws -> Int64? {
        try db.rows("SELECT id FROM jobs WHERE name = ?", job).first.map { try $0.int64(0) }
    }

    func trigger(_ text: String) throws -> RunTrigger {
        guard let t = RunTrigger(rawValue: text) else { throw StateError(.corrupt, path: path, message: "unknown trigger \(text)") }
        return t
    }
}

// MARK: - Bulk reads for the status pages

extension StateQueries {
    /// The newest `limit` runs of every job (`since`: only runs in flight or finished at or
    /// after it), newest first per job: one windowed query instead of one per job.
    func recentRuns(limit: Int, since: Instant? = nil) throws -> [JobID: [RunSummary]] {
        var out: [JobID: [RunSummary]] = [:]
        for row in try db.rows(
            """
            SELECT j.name, r.run_id, r.trigger, r.scheduled_for, r.started_at, r.finished_at, r.outcome,
                   r.exit_code, r.signal, r.detail, r.attempts
            FROM (SELECT *, row_number() OVER (PARTITION BY job ORDER BY started_at DESC, id DESC) AS n
                  FROM runs WHERE ?2 IS NULL OR finished_at IS NULL OR finished_at >= ?2) r
            JOIN jobs j ON j.id = r.job
            WHERE r.n <= ?1
            ORDER BY j.name, r.started_at DESC, r.id DESC
            """, limit, since?.unixMillis)
        {
            let job = try row.text(0)
            out[job, default: []].append(try summary(job: job, row, from: 1))
        }
        return out
    }
}

extension SQLiteStateStore: StatusHistoryReading {
    public func recentRuns(limit: Int) throws -> [JobID: [RunSummary]] {
        guard limit > 0 else { return [:] }
        try flush()
        return try read { try StateQueries(path: path, db: $0).recentRuns(limit: limit) }
    }

    public func runs(since: Instant, limit: Int) throws -> [JobID: [RunSummary]] {
        guard limit > 0 else { return [:] }
        try flush()
        return try read { try StateQueries(path: path, db: $0).recentRuns(limit: limit, since: since) }
    }
}
