import SundialCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The state database opened read-only, for the client commands (`history`, `why`, `logs`,
/// `status`) when no agent answers: `state.db` holds everything they show, and an operator
/// looking at a stopped box should not have to start the agent to read it.
///
/// Safe beside a running agent: SQLite's WAL lets a reader see the last committed state while
/// the agent writes; the connection is `SQLITE_OPEN_READONLY` with `query_only`, never migrates
/// and never checkpoints, so it cannot change the file. A database written by a newer Sundial
/// (unknown migrations) is refused, as the agent refuses it.
public final class StateReader: Sendable {
    public let path: String
    private let database: SQLiteDatabase

    /// - Throws: ``StateError`` `.io` when the file is missing or unreadable, `.corrupt` when it
    ///   is not a state database, `.newerSchema` when a newer release wrote it.
    public init(path: String) throws {
        self.path = path
        guard access(path, R_OK) == 0 else {
            throw StateError(.io, path: path, message: "cannot read the state database: \(String(cString: strerror(errno)))")
        }
        do {
            database = try SQLiteDatabase(path: path, readOnly: true)
            try database.withConnection { db in
                try db.execute(script: "PRAGMA query_only = 1")
                if try SQLiteStateStore.migrator.hasBeenSuperseded(db) {
                    throw StateError(.newerSchema, path: path, message: "unknown schema migrations")
                }
                let tables = try db.rows("SELECT name FROM sqlite_master WHERE type = 'table'").map { try $0.text(0) }
                guard tables.contains("runs"), tables.contains("jobs") else {
                    throw StateError(.corrupt, path: path, message: "not a Sundial state database (no runs table)")
                }
            }
        } catch {
            throw SQLiteStateStore.stateError(error, path: path)
        }
    }

    deinit { database.close() }

    public func restore() throws -> RestoredState { try read { try $0.restore() } }

    public func history(job: JobID, limit: Int) throws -> [RunSummary] {
        guard limit > 0 else { return [] }
        return try read { try $0.history(job: job, limit: limit) }
    }

    public func latestRuns() throws -> [JobID: RunSummary] { try read { try $0.latestRuns() } }

    public func ledger(job: JobID, since: Instant) throws -> [LedgerEntry] { try read { try $0.ledger(job: job, since: since) } }

    /// The stored output of run `id`; empty for a database from before output was stored.
    public func output(run id: RunID) throws -> [RunOutputRecord] {
        try read { q in try q.hasTable("outputs") ? q.output(run: id) : [] }
    }

    /// Every job the database has seen (its `jobs` rows), sorted.
    public func jobs() throws -> [JobID] {
        try read { q in try q.db.rows("SELECT name FROM jobs ORDER BY name").map { try $0.text(0) } }
    }

    private func read<T: Sendable>(_ body: (StateQueries) throws -> T) throws -> T {
        do {
            return try database.withConnection { db in
                try db.transaction(readOnly: true) { try body(StateQueries(path: path, db: db)) }
            }
        } catch {
            throw SQLiteStateStore.stateError(error, path: path)
        }
    }
}

extension StateQueries {
    func hasTable(_ name: String) throws -> Bool {
        try db.value("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", name) == .integer(1)
    }
}
