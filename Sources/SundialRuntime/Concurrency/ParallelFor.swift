import CSundialShim
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Runs `body(0) … body(count - 1)` on up to `threads` threads (the caller's included), each
/// taking the next index from a shared counter, and returns when all are done.
///
/// For work that is independent per item and long enough to be worth a thread: the job files of
/// a configuration (each file is parsed, validated and decoded on its own; only the checks across
/// files need them all). Threads are started for the call and joined before it returns, so an
/// idle agent keeps none. If the kernel refuses a thread, the threads that did start (at least
/// the caller's) take its share: the result is the same, only slower.
enum ParallelFor {
    /// The threads worth using here: the online CPUs, at most `limit`.
    static func defaultThreads(limit: Int = 4) -> Int { max(1, min(limit, Int(sundial_cpu_count()))) }

    static func run(_ count: Int, threads: Int = defaultThreads(), _ body: @escaping @Sendable (Int) -> Void) {
        let workers = min(max(1, threads), count)
        guard workers > 1 else {
            for i in 0..<count { body(i) }
            return
        }
        let next = Atomic<Int>(0)
        let drain: @Sendable () -> Void = {
            while true {
                let i = next.add(1, ordering: .relaxed).oldValue
                if i >= count { return }
                body(i)
            }
        }
        let started = (1..<workers).compactMap { _ in JoinableThread(name: "sundial-parse", drain) }
        drain()
        for thread in started { thread.join() }
    }
}
