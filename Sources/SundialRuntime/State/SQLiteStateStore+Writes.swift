import SundialCore
import Synchronization

// MARK: - Applying one change (inside the writer's transaction)

extension SQLiteStateStore {
    /// Does now what a job's first fire would otherwise do on its launch path: gives every job
    /// its row (and caches the row ids) and compiles every write statement. Costs a few
    /// milliseconds at start for 1,000 jobs; saves the first fire of a fresh agent a few hundred
    /// microseconds of lateness.
    public func warmUp(jobs: some Sequence<JobID>) throws {
        do {
            try writer.withConnection { db in
                try db.transaction {
                    // The keys already stored, in one scan, and one insert for each new job: asked
                    // for job by job (an insert, then a select), 10,000 jobs cost 215 M
                    // instructions, a sixth of a fresh start's CPU (issue 15). Only the set's
                    // jobs are kept in `jobKeys`; the rows of removed ones stay on disk only.
                    var stored: [JobID: Int64] = [:]
                    for row in try db.rows(WriteSQL.allJobIDs) { stored[try row.text(0)] = try row.int64(1) }
                    for job in jobs {
                        if let k = stored[job] {
                            jobKeys.withLock { $0[job] = k }
                        } else {
                            _ = try jobKey(job, in: db)
                        }
                    }
                }
                for sql in WriteSQL.all { try db.cached(sql) }
            }
        } catch {
            // Keys cached inside a transaction that did not commit name rows that do not exist:
            // the next insert would get the same rowid, and two jobs would share it.
            jobKeys.withLock { $0.removeAll() }
            throw Self.stateError(error, path: path)
        }
        wrote()
    }

    func write(_ op: Op, in db: SQLiteConnection) throws {
        switch op {
        case let .alive(now):
            try db.execute(WriteSQL.alive, now.unixMillis)
        case let .change(change):
            try write(change, in: db)
        case let .outboxDone(id):
            try db.execute(OutboxSQL.done, id)
        }
    }

    private func write(_ change: StateChange, in db: SQLiteConnection) throws {
        switch change {
        case let .fired(job, t):
            let key = try jobKey(job, in: db)
            try db.execute(WriteSQL.fired, t.unixMillis, key)

        case let .runStarted(r):
            let key = try jobKey(r.job, in: db)
            try db.execute(WriteSQL.runStarted, r.id.rawValue, key, r.trigger.rawValue, r.scheduledFor?.unixMillis, r.startedAt.unixMillis)

        case let .attemptStarted(id, attempt, pid, at):
            guard let run = try runKey(id, in: db) else { return }
            try db.execute(WriteSQL.attemptStarted, run, attempt, pid, at.unixMillis)
            if attempt == 1, pid != nil { try db.execute(WriteSQL.runStartedAt, at.unixMillis, run) }
            try countAttempt(attempt, run: run, in: db)

        case let .attemptFinished(id, attempt, outcome, at, durationMs):
            guard let run = try runKey(id, in: db) else { return }
            let c = StateCodes.columns(outcome)
            try db.execute(WriteSQL.attemptFinished, run, attempt, at.unixMillis, c.name, c.exitCode, c.signal, c.detail, durationMs)
            try countAttempt(attempt, run: run, in: db)
            try db.execute(WriteSQL.processGone, run)

        case let .processStarted(id, attempt, p):
            guard let run = try runKey(id, in: db) else { return }
            try db.execute(WriteSQL.processStarted, run, attempt, p.pid, Int64(clamping: p.startTicks), p.processGroup, p.bootID, p.cgroup)

        case let .runFinished(id, outcome, at):
            let c = StateCodes.columns(outcome)
            try db.execute(WriteSQL.runFinished, at.unixMillis, c.name, c.exitCode, c.signal, c.detail, id.rawValue)
            if let run = try runKey(id, in: db) {
                try db.execute(WriteSQL.processGone, run)
            }
            if options.fleetOutbox { try writeOutbox(runID: id.rawValue, in: db) }

        case let .planned(entry):
            let key = try jobKey(entry.job, in: db)
            let c = StateCodes.columns(entry.disposition)
            try db.execute(WriteSQL.planned, key, entry.scheduledFor.unixMillis, c.name, c.reason, c.runID, entry.at.unixMillis)

        case let .bootRecorded(bootID):
            try db.execute(WriteSQL.boot, bootID)

        case let .pauseChanged(job, paused):
            try db.execute(paused ? WriteSQL.pause : WriteSQL.resume, job)

        case let .owed(job, t):
            try db.execute(WriteSQL.owed, try jobKey(job, in: db), t.unixMillis)

        case let .owedSettled(job):
            try db.execute(WriteSQL.owedSettled, try jobKey(job, in: db))

        case let .outputStored(record):
            guard let run = try runKey(record.runID, in: db) else { return }
            try db.execute(WriteSQL.output, run, record.attempt, record.text, record.droppedBytes)
            // Output is kept for the newest runs of the job only (a read when nothing is over).
            try db.execute(WriteSQL.outputTrim, run, retention.maxOutputRunsPerJob)
        }
    }

