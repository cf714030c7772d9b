import CSQLite
import SundialCore
import Synchronization

/// One connection to an SQLite database, through SQLite's C API.
///
/// Why not GRDB (which the state store used until issue 15): GRDB links Foundation, and through
/// it ICU's 34 MB of data, into the shipped binary; the store needs a dozen statements, one
/// transaction shape and two checkpoint modes. This file is the whole of what it uses: open,
/// run a statement with bound arguments, read rows, cache compiled statements, transactions,
/// checkpoints. Not thread-safe on its own: ``SQLiteDatabase`` serialises every use.
package final class SQLiteConnection {
    package let path: String
    private let handle: OpaquePointer
    /// Compiled statements by their SQL text, so the firing path never compiles (the text is a
    /// constant of ``WriteSQL`` or a query; the set is small and fixed, so it is not bounded).
    private var cache: [String: SQLiteStatement] = [:]
    private var closed = false
    /// An operation on this connection found the file damaged (`SQLITE_CORRUPT`, `SQLITE_NOTADB`),
    /// whatever its caller did with the error: a store that met this writes no clean-close mark.
    package private(set) var metCorruption = false

    /// The error for a failed call, noting damage (``metCorruption``).
    func failure(_ rc: Int32, _ message: String) -> SQLiteError {
        if rc & 0xff == SQLITE_CORRUPT || rc & 0xff == SQLITE_NOTADB { metCorruption = true }
        return SQLiteError(code: rc, message: message)
    }

    /// Opens (creating if `readOnly` is false) the database at `path`. A file that is not a
    /// database opens fine; the first statement then fails with `SQLITE_NOTADB`.
    package init(path: String, readOnly: Bool = false, busyTimeoutMs: Int32 = 5000) throws(SQLiteError) {
        self.path = path
        var db: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let error = SQLiteError(code: rc, message: db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open")
            sqlite3_close_v2(db)
            throw error
        }
        handle = db
        sqlite3_busy_timeout(db, busyTimeoutMs)
    }

    deinit { close() }

    /// The write-ahead log's path as SQLite names it: next to the database file SQLite really
    /// opened, which is not `path + "-wal"` when `path` is a symbolic link (SQLite resolves it).
    package var walPath: String? {
        guard let name = sqlite3_db_filename(handle, "main"), let wal = sqlite3_filename_wal(name) else { return nil }
        let s = String(cString: wal)
        return s.isEmpty ? nil : s
    }

    /// The rowid of the last row inserted on this connection, and how many rows the last
    /// statement changed: an `INSERT … ON CONFLICT DO NOTHING` inserted when `changes` is 1.
    /// (`RETURNING` would say it in one statement, but needs SQLite 3.35, newer than some
    /// distributions the agent runs on.)
    package var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    package var changes: Int32 { sqlite3_changes(handle) }

    /// Finalises the cached statements and closes the connection (idempotent).
    package func close() {
        guard !closed else { return }
        closed = true
        cache.removeAll()
        sqlite3_close_v2(handle)
    }

    // MARK: - Statements

    /// Runs one or more statements without arguments (schema, pragmas).
    package func execute(script sql: String) throws(SQLiteError) {
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &message)
        if rc != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? lastMessage
            sqlite3_free(message)
            throw failure(rc, text)
        }
    }

    /// Runs one statement to completion with `arguments` bound to its `?` parameters.
    package func execute(_ sql: String, _ arguments: any SQLiteBindable...) throws(SQLiteError) {
        let statement = try cached(sql)
        try statement.bind(arguments)
        defer { statement.reset() }
        while try statement.step() {}
    }

    /// The rows of one query.
    package func rows(_ sql: String, _ arguments: any SQLiteBindable...) throws(SQLiteError) -> [SQLiteRow] {
        try rows(sql, arguments: arguments)
    }

    package func rows(_ sql: String, arguments: [any SQLiteBindable]) throws(SQLiteError) -> [SQLiteRow] {
        let statement = try cached(sql)
        try statement.bind(arguments)
        defer { statement.reset() }
        var out: [SQLiteRow] = []
        while try statement.step() { out.append(statement.row()) }
        return out
    }

    /// The first column of the first row of a query, or `nil` without rows.
    package func value(_ sql: String, _ arguments: any SQLiteBindable...) throws(SQLiteError) -> SQLiteValue? {
        try rows(sql, arguments: arguments).first?[0]
    }

    /// Compiles `sql` once and keeps it (see ``cache``).
    @discardableResult
    package func cached(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let s = cache[sql] { return s }
        var raw: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &raw, nil)
        guard rc == SQLITE_OK, let raw else { throw failure(rc, lastMessage) }
        let s = SQLiteStatement(raw, connection: self)
        cache[sql] = s
        return s
    }

    // MARK: - Transactions and checkpoints

    /// Runs `body` in a transaction, committing when it returns and rolling back when it throws.
    /// A writing transaction begins `IMMEDIATE` (the write lock is taken at once, so a busy
    /// database fails here, not half-way); a reading one `DEFERRED`, which under WAL reads one
    /// consistent snapshot and never takes the write lock, so it never delays the writer.
    package func transaction<T>(readOnly: Bool = false, _ body: () throws -> T) throws -> T {
        try execute(readOnly ? "BEGIN DEFERRED" : "BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            if sqlite3_get_autocommit(handle) == 0 { try? execute("ROLLBACK") }
            throw error
        }
    }

    package enum CheckpointMode {
        case passive, truncate
        var raw: Int32 { self == .passive ? SQLITE_CHECKPOINT_PASSIVE : SQLITE_CHECKPOINT_TRUNCATE }
    }

    package func checkpoint(_ mode: CheckpointMode) throws(SQLiteError) {
        let rc = sqlite3_wal_checkpoint_v2(handle, nil, mode.raw, nil, nil)
        if rc != SQLITE_OK { throw failure(rc, lastMessage) }
    }

    /// The number of frames in the write-ahead log after the last commit on this connection
    /// (0 before ``countWALFrames()`` and the first commit). A checkpoint that copies the whole
    /// log lets the next commit restart it, and the count starts again from that commit's frames.
    package var walFrames: Int32 { walFrameCounter?.frames.load(ordering: .relaxed) ?? 0 }
    private var walFrameCounter: WALFrameCounter?

    /// Counts the WAL's frames after each commit (`sqlite3_wal_hook`, which replaces SQLite's
    /// automatic checkpoint hook: the store checkpoints on its own). The hook runs inside the
    /// commit, so it only stores a number. A later `PRAGMA wal_autocheckpoint` on this
    /// connection would replace the hook and freeze the count: set that pragma before.
    package func countWALFrames() {
        let counter = WALFrameCounter()
        walFrameCounter = counter
        sqlite3_wal_hook(
            handle,
            { context, _, _, frames in
                if let context { Unmanaged<WALFrameCounter>.fromOpaque(context).takeUnretainedValue().frames.store(frames, ordering: .relaxed) }
                return SQLITE_OK
            }, Unmanaged.passUnretained(counter).toOpaque())
    }

    var lastMessage: String { String(cString: sqlite3_errmsg(handle)) }
}

