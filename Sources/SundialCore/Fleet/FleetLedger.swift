import Synchronization

/// The fleet's database as a model: an in-memory ``FleetCoordinator`` that follows every rule
/// of the contract, on an injected database clock, with faults to inject.
///
/// Why a model: the scheduler's fleet behaviour is tested, and the 1,000-box simulation run, on
/// virtual time without PostgreSQL; the PostgreSQL coordinator must agree with it rule for rule
/// (its multi-agent tests check the same properties against the real thing).
///
/// Faults: a database outage (every call fails: `unavailable`, `false`, no leases), boxes cut
/// off from it (the same, for those boxes only), and counters of every call, which the
/// simulation reports as round trips. Slow answers and box deaths are the driver's to model
/// (when an answer is delivered; a dead box simply stops calling), since they are not the
/// database's state.
public final class FleetLedger: FleetCoordinator {
    /// One claim row.
    public struct Claim: Hashable, Sendable {
        public var box: String
        public var token: Int64
        public var expiresAt: Instant
        public var state: FleetClaimState
        public var outcome: String?
    }

    /// Calls answered (or refused) so far, by kind.
    public struct Counters: Hashable, Sendable {
        public var claims = 0
        public var claimsWon = 0
        public var renewals = 0
        public var finishes = 0
        public var scans = 0
        public var resolutions = 0
        public var refused = 0
        public var total: Int { claims + renewals + finishes + scans + resolutions }
    }

    struct State {
        var now: Instant
        var nextToken: Int64 = 1
        var claims: [FleetClaimKey: Claim] = [:]
        /// Unfinished claims per job (what `forbid` and the scan look at).
        var open: [JobID: Set<FleetClaimKey>] = [:]
        var outage = false
        var cutOff: Set<String> = []
        var counters = Counters()
    }

    let state: Mutex<State>

    /// - Parameter now: the database clock's reading; move it with ``setNow(_:)``.
    public init(now: Instant) {
        state = Mutex(State(now: now))
    }

    // MARK: - The database clock and faults

    /// Sets the database clock (the only clock leases are judged on).
    public func setNow(_ now: Instant) { state.withLock { $0.now = now } }

    /// A database outage: while `true`, every call fails.
    public func setOutage(_ down: Bool) { state.withLock { $0.outage = down } }

    /// Cuts `box` off from the database (a partition), or reconnects it.
    public func setCutOff(_ box: String, _ cut: Bool) {
        state.withLock { if cut { $0.cutOff.insert(box) } else { $0.cutOff.remove(box) } }
    }

    public var counters: Counters { state.withLock { $0.counters } }

    /// The claim row of an instant, if any (for tests and the simulation's checks).
    public func claim(of key: FleetClaimKey) -> Claim? { state.withLock { $0.claims[key] } }

    /// Every claim row (for the simulation's checks).
    public var allClaims: [FleetClaimKey: Claim] { state.withLock { $0.claims } }

    /// Forgets finished and lost claims of instants before `instant` (a real database would
    /// keep them as history; the model keeps memory bounded on long runs).
    public func prune(before instant: Instant) {
        state.withLock { s in
            s.claims = s.claims.filter { $0.key.scheduledFor >= instant || $0.value.state == .running }
        }
    }

    // MARK: - FleetCoordinator

    public func claim(_ key: FleetClaimKey, box: String, leaseMs: Int64, forbidOverlap: Bool) -> FleetClaimOutcome {
        state.withLock { s in
            guard Self.reachable(&s, box) else { return .unavailable(reason: "database unreachable") }
            s.counters.claims += 1
            if let c = s.claims[key] { return .heldBy(box: c.box, token: c.token, state: c.state) }
            if forbidOverlap, let open = s.open[key.job] {
                for k in open.sorted(by: { $0.scheduledFor < $1.scheduledFor }) {
                    if let c = s.claims[k], c.state == .running, c.expiresAt > s.now {
                        return .busy(box: c.box, scheduledFor: k.scheduledFor)
                    }
                }
            }
            let token = s.nextToken
            s.nextToken += 1
            let expires = Instant(unixMillis: s.now.unixMillis &+ max(0, leaseMs))
            s.claims[key] = Claim(box: box, token: token, expiresAt: expires, state: .running)
            s.open[key.job, default: []].insert(key)
            s.counters.claimsWon += 1
            return .won(FleetLease(key: key, box: box, token: token, expiresAt: expires))
        }
    }

