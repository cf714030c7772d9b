import SundialCore
import Synchronization

/// The ``FleetCoordinator`` on PostgreSQL: every rule of the contract is one server-side
/// statement, so each call is one round trip (docs/fleet-database.md).
///
/// Leases are judged on the database's clock (`clock_timestamp()`), never the box's: boxes'
/// clocks may differ by seconds and none of it matters to a lease. Calls are blocking and
/// serialised on one connection (the fleet worker calls them off the scheduling path). The
/// database being unreachable is `.unavailable`, with the reason masked.
///
/// One retry: when a call fails because the connection was lost (a server restart leaves a
/// stale connection whose first use fails), it is tried once more on a new connection. Every
/// statement is safe to repeat except that a repeated claim or takeover finds its own first
/// attempt; that case is recognised (same box, running, via this retry) and reported as won.
public final class PostgresFleetCoordinator: FleetCoordinator, @unchecked Sendable {
    public let settings: PostgresSettings
    public let box: String
    private let connection: Mutex<PostgresConnection>
    /// Calls, failures and the last error, for metrics and `fleet status`.
    private let stats = Mutex(Stats())

    public struct Stats: Sendable, Equatable {
        public var calls = 0
        public var unavailable = 0
        public var lastError: String?
    }

    public init(settings: PostgresSettings, box: String) {
        self.settings = settings
        self.box = box
        let conn = PostgresConnection(settings: settings)
        conn.onConnect = { c throws(PostgresError) in try FleetDatabaseSchema.migrate(c) }
        connection = Mutex(conn)
    }

    public var statistics: Stats { stats.withLock { $0 } }

    /// Connects (and migrates) now; for `sundial run` to report a bad URL at start.
    public func connectNow() throws(PostgresError) {
        try connection.withLock { c throws(PostgresError) in try c.ensureConnected() }
    }

    public func close() { connection.withLock { $0.close() } }

    /// Runs `sql` with one retry after a lost connection; `retried` tells the caller which try answered.
    private func run(_ sql: String, _ params: [String?]) -> Result<(rows: [[String?]], retried: Bool), PostgresError> {
        let result = connection.withLock { c -> Result<(rows: [[String?]], retried: Bool), PostgresError> in
            let wasConnected = c.isConnected
            do throws(PostgresError) {
                return .success((try c.query(sql, params), false))
            } catch  where error.connectionLost && wasConnected {
                do throws(PostgresError) { return .success((try c.query(sql, params), true)) } catch { return .failure(error) }
            } catch {
                return .failure(error)
            }
        }
        stats.withLock { s in
            s.calls += 1
            if case let .failure(e) = result {
                s.unavailable += 1
                s.lastError = e.message
            }
        }
        return result
    }

    public func claim(_ key: FleetClaimKey, box: String, leaseMs: Int64, forbidOverlap: Bool) -> FleetClaimOutcome {
        switch run(
            "SELECT * FROM sundial_claim($1, $2, $3, $4, $5)",
            [key.job, String(key.scheduledFor.unixMillis), box, String(leaseMs), forbidOverlap ? "t" : "f"])
        {
        case let .failure(e):
            return .unavailable(reason: e.message)
        case let .success((rows, retried)):
            guard let r = rows.first, r.count == 6 else { return .unavailable(reason: "sundial_claim returned no row for \(key)") }
            let holder = r[1] ?? ""
            let token = r[2].flatMap { Int64($0) } ?? 0
            let state = r[3] ?? ""
            if r[0] == "t" || (retried && holder == box && state == "running") {
                let expires = Instant(unixMillis: r[4].flatMap { Int64($0) } ?? 0)
                return .won(FleetLease(key: key, box: holder, token: token, expiresAt: expires))
            }
            if state == "busy" {
                return .busy(box: holder, scheduledFor: Instant(unixMillis: r[5].flatMap { Int64($0) } ?? 0))
            }
            return .heldBy(box: holder, token: token, state: FleetClaimState(rawValue: state) ?? .running)
        }
    }

    public func renew(_ lease: FleetLease, leaseMs: Int64) -> FleetRenewOutcome {
        switch run(
            "SELECT * FROM sundial_renew($1, $2, $3, $4)",
            [lease.key.job, String(lease.key.scheduledFor.unixMillis), String(lease.token), String(leaseMs)])
        {
        case let .failure(e):
            return .unavailable(reason: e.message)
        case let .success((rows, _)):
            guard let r = rows.first, r.count == 4 else { return .lost(byBox: nil, token: nil) }
            if r[0] == "t" {
                var renewed = lease
                renewed.expiresAt = Instant(unixMillis: r[3].flatMap { Int64($0) } ?? 0)
                return .renewed(renewed)
            }
            return .lost(byBox: r[1], token: r[2].flatMap { Int64($0) })
        }
    }