/// What the WAL hook of ``SQLiteConnection/countWALFrames()`` writes to; owned by the connection,
/// which outlives its hook.
private final class WALFrameCounter: Sendable {
    let frames = Atomic<Int32>(0)
}

/// A compiled statement, owned by its connection's cache.
package final class SQLiteStatement {
    private let handle: OpaquePointer
    private unowned let connection: SQLiteConnection

    init(_ handle: OpaquePointer, connection: SQLiteConnection) {
        self.handle = handle
        self.connection = connection
    }

    deinit { sqlite3_finalize(handle) }

    func bind(_ arguments: [any SQLiteBindable]) throws(SQLiteError) {
        sqlite3_clear_bindings(handle)
        for (i, argument) in arguments.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch argument.sqliteValue {
            case .null: rc = sqlite3_bind_null(handle, index)
            case let .integer(v): rc = sqlite3_bind_int64(handle, index, v)
            case let .text(s):
                rc = s.utf8CString.withUnsafeBufferPointer {
                    sqlite3_bind_text(handle, index, $0.baseAddress, Int32($0.count - 1), sundial_sqlite_transient)
                }
            }
            if rc != SQLITE_OK { throw connection.failure(rc, connection.lastMessage) }
        }
    }

    /// Advances; `true` when a row is ready.
    func step() throws(SQLiteError) -> Bool {
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let rc:
            let message = connection.lastMessage
            sqlite3_reset(handle)
            throw connection.failure(rc, message)
        }
    }

    func row() -> SQLiteRow {
        let n = sqlite3_column_count(handle)
        var values: [SQLiteValue] = []
        values.reserveCapacity(Int(n))
        for i in 0..<n {
            switch sqlite3_column_type(handle, i) {
            case SQLITE_NULL: values.append(.null)
            case SQLITE_INTEGER: values.append(.integer(sqlite3_column_int64(handle, i)))
            case SQLITE_FLOAT:
                // Truncated when it fits; otherwise (beyond ±9.2e18, infinite, NaN) kept as text,
                // which the typed accessors report as a damaged database instead of trapping.
                let d = sqlite3_column_double(handle, i)
                values.append(Int64(exactly: d.rounded(.towardZero)).map(SQLiteValue.integer) ?? .text("\(d)"))
            default:
                let count = Int(sqlite3_column_bytes(handle, i))
                if let p = sqlite3_column_text(handle, i) {
                    values.append(.text(String(decoding: UnsafeBufferPointer(start: p, count: count), as: UTF8.self)))
                } else {
                    values.append(.text(""))
                }
            }
        }
        return SQLiteRow(values: values)
    }

    func reset() { sqlite3_reset(handle) }
}

