import Synchronization

/// The scheduler's one entry point for "when does this job fire next": cron, `every`, `at`.
///
/// Parsed cron schedules are cached by (expression, zone, dst), so recomputing the next fire of
/// thousands of jobs costs a search each, not a parse and a zone lookup. Jitter is not applied
/// here: it is the scheduler's, drawn from its injected random source.
public struct CalendarFireCalculator: Sendable {
    struct Key: Hashable, Sendable {
        var expression: String
        var timezone: String?
        var dst: DSTPolicy
    }

    /// Shared by copies of the calculator; guarded because the agent and `sundial` commands may
    /// ask from several tasks.
    final class Cache: Sendable {
        let schedules = Mutex<[Key: CronSchedule]>([:])
    }

    public let zones: any TimeZoneProvider
    let cache = Cache()

    /// At most this many parsed schedules are kept (far above any real job set).
    static let cacheLimit = 100_000

    public init(zones: any TimeZoneProvider) { self.zones = zones }

    /// The first fire of `job` strictly after `after`, or `nil` when it has none: `@reboot`,
    /// manual jobs, past one-shots, and (defensively: the config loader rejects them) cron
    /// expressions or zones that do not load.
    /// - Parameter anchor: the agent's start, from which `every` without `offset` counts.
    public func nextFire(of job: JobSpec, after: Instant, anchor: Instant) -> Instant? {
        switch job.schedule {
        case .manual, .reboot:
            return nil
        case .cron(let text):
            return try? cronSchedule(text, timezone: job.timezone, dst: job.dst).next(after: after)
        case .every(let intervalMs, let offsetMs):
            return (try? IntervalSchedule(intervalMs: intervalMs, offsetMs: offsetMs, anchor: anchor))?.next(after: after)
        case .at(let instants):
            return OneShotSchedule(instants).next(after: after)
        }
    }

    /// The parsed, cached schedule of a cron job.
    /// - Throws: `CronError` (syntax, never fires) or `TimeZoneError` (unknown zone).
    public func cronSchedule(_ text: String, timezone: String?, dst: DSTPolicy) throws -> CronSchedule {
        let key = Key(expression: text, timezone: timezone, dst: dst)
        if let hit = cache.schedules.withLock({ $0[key] }) { return hit }
        let schedule = try CronSchedule(text, zone: try zones.rules(named: timezone), dst: dst)
        cache.schedules.withLock {
            // Bounded: expressions edited over many reloads must not accumulate forever.
            if $0.count >= Self.cacheLimit { $0.removeAll(keepingCapacity: true) }
            $0[key] = schedule
        }
        return schedule
    }

    /// Forgets cached schedules, so zone rules re-read on reload take effect.
    public func invalidateCache() {
        cache.schedules.withLock { $0.removeAll() }
    }
}