    public func finish(_ lease: FleetLease, outcome: String) -> Bool {
        let sql = """
            UPDATE sundial_claims SET state = 'finished', finished_at = clock_timestamp(), lease_expires = clock_timestamp(), outcome = $4
            WHERE job = $1 AND scheduled_for = sundial_ts($2) AND token = $3 AND state = 'running' RETURNING token
            """
        let params = [lease.key.job, String(lease.key.scheduledFor.unixMillis), String(lease.token), outcome]
        switch run(sql, params) {
        case let .success((rows, retried)):
            if !rows.isEmpty { return true }
            guard retried else { return false }
            // The first try may have finished it before the connection dropped.
            if case let .success((again, _)) = run(
                "SELECT 1 FROM sundial_claims WHERE job = $1 AND scheduled_for = sundial_ts($2) AND token = $3 AND state = 'finished'",
                Array(params.prefix(3)))
            {
                return !again.isEmpty
            }
            return false
        case .failure:
            // Unreachable: the claim stays running until its lease expires and on_lost decides;
            // the run's own record still reaches sundial_runs through the outbox.
            return false
        }
    }

    public func expiredLeases(jobs: [JobID], limit: Int) -> [FleetLease] {
        guard !jobs.isEmpty, limit > 0 else { return [] }
        let sql = """
            SELECT job, sundial_ms(scheduled_for), box, token, sundial_ms(lease_expires) FROM sundial_claims
            WHERE state = 'running' AND lease_expires <= clock_timestamp() AND job = ANY($1::text[])
            ORDER BY lease_expires, job LIMIT $2
            """
        guard case let .success((rows, _)) = run(sql, [Self.textArray(jobs), String(limit)]) else { return [] }
        return rows.compactMap { r -> FleetLease? in
            guard r.count == 5, let job = r[0], let at = r[1].flatMap({ Int64($0) }), let box = r[2], let token = r[3].flatMap({ Int64($0) }),
                let expires = r[4].flatMap({ Int64($0) })
            else { return nil }
            return FleetLease(
                key: FleetClaimKey(job: job, scheduledFor: Instant(unixMillis: at)), box: box, token: token,
                expiresAt: Instant(unixMillis: expires))
        }
    }

    public func resolveLost(_ lease: FleetLease, action: FleetLostAction, box: String, leaseMs: Int64) -> FleetClaimOutcome {
        switch run(
            "SELECT * FROM sundial_resolve_lost($1, $2, $3, $4, $5, $6)",
            [lease.key.job, String(lease.key.scheduledFor.unixMillis), String(lease.token), action == .rerun ? "t" : "f", box, String(leaseMs)])
        {
        case let .failure(e):
            return .unavailable(reason: e.message)
        case let .success((rows, retried)):
            guard let r = rows.first, r.count == 5 else { return .unavailable(reason: "the claim \(lease.key) is gone (retention?)") }
            let holder = r[1] ?? ""
            let token = r[2].flatMap { Int64($0) } ?? 0
            let state = FleetClaimState(rawValue: r[3] ?? "") ?? .running
            let won = r[0] == "t" || (retried && action == .rerun && holder == box && state == .running && token != lease.token)
            if won, action == .rerun {
                return .won(FleetLease(key: lease.key, box: holder, token: token, expiresAt: Instant(unixMillis: r[4].flatMap { Int64($0) } ?? 0)))
            }
            if won {
                // `.skip` done by this box: reported as held, lost, under this box's name (the
                // caller that acted logs it; another box that finds it already lost sees the
                // original holder's name).
                return .heldBy(box: box, token: token, state: .lost)
            }
            return .heldBy(box: holder, token: token, state: state)
        }
    }

    /// A PostgreSQL array literal of texts, every element quoted (so commas, braces, quotes and
    /// backslashes in job names stay data).
    static func textArray(_ values: [String]) -> String {
        "{"
            + values.map { v in
                var q = "\""
                for ch in v {
                    if ch == "\"" || ch == "\\" { q.append("\\") }
                    q.append(ch)
                }
                return q + "\""
            }.joined(separator: ",") + "}"
    }
}
