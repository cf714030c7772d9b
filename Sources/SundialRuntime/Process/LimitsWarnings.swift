import SundialCore
import Synchronization

/// Which jobs were already warned about with `limits.unenforced`: the agent says it once per
/// job (a job due every minute must not repeat it every minute), bounded to
/// ``maxRemembered`` jobs (past that, the set starts over rather than growing).
public final class LimitsWarnings: Sendable {
    public static let maxRemembered = 10_000
    private let seen = Mutex<Set<JobID>>([])

    public init() {}

    /// True the first time it is asked about `job`.
    public func firstTime(_ job: JobID) -> Bool {
        seen.withLock { s in
            if s.count >= Self.maxRemembered { s.removeAll() }
            return s.insert(job).inserted
        }
    }
}
