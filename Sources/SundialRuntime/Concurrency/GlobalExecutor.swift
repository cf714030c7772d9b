import CSundialExecutor
import CSundialShim

#if canImport(Glibc)
import Glibc
#endif

/// Runs the process's Swift concurrency on Sundial's own thread pool instead of libdispatch's.
///
/// An idle agent must not wake up (issue 5: at most once a minute with 1,000 jobs loaded). The
/// default global executor on Linux is libdispatch, whose thread-pool monitor ticks once a
/// second for the life of the process once any task has run. The replacement (`executor.c`,
/// alone in the `CSundialExecutor` target, hand-written because no available package offers one
/// without a whole event loop library) is a few threads blocked on a condition variable, with no timeout, while there
/// is nothing to do. Profiled and measured in docs/benchmarks.md ("Idle wake-ups").
///
/// The hooks and `swift_job_run`'s calling convention are the Swift runtime's private
/// interface, so the pool is installed only by the toolchains it was checked against (Swift 6.x
/// up to 6.3, the runtime linked statically into the release binary). A newer toolchain falls
/// back to libdispatch's pool (correct, but it wakes every second) until someone checks the
/// hooks again and moves the bound; `IdleFootprintTests` then fails, since it requires the
/// `sundial-exec` threads and no wake-ups. The public replacement (`ExecutorFactory`, swift
/// evolution's custom global executors) exists in Swift 6.3's runtime but is not public API on
/// Linux yet (`-executor-factory` is refused): once it is, it replaces this file.
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
        #if !compiler(>=6.0) || compiler(>=6.4)
        return false  // the runtime's hooks are unchecked with this toolchain (see above)
        #else
        if let v = getenv(environmentVariable), String(cString: v) == "dispatch" { return false }
        let n = threads ?? min(8, max(2, Int(sundial_cpu_count())))
        return sundial_executor_install(Int32(n)) == 0
        #endif
    }
}