/// A connection behind a lock: the store's writer and its auxiliary reader are each one of these,
/// used from the scheduler's callers and the store's background worker.
package final class SQLiteDatabase: @unchecked Sendable {
    private let lock = Mutex(())
    // Guarded by `lock`: every use goes through `withConnection`.
    private let connection: SQLiteConnection

    package init(path: String, readOnly: Bool = false) throws(SQLiteError) {
        connection = try SQLiteConnection(path: path, readOnly: readOnly)
    }

    package func withConnection<T: Sendable>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        try lock.withLock { _ throws -> T in try body(connection) }
    }

    package func close() {
        lock.withLock { _ in connection.close() }
    }

    /// See ``SQLiteConnection/metCorruption``.
    package var metCorruption: Bool { lock.withLock { _ in connection.metCorruption } }
}

/// A column value. SQLite's REAL never occurs in Sundial's schema (times are integer
/// milliseconds); one read anyway (a hand-edited database) is truncated to an integer rather
/// than dropped, or read as text when no integer holds it.
package enum SQLiteValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case text(String)
}

/// A value that can be bound to a statement's parameter.
package protocol SQLiteBindable {
    var sqliteValue: SQLiteValue { get }
}

extension Int: SQLiteBindable { package var sqliteValue: SQLiteValue { .integer(Int64(self)) } }
extension Int32: SQLiteBindable { package var sqliteValue: SQLiteValue { .integer(Int64(self)) } }
extension Int64: SQLiteBindable { package var sqliteValue: SQLiteValue { .integer(self) } }
extension String: SQLiteBindable { package var sqliteValue: SQLiteValue { .text(self) } }
extension SQLiteValue: SQLiteBindable { package var sqliteValue: SQLiteValue { self } }
extension Optional: SQLiteBindable where Wrapped: SQLiteBindable {
    package var sqliteValue: SQLiteValue { self?.sqliteValue ?? .null }
}

/// One result row; the typed accessors throw a `SQLITE_MISMATCH` error (reported as a damaged
/// database) when a column does not hold what the schema says.
package struct SQLiteRow: Sendable {
    package let values: [SQLiteValue]

    package subscript(_ i: Int) -> SQLiteValue { i < values.count ? values[i] : .null }

    package func int64(_ i: Int) throws(SQLiteError) -> Int64 {
        guard case let .integer(v) = self[i] else { throw .mismatch(column: i, expected: "integer", found: self[i]) }
        return v
    }

    package func optionalInt64(_ i: Int) throws(SQLiteError) -> Int64? {
        if case .null = self[i] { return nil }
        return try int64(i)
    }

    /// The instants Sundial writes lie between the years 1 and 9999 (RFC 3339's range). A value
    /// outside is damage: refused here, so that no formatting or arithmetic on it can trap.
    package static let instantRange: ClosedRange<Int64> = -62_135_596_800_000...253_402_300_799_999

    package func instant(_ i: Int) throws(SQLiteError) -> Instant {
        let ms = try int64(i)
        guard Self.instantRange.contains(ms) else { throw .mismatch(column: i, expected: "an instant from year 1 to 9999", found: self[i]) }
        return Instant(unixMillis: ms)
    }

    package func optionalInstant(_ i: Int) throws(SQLiteError) -> Instant? {
        if case .null = self[i] { return nil }
        return try instant(i)
    }

    package func text(_ i: Int) throws(SQLiteError) -> String {
        guard case let .text(s) = self[i] else { throw .mismatch(column: i, expected: "text", found: self[i]) }
        return s
    }

    package func optionalText(_ i: Int) throws(SQLiteError) -> String? {
        if case .null = self[i] { return nil }
        return try text(i)
    }
}

/// An SQLite result code with its message.
package struct SQLiteError: Error, CustomStringConvertible {
    /// The full (possibly extended) result code.
    package let code: Int32
    package let message: String

    package init(code: Int32, message: String) {
        self.code = code
        self.message = message
    }

    /// The primary result code (`SQLITE_CORRUPT`, `SQLITE_BUSY`, ...).
    package var primary: Int32 { code & 0xff }

    /// Damage, or not a database at all: `--reset-state` territory rather than a retry.
    package var isCorruption: Bool { primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB || primary == SQLITE_MISMATCH }

    static func mismatch(column: Int, expected: String, found: SQLiteValue) -> SQLiteError {
        SQLiteError(code: SQLITE_MISMATCH, message: "column \(column) holds \(found), expected \(expected)")
    }

    package var description: String { "\(message) (SQLite code \(code))" }
}
