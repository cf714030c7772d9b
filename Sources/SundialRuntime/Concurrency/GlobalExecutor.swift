#if canImport(Glibc)
import Glibc
#endif
import CSundialShim

/// Runs the process's Swift concurrency on Sundial's own thread pool instead of libdispatch's.
///
/// An idle agent must not wake up (issue 5: at most once a minute with 1,000 jobs loaded). The
/// default global executor on Linux is libdispatch, whose thread-pool monitor ticks once a
/// second for the life of the process once any task has run. The replacement (`executor.c` in
/// `CSundialShim`, hand-written because no available package offers one without a whole event
/// loop library) is a few threads blocked on a condition variable, with no timeout, while there
/// is nothing to do. Profiled and measured in docs/benchmarks.md ("Idle wake-ups").
public enum GlobalExecutor {
    /// The environment variable that keeps the default executor (`SUNDIAL_EXECUTOR=dispatch`),
    /// for comparisons and as an escape hatch.
    public static let environmentVariable = "SUNDIAL_EXECUTOR"

    /// Installs the pool. Call it before the first task is created (``Main``'s first lines).
    ///
    /// - Parameter threads: the most threads the pool starts; by default the number of online
    ///   CPUs, at least 2 (blocking calls made from tasks, such as a state commit, must not stall
    ///   every other task) and at most 8.
    /// - Returns: whether it was installed now (`false` when already installed or turned off).
    @discardableResult
    public static func install(threads: Int? = nil) -> Bool {
        if let v = getenv(environmentVariable), String(cString: v) == "dispatch" { return false }
        let n = threads ?? min(8, max(2, Int(sundial_cpu_count())))
        return sundial_executor_install(Int32(n)) == 0
    }
}