    public func renew(_ lease: FleetLease, leaseMs: Int64) -> FleetRenewOutcome {
        state.withLock { s in
            guard Self.reachable(&s, lease.box) else { return .unavailable(reason: "database unreachable") }
            s.counters.renewals += 1
            guard var c = s.claims[lease.key], c.token == lease.token, c.state == .running else {
                let c = s.claims[lease.key]
                return .lost(byBox: c?.box, token: c?.token)
            }
            // Expired but not acted on yet: still this box's (nobody took it over).
            c.expiresAt = Instant(unixMillis: s.now.unixMillis &+ max(0, leaseMs))
            s.claims[lease.key] = c
            return .renewed(FleetLease(key: lease.key, box: c.box, token: c.token, expiresAt: c.expiresAt))
        }
    }

    public func finish(_ lease: FleetLease, outcome: String) -> Bool {
        state.withLock { s in
            guard Self.reachable(&s, lease.box) else { return false }
            s.counters.finishes += 1
            guard var c = s.claims[lease.key], c.token == lease.token, c.state == .running else { return false }
            c.state = .finished
            c.outcome = outcome
            s.claims[lease.key] = c
            s.open[lease.key.job]?.remove(lease.key)
            return true
        }
    }

    public func expiredLeases(jobs: [JobID], limit: Int) -> [FleetLease] {
        state.withLock { s in
            // A scan names no box: only a full outage refuses it (the caller's partition is
            // modelled by its own answers going missing, see ``setCutOff(_:_:)``).
            guard !s.outage else {
                s.counters.refused += 1
                return []
            }
            s.counters.scans += 1
            var found: [FleetLease] = []
            for job in jobs {
                for k in s.open[job] ?? [] {
                    guard let c = s.claims[k], c.state == .running, c.expiresAt <= s.now else { continue }
                    found.append(FleetLease(key: k, box: c.box, token: c.token, expiresAt: c.expiresAt))
                }
            }
            found.sort { ($0.key.scheduledFor, $0.key.job) < ($1.key.scheduledFor, $1.key.job) }
            return Array(found.prefix(max(0, limit)))
        }
    }

    public func resolveLost(_ lease: FleetLease, action: FleetLostAction, box: String, leaseMs: Int64) -> FleetClaimOutcome {
        state.withLock { s in
            guard Self.reachable(&s, box) else { return .unavailable(reason: "database unreachable") }
            s.counters.resolutions += 1
            guard var c = s.claims[lease.key] else { return .heldBy(box: lease.box, token: lease.token, state: .lost) }
            // One transaction: only the first box to act on this very lease, once it has expired.
            guard c.token == lease.token, c.state == .running, c.expiresAt <= s.now else {
                return .heldBy(box: c.box, token: c.token, state: c.state)
            }
            switch action {
            case .skip:
                c.state = .lost
                s.claims[lease.key] = c
                s.open[lease.key.job]?.remove(lease.key)
                return .heldBy(box: c.box, token: c.token, state: .lost)
            case .rerun:
                let token = s.nextToken
                s.nextToken += 1
                c.box = box
                c.token = token
                c.expiresAt = Instant(unixMillis: s.now.unixMillis &+ max(0, leaseMs))
                s.claims[lease.key] = c
                return .won(FleetLease(key: lease.key, box: box, token: token, expiresAt: c.expiresAt))
            }
        }
    }

    static func reachable(_ s: inout State, _ box: String) -> Bool {
        if s.outage || s.cutOff.contains(box) {
            s.counters.refused += 1
            return false
        }
        return true
    }
}
