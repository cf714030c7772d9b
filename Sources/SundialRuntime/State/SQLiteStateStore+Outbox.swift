import SundialCore

/// A run's record waiting in the local outbox (state.db `fleet_outbox`, migration v8) to be
/// published to the fleet's `sundial_runs` table (``FleetRunPublisher``).
public struct FleetOutboxRecord: Hashable, Sendable {
    /// The outbox row, in the order runs ended.
    public var id: Int64
    public var runID: String
    public var job: String
    public var attempt: Int
    public var scheduledFor: Instant?
    public var startedAt: Instant
    public var finishedAt: Instant
    public var outcome: String
    public var exitCode: Int?
    public var outputTail: String?
}

/// The outbox: why in the state database. A run's end is written to it in the same commit as the
/// run's own record, so a record can neither be published without having happened nor be lost
/// to a crash or a database outage; the publisher reads from the reader connection and has the
/// published rows deleted by the writer's batched commit, so it never takes SQLite's write lock
/// on the scheduling path. Filled only when ``SQLiteStateStore/Options/fleetOutbox`` is on (an
/// agent with `--fleet`). Bounded: ``SQLiteStateStore/Options/fleetOutboxCapacity`` rows, the
/// oldest dropped beyond and counted in `fleet_outbox_dropped`.
extension SQLiteStateStore {
    /// Up to `limit` records, oldest first.
    public func fleetOutbox(limit: Int) throws -> [FleetOutboxRecord] {
        do {
            return try aux.withConnection { db in
                try db.rows(OutboxSQL.batch, Int64(limit)).map { r in
                    FleetOutboxRecord(
                        id: try r.int64(0), runID: try r.text(1), job: try r.text(2), attempt: Int(try r.int64(3)),
                        scheduledFor: try r.optionalInstant(4),
                        startedAt: try r.instant(5), finishedAt: try r.instant(6),
                        outcome: try r.text(7), exitCode: try r.optionalInt64(8).map { Int($0) }, outputTail: try r.optionalText(9))
                }
            }
        } catch {
            throw Self.stateError(error, path: path)
        }
    }

    /// Records that every outbox row up to `id` was published: deleted in the next batched
    /// commit (a crash before it publishes them again, which the run id makes harmless).
    public func fleetOutboxPublished(through id: Int64) throws {
        try enqueueOutboxDone(id)
    }

    /// Rows waiting, and rows dropped since the database was created because the outbox was full.
    public func fleetOutboxCounts() throws -> (waiting: Int64, dropped: Int64) {
        do {
            return try aux.withConnection { db in
                let waiting = try db.value("SELECT count(*) FROM fleet_outbox")
                let dropped = try db.value("SELECT coalesce((SELECT n FROM fleet_outbox_dropped WHERE id = 1), 0)")
                guard case let .integer(w)? = waiting, case let .integer(d)? = dropped else { return (0, 0) }
                return (w, d)
            }
        } catch {
            throw Self.stateError(error, path: path)
        }
    }

    /// In the writer's transaction, right after `.runFinished` (its output is already stored:
    /// the agent applies `.outputStored` first).
    func writeOutbox(runID: String, in db: SQLiteConnection) throws {
        try db.execute(OutboxSQL.insert, runID)
        try db.execute(OutboxSQL.countDropped, Int64(options.fleetOutboxCapacity))
        try db.execute(OutboxSQL.trim, Int64(options.fleetOutboxCapacity))
    }
}

enum OutboxSQL {
    static let insert = """
        INSERT INTO fleet_outbox(run_id, job, attempt, scheduled_for, started_at, finished_at, outcome, exit_code, output_tail)
        SELECT r.run_id, j.name, max(r.attempts, 1), r.scheduled_for, r.started_at, r.finished_at, r.outcome, r.exit_code,
          (SELECT o.text FROM outputs o WHERE o.run = r.id ORDER BY o.attempt DESC LIMIT 1)
        FROM runs r JOIN jobs j ON j.id = r.job WHERE r.run_id = ? AND r.finished_at IS NOT NULL
        """
    /// Rows beyond the capacity are the oldest ids (rows leave from the front only).
    static let countDropped = """
        INSERT INTO fleet_outbox_dropped(id, n)
        SELECT 1, count(*) FROM fleet_outbox WHERE id <= (SELECT max(id) FROM fleet_outbox) - ?1
        ON CONFLICT(id) DO UPDATE SET n = n + excluded.n
        """
    static let trim = "DELETE FROM fleet_outbox WHERE id <= (SELECT max(id) FROM fleet_outbox) - ?"
    static let batch = """
        SELECT id, run_id, job, attempt, scheduled_for, started_at, finished_at, outcome, exit_code, output_tail
        FROM fleet_outbox ORDER BY id LIMIT ?
        """
    static let done = "DELETE FROM fleet_outbox WHERE id <= ?"
}
