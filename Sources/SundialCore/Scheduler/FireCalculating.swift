/// Computes a job's calendar and interval fires; injected into the ``Scheduler``.
///
/// The scheduler never does calendar math itself: cron with zones and daylight saving, `every`
/// and `at` live behind this protocol (`CalendarFireCalculator` in production, simple fakes in
/// tests), so the state machine is testable on virtual time with fires that are obvious.
public protocol FireCalculating: Sendable {
    /// The first fire of `job` strictly after `after`, or `nil` when it has no further fire.
    ///
    /// - Parameters:
    ///   - job: the job; `@reboot` and manual jobs have no calendar fires (answer `nil`).
    ///   - after: the instant after which to search (exclusive).
    ///   - anchor: the agent's start, from which `every` without `offset` is counted. The
    ///     scheduler shifts it by the size of a wall-clock step so intervals keep real time.
    func nextFire(of job: JobSpec, after: Instant, anchor: Instant) -> Instant?
}
