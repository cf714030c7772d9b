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

    public init(lateToleranceMs: Int64 = 60_000, maxActiveRunsPerJob: Int = 100, maxCatchupRuns: Int = 100,
                missedCountCap: Int = 1000) {
        self.lateToleranceMs = lateToleranceMs
        self.maxActiveRunsPerJob = maxActiveRunsPerJob
        self.maxCatchupRuns = maxCatchupRuns
        self.missedCountCap = missedCountCap
    }
}
