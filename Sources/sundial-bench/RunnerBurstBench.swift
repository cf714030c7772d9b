import CSundialBench
import CSundialShim
import SundialCore
import SundialRuntime

// A burst of starts through the runner, next to C loops (issue 5: "100 jobs due at the same
// instant all started within 1.5x the time a plain C loop needs"). Release build:
//   swift run -c release sundial-bench runner-burst [N] [REPETITIONS] [PROGRAM]
//   SUNDIAL_SPAWN_THREADS=1 swift run -c release sundial-bench runner-burst ...   (one at a time)
// The C baselines run first: once the runner exists, its reaper would take their children.
#if canImport(Glibc)
import Glibc
#endif

/// Median milliseconds from the first `start` call until every pid is known, for `N` starts of
/// `PROGRAM` (default /bin/true) issued at once from a task group, over `REPETITIONS` bursts;
/// and the same for a C fork+exec loop and a C posix_spawn loop that do not wait in between.
func benchRunnerBurst(_ args: [String]) async {
    let n = args.first.flatMap(Int.init) ?? 100
    let reps = max(1, args.dropFirst().first.flatMap(Int.init) ?? 7)
    let program = args.dropFirst(2).first ?? "/bin/true"

    func cBurst(posixSpawn: Bool) -> [Double]? {
        var times: [Double] = []
        for _ in 0..<reps {
            var ns: Int64 = 0
            guard sundial_bench_spawn_burst(program, Int32(n), posixSpawn ? 1 : 0, &ns) == 0 else { return nil }
            times.append(Double(ns) / 1e6)
        }
        return times
    }
    guard let fork = cBurst(posixSpawn: false), let spawn = cBurst(posixSpawn: true) else {
        print("runner-burst: the C loop could not start \(program)")
        return
    }

    let runner: ProcessRunner
    do { runner = try ProcessRunner() } catch {
        print("runner: \(error)")
        return
    }
    var times: [Double] = []
    var failures = 0
    for rep in 0..<reps {
        let t = sundial_monotonic_ns()
        let handles = await withTaskGroup(of: RunHandle.self) { group in
            for i in 0..<n {
                let spec = LaunchSpec(
                    job: "bench", runID: RunID(rawValue: "BURST\(rep)-\(i)"), executable: program,
                    arguments: [program], environment: ["PATH": LaunchSpec.defaultPath])
                group.addTask { await runner.start(spec) { _ in } }
            }
            var all: [RunHandle] = []
            all.reserveCapacity(n)
            for await h in group { all.append(h) }
            return all
        }
        times.append(Double(sundial_monotonic_ns() - t) / 1e6)
        for h in handles where !(await h.completion().outcome.isSuccess) { failures += 1 }
    }

    func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
    func ms(_ x: Double) -> String { "\(format2(x)) ms" }
    let forkMedian = median(fork)
    print(
        "runner-burst: \(n) starts of \(program), median of \(reps), \(ProcessRunner.spawnThreads) spawning thread(s), \(failures) failures, \(loadAverage())")
    print("  C fork+exec loop:       \(ms(forkMedian)) (min \(ms(fork.min()!)))")
    print("  C posix_spawn loop:     \(ms(median(spawn))) (min \(ms(spawn.min()!)))")
    print("  runner, all pids known: \(ms(median(times))) (min \(ms(times.min()!))) = \(format2(median(times) / forkMedian))x the fork+exec loop")
}