    private func countAttempt(_ attempt: Int, run: Int64, in db: SQLiteConnection) throws {
        try db.execute(WriteSQL.countAttempt, attempt, run)
    }

    /// `jobs.id` of `job`, inserting the row on first sight.
    func jobKey(_ job: JobID, in db: SQLiteConnection) throws -> Int64 {
        if let k = jobKeys.withLock({ $0[job] }) { return k }
        try db.execute(WriteSQL.insertJob, job)
        let k: Int64
        if db.changes == 1 {
            k = db.lastInsertRowID
        } else {
            guard case let .integer(known)? = try db.value(WriteSQL.jobID, job) else {
                throw StateError(.io, path: path, message: "job row for \(job) vanished")
            }
            k = known
        }
        jobKeys.withLock { $0[job] = k }
        return k
    }

    private func runKey(_ id: RunID, in db: SQLiteConnection) throws -> Int64? {
        guard case let .integer(k)? = try db.value(WriteSQL.runID, id.rawValue) else { return nil }
        return k
    }
}

/// The store's write statements, in one place so that ``SQLiteStateStore/warmUp(jobs:)`` can
/// compile them all before the first fire (the connection caches a statement by its SQL text).
enum WriteSQL {
    static let alive = """
        INSERT INTO agent(id, last_seen) VALUES (1, ?)
        ON CONFLICT(id) DO UPDATE SET last_seen = excluded.last_seen
        """
    static let fired = "UPDATE jobs SET last_fired = max(coalesce(last_fired, ?1), ?1) WHERE id = ?2"
    static let runStarted = """
        INSERT INTO runs(run_id, job, trigger, scheduled_for, started_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT(run_id) DO NOTHING
        """
    static let attemptStarted = """
        INSERT INTO attempts(run, attempt, pid, started_at) VALUES (?, ?, ?, ?)
        ON CONFLICT(run, attempt) DO UPDATE SET pid = excluded.pid, started_at = excluded.started_at
        """
    /// The run's start moved to its first process's (see ``StateChange/attemptStarted``).
    /// Only a start 100 ms or more after the decision moves the run's: the ordinary one (a few
    /// milliseconds) would rewrite the row and two index entries, on flash, at every fire.
    static let runStartedAt = "UPDATE runs SET started_at = ?1 WHERE id = ?2 AND abs(started_at - ?1) >= 100"
    static let attemptFinished = """
        INSERT INTO attempts(run, attempt, started_at, finished_at, outcome, exit_code, signal, detail, duration_ms)
        VALUES (?1, ?2, ?3 - ?8, ?3, ?4, ?5, ?6, ?7, ?8)
        ON CONFLICT(run, attempt) DO UPDATE SET finished_at = excluded.finished_at, outcome = excluded.outcome,
          exit_code = excluded.exit_code, signal = excluded.signal, detail = excluded.detail,
          duration_ms = excluded.duration_ms
        """
    static let runFinished = """
        UPDATE runs SET finished_at = ?, outcome = ?, exit_code = ?, signal = ?, detail = ? WHERE run_id = ?
        """
    static let planned = """
        INSERT OR REPLACE INTO ledger(job, scheduled_for, disposition, reason, run_id, at) VALUES (?, ?, ?, ?, ?, ?)
        """
    static let processStarted = """
        INSERT OR REPLACE INTO processes(run, attempt, pid, start_ticks, pgid, boot_id, cgroup) VALUES (?, ?, ?, ?, ?, ?, ?)
        """
    static let processGone = "DELETE FROM processes WHERE run = ?"
    static let output = "INSERT OR REPLACE INTO outputs(run, attempt, text, dropped) VALUES (?, ?, ?, ?)"
    static let outputTrim = """
        DELETE FROM outputs WHERE run IN (
          SELECT o.run FROM (SELECT DISTINCT run FROM outputs) o JOIN runs r ON r.id = o.run
          WHERE r.job = (SELECT job FROM runs WHERE id = ?1)
          ORDER BY r.started_at DESC, r.id DESC LIMIT -1 OFFSET ?2)
        """
    static let pause = "INSERT INTO paused(name) VALUES (?) ON CONFLICT(name) DO NOTHING"
    static let resume = "DELETE FROM paused WHERE name = ?"
    static let boot = "INSERT INTO boot(id, boot_id) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET boot_id = excluded.boot_id"
    static let owed = "INSERT INTO owed(job, scheduled_for) VALUES (?, ?) ON CONFLICT DO NOTHING"
    static let owedSettled = "DELETE FROM owed WHERE job = ?"
    static let countAttempt = "UPDATE runs SET attempts = max(attempts, ?) WHERE id = ?"
    static let insertJob = "INSERT INTO jobs(name) VALUES (?) ON CONFLICT(name) DO NOTHING"
    static let jobID = "SELECT id FROM jobs WHERE name = ?"
    static let allJobIDs = "SELECT name, id FROM jobs"
    static let runID = "SELECT id FROM runs WHERE run_id = ?"

    static let all = [
        alive, fired, runStarted, attemptStarted, runStartedAt, attemptFinished, runFinished, planned, processStarted, processGone, output, outputTrim,
        countAttempt, insertJob, jobID, runID,
    ]
}
