import CSundialPQ
import CSundialShim  // `timespec`'s fields (see PathProbe.swift)

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An error from PostgreSQL or from reaching it, its text already masked (no password).
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// The SQLSTATE when the server answered with an error (e.g. `57014`: statement timeout).
    public var sqlState: String?
    /// True when the connection is gone (or was never made): the database is *unavailable*,
    /// as opposed to having refused a statement.
    public var connectionLost: Bool
    public var description: String { message }
    public init(message: String, sqlState: String? = nil, connectionLost: Bool) {
        self.message = message
        self.sqlState = sqlState
        self.connectionLost = connectionLost
    }
}

/// One libpq connection, blocking, used by one thread at a time (callers serialise: the fleet
/// coordinator under its lock, the publisher on its own thread).
///
/// Why so thin: every statement is parameterised (`PQexecParams`, text in and out), nothing is
/// ever built by pasting values into SQL. The connection is made lazily and remade after a loss,
/// with a bounded backoff (100 ms doubling to ``maxBackoffMs``) so that a dead server costs one
/// failed connect per backoff period, not one per call: calls in between fail at once.
public final class PostgresConnection: @unchecked Sendable {
    public let settings: PostgresSettings
    /// Run after each new connection, before the first statement (schema migration).
    public var onConnect: ((PostgresConnection) throws(PostgresError) -> Void)?
    public var maxBackoffMs: Int64 = 5_000

    private var handle: UnsafeMutableRawPointer?
    private var failures = 0
    private var nextAttemptMs: Int64 = 0
    private var lastFailure: String = ""

    public init(settings: PostgresSettings) {
        self.settings = settings
    }

    deinit { close() }

    public var isConnected: Bool { handle.map { sundial_pq_ok($0) != 0 } ?? false }

    /// The server process serving this connection (tests end it to simulate a cut).
    public var backendPID: Int32 { handle.map { sundial_pq_backend_pid($0) } ?? 0 }

    public func close() {
        if let handle { sundial_pq_finish(handle) }
        handle = nil
    }

    /// Loads libpq (once per process). Throws when libpq5 is not installed.
    public static func loadLibrary() throws(PostgresError) {
        var buffer = [CChar](repeating: 0, count: 256)
        guard sundial_pq_load(&buffer, buffer.count) == 0 else {
            throw PostgresError(
                message: String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self), sqlState: nil, connectionLost: true)
        }
    }

    static func monotonicMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// Connects if not connected (respecting the backoff).
    public func ensureConnected() throws(PostgresError) {
        if let handle, sundial_pq_ok(handle) != 0 { return }
        close()
        let now = Self.monotonicMs()
        if now < nextAttemptMs {
            throw PostgresError(message: "\(lastFailure) (next attempt in \(nextAttemptMs - now) ms)", sqlState: nil, connectionLost: true)
        }
        do throws(PostgresError) {
            try Self.loadLibrary()
            try connect()
            try onConnect?(self)
            failures = 0
            nextAttemptMs = 0
        } catch {
            close()
            failures += 1
            let backoff = min(maxBackoffMs, 100 << Int64(min(failures - 1, 16)))
            nextAttemptMs = Self.monotonicMs() + backoff
            lastFailure = error.message
            throw error
        }
    }

    /// Forgets the backoff (tests, and the publisher after a successful probe).
    public func resetBackoff() {
        failures = 0
        nextAttemptMs = 0
    }

    private func connect() throws(PostgresError) {
        var keywords = [
            "dbname", "connect_timeout", "application_name", "tcp_user_timeout", "keepalives", "keepalives_idle",
            "keepalives_interval", "keepalives_count",
        ]
        var values = [
            settings.url, String(max(2, settings.connectTimeoutSeconds)), settings.applicationName,
            String(settings.tcpUserTimeoutMs), "1", "10", "5", "3",
        ]
        if let password = settings.password {
            keywords.append("password")
            values.append(password)
        }
        let conn = withCStrings(keywords) { k in withCStrings(values) { v in sundial_pq_connect(k, v) } }
        guard let conn, sundial_pq_ok(conn) != 0 else {
            let message = conn.map { String(cString: sundial_pq_conn_error($0)) } ?? "out of memory"
            if let conn { sundial_pq_finish(conn) }
            throw PostgresError(
                message: "cannot connect to \(settings.maskedURL): \(settings.masked(Self.trimmed(message)))", sqlState: nil, connectionLost: true)
        }
        handle = conn
        _ = try execute("SELECT set_config('statement_timeout', $1, false)", [String(settings.statementTimeoutMs)])
    }

    /// Runs one parameterised statement; returns its rows (text values, `nil` for NULL).
    @discardableResult
    public func query(_ sql: String, _ params: [String?] = []) throws(PostgresError) -> [[String?]] {
        try ensureConnected()
        return try execute(sql, params)
    }

    private func execute(_ sql: String, _ params: [String?]) throws(PostgresError) -> [[String?]] {
        guard let handle else { throw PostgresError(message: "not connected", sqlState: nil, connectionLost: true) }
        let result = withOptionalCStrings(params) { p in sundial_pq_exec(handle, sql, Int32(params.count), p) }
        defer { sundial_pq_clear(result) }
        switch sundial_pq_result_kind(result) {
        case 0:
            return []
        case 1:
            guard let result else { return [] }
            let rows = sundial_pq_ntuples(result)
            let cols = sundial_pq_nfields(result)
            var out: [[String?]] = []
            out.reserveCapacity(Int(rows))
            for r in 0..<rows {
                var row: [String?] = []
                row.reserveCapacity(Int(cols))
                for c in 0..<cols { row.append(sundial_pq_value(result, r, c).map { String(cString: $0) }) }
                out.append(row)
            }
            return out
        default:
            let lost = sundial_pq_ok(handle) == 0
            let text = result.map { String(cString: sundial_pq_result_error($0)) } ?? ""
            let message = text.isEmpty ? String(cString: sundial_pq_conn_error(handle)) : text
            let state = result.flatMap { sundial_pq_result_sqlstate($0) }.map { String(cString: $0) }
            if lost { close() }
            throw PostgresError(message: settings.masked(Self.trimmed(message)), sqlState: state, connectionLost: lost)
        }
    }

    /// Runs `body` in a transaction (BEGIN ... COMMIT, ROLLBACK on error).
    public func transaction<T>(_ body: () throws(PostgresError) -> T) throws(PostgresError) -> T {
        try query("BEGIN")
        do throws(PostgresError) {
            let value = try body()
            try query("COMMIT")
            return value
        } catch {
            if isConnected { _ = try? execute("ROLLBACK", []) }
            throw error
        }
    }

    static func trimmed(_ s: String) -> String {
        var s = Substring(s)
        while let last = s.last, last == "\n" || last == " " { s = s.dropLast() }
        return s.split(separator: "\n").joined(separator: "; ")
    }
}

private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    withOptionalCStrings(strings.map(Optional.some), body)
}

/// A NULL-terminated array of C strings (nil entries stay NULL) valid during `body`.
private func withOptionalCStrings<R>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies: [UnsafeMutablePointer<CChar>?] = strings.map { $0.flatMap { strdup($0) } }
    defer { for c in copies { free(c) } }
    var pointers: [UnsafePointer<CChar>?] = copies.map { $0.map { UnsafePointer($0) } }
    pointers.append(nil)
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
