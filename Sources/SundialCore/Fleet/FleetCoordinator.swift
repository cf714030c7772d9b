/// The contract between a box and the fleet's database for `lock: fleet` jobs (docs/fleet.md).
///
/// Why a protocol in the pure core: the same semantics have two implementations. The model
/// (``FleetLedger``-style, in memory, on virtual time) drives the unit tests and the 1,000-box
/// simulation; the PostgreSQL one (SundialRuntime) drives real boxes. Both must agree on every
/// rule below, and the simulation is what shows that the rules lose and double nothing.
///
/// Rules (the database is the only judge; boxes' clocks never decide a lease):
/// - A claim is unique per `(job, scheduledFor)`. The first box to insert it wins; every other
///   box is told who holds it (``FleetClaimOutcome/heldBy(box:token:state:)``).
/// - Every won claim carries a fencing token, strictly increasing across the whole fleet
///   (a database sequence), recorded with the run.
/// - A running claim holds a lease that expires at `expiresAt`, on the **database's** clock. The
///   holder renews it while the run lasts. A renewal that finds its token superseded, or the
///   lease already taken over, is told ``FleetRenewOutcome/lost(byBox:token:)`` and the holder
///   must stop the run (fencing).
/// - An expired, unfinished lease is *lost*. Any box may act on it once, in one transaction:
///   `on_lost: rerun` takes it over with a new token (it runs again there), `on_lost: skip` marks
///   it lost for good. Only one box wins that transaction.
/// - `concurrency: forbid` across the fleet: a claim is refused with
///   ``FleetClaimOutcome/busy(box:scheduledFor:)`` while another claim of the same job is
///   running with an unexpired lease.
/// - The database being unreachable is ``FleetClaimOutcome/unavailable(reason:)``; the job's
///   `fleet_unavailable` policy decides what the box does.
public struct FleetClaimKey: Hashable, Sendable, CustomStringConvertible {
    public var job: JobID
    /// The scheduled instant, as the schedule computes it (identical on every box whatever its
    /// clock's skew, since it comes from the cron expression and zone, not from "now").
    public var scheduledFor: Instant
    public init(job: JobID, scheduledFor: Instant) {
        self.job = job
        self.scheduledFor = scheduledFor
    }
    public var description: String { "\(job)@\(scheduledFor)" }
}

/// A claim this box holds: its key, its fencing token and the lease's end (database clock).
public struct FleetLease: Hashable, Sendable {
    public var key: FleetClaimKey
    public var box: String
    public var token: Int64
    public var expiresAt: Instant
    public init(key: FleetClaimKey, box: String, token: Int64, expiresAt: Instant) {
        self.key = key
        self.box = box
        self.token = token
        self.expiresAt = expiresAt
    }
}

/// Where a claim held by another box stands.
public enum FleetClaimState: String, Hashable, Sendable {
    case running, finished, lost
}

public enum FleetClaimOutcome: Hashable, Sendable {
    /// This box runs the instant.
    case won(FleetLease)
    /// Another box (or this one, before a restart) already claimed the instant.
    case heldBy(box: String, token: Int64, state: FleetClaimState)
    /// `concurrency: forbid`: another instant of the job is running on `box`.
    case busy(box: String, scheduledFor: Instant)
    /// The database could not be asked (connect, timeout, error); the reason is for the log.
    case unavailable(reason: String)
}

public enum FleetRenewOutcome: Hashable, Sendable {
    case renewed(FleetLease)
    /// The lease was taken over or marked lost: stop the run, do not record it as the instant's.
    case lost(byBox: String?, token: Int64?)
    case unavailable(reason: String)
}

/// What `on_lost` does with a lease whose box went silent.
public enum FleetLostAction: String, Hashable, Sendable, CaseIterable {
    case rerun, skip
}

/// One box's view of the fleet's database. Calls are blocking and made off the scheduling
/// path (the runtime's fleet worker, or the simulation's step function); `now` is the caller's
/// clock and is used only for logging and the model — leases are judged on the database clock.
public protocol FleetCoordinator: AnyObject, Sendable {
    /// Claims `key` for `box` with a lease of `leaseMs`. `forbidOverlap` applies the
    /// `concurrency: forbid` rule across the fleet.
    func claim(_ key: FleetClaimKey, box: String, leaseMs: Int64, forbidOverlap: Bool) -> FleetClaimOutcome
    /// Extends a lease this box holds.
    func renew(_ lease: FleetLease, leaseMs: Int64) -> FleetRenewOutcome
    /// The run ended (any outcome): the claim is finished and its lease released. Returns false
    /// when the claim was no longer this box's (its token superseded).
    func finish(_ lease: FleetLease, outcome: String) -> Bool
    /// Unfinished claims of `jobs` whose lease has expired, oldest first, at most `limit`.
    func expiredLeases(jobs: [JobID], limit: Int) -> [FleetLease]
    /// Acts once on an expired lease: `.rerun` takes it over for `box` with a new token
    /// (``FleetClaimOutcome/won(_:)``), `.skip` marks it lost. Another box having acted first
    /// gives ``FleetClaimOutcome/heldBy(box:token:state:)``.
    func resolveLost(_ lease: FleetLease, action: FleetLostAction, box: String, leaseMs: Int64) -> FleetClaimOutcome
}
