/// The scheduler's tunables; the defaults are the product's behaviour (documented in docs).
public struct SchedulerOptions: Sendable, Hashable {
    /// How late a fire may be handled and still run as a normal `schedule` fire. A fire handled
    /// later than this (a suspended laptop, a forward clock step, a long stall) is a *missed*
    /// fire and follows the job's `catchup` policy. 60 s: well above any scheduling jitter of a
    /// loaded machine, well below the period of any job whose missed run matters.
    public var lateToleranceMs: Int64
    /// At most this many runs of one job at once (`concurrency: allow` included); beyond it a
    /// fire is skipped `overlap`, so a job that never ends cannot exhaust processes.
    public var maxActiveRunsPerJob: Int
    /// `catchup: all` runs at most this many missed fires (design §1: 100).
    public var maxCatchupRuns: Int
    /// Missed fires are counted up to this bound (the `count` of a `missed` summary); counting
    /// further would cost time for nothing.
    public var missedCountCap: Int
    /// Whether to produce `persist` actions. The agent needs them; `sundial simulate`, which has
    /// no state store, saves half its work without them.
    public var recordsState: Bool
    /// Whether this box has a fleet coordinator (`--fleet`). Without one, fleet-locked fires are
    /// treated as `fleet_unavailable` at once (no claim is attempted, `wait` is `skip`: there is
    /// nothing to wait for), and nothing fleet-related is ever timed.
    public var fleetConfigured: Bool = false
    /// How often a box looks for expired leases of its fleet jobs (spread by ±50 % with the
    /// scheduler's randomness, so that a fleet's scans do not all land in the same second).
    public var fleetScanIntervalMs: Int64 = 15_000
    /// `fleet_unavailable: wait`: the longest pause between two claims of one instant (the
    /// pauses double from 1 s).
    public var fleetClaimRetryMaxMs: Int64 = 8_000
    /// Expired leases handled per scan.
    public var fleetScanLimit: Int = 16

    public init(
        lateToleranceMs: Int64 = 60_000, maxActiveRunsPerJob: Int = 100, maxCatchupRuns: Int = 100,
        missedCountCap: Int = 1000, recordsState: Bool = true, fleetConfigured: Bool = false
    ) {
        self.fleetConfigured = fleetConfigured
        self.lateToleranceMs = lateToleranceMs
        self.maxActiveRunsPerJob = maxActiveRunsPerJob
        self.maxCatchupRuns = maxCatchupRuns
        self.missedCountCap = missedCountCap
        self.recordsState = recordsState
    }
}
