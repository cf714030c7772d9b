import CSundialBench
import CSundialShim
import OrderedCollections
import SundialCore
import SundialRuntime

// Runner and event-log benchmarks (issue 4). Run with a release build:
//   swift run -c release sundial-bench runner-launch [N] [CONCURRENCY]
//   swift run -c release sundial-bench log-writer [N] [THREADS]
//   swift run -c release sundial-bench runner-rss [MEGABYTES] [MAX_BYTES]
// Each runs in its own process: runner-rss reads the process's peak RSS (VmHWM), and
// runner-launch must run its C baselines before the runner's reaper exists.
#if canImport(Glibc)
import Glibc
#endif

/// A clock for the benchmarks' event timestamps.
struct BenchClock: SundialClock {
    func wallNow() -> Instant {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Instant(unixMillis: Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000)
    }
    func monotonicNow() -> Int64 { sundial_monotonic_ms() }
}

func seconds(since startNs: Int64) -> Double { Double(sundial_monotonic_ns() - startNs) / 1e9 }

/// User + system CPU seconds of this process and its reaped children: steadier than wall time
/// on a shared, loaded machine.
func cpuSeconds() -> Double {
    var total = 0.0
    for who in [RUSAGE_SELF.rawValue, RUSAGE_CHILDREN.rawValue] {
        var ru = rusage()
        getrusage(__rusage_who_t(who), &ru)
        total += Double(ru.ru_utime.tv_sec) + Double(ru.ru_utime.tv_usec) / 1e6 + Double(ru.ru_stime.tv_sec) + Double(ru.ru_stime.tv_usec) / 1e6
    }
    return total
}

/// The 1-minute load average, printed with every figure (other work on the machine skews them).
func loadAverage() -> String {
    var loads = [Double](repeating: 0, count: 3)
    return getloadavg(&loads, 3) > 0 ? "load average \(format2(loads[0]))" : "load average unknown"
}

func format(_ x: Double) -> String { String(Int(x.rounded())) }

/// `/bin/true` N times: plain C fork+exec+wait, C posix_spawn+wait, then the runner serially
/// and with `concurrency` runs in flight (pipes, epoll, session, /dev/null stdin, reaper).
func benchRunnerLaunch(_ args: [String]) async {
    let n = args.first.flatMap(Int.init) ?? 2000
    let concurrency = args.dropFirst().first.flatMap(Int.init) ?? 4
    // Baselines first: once the runner exists, its reaper would take their children.
    var t = sundial_monotonic_ns()
    var cpu = cpuSeconds()
    guard sundial_bench_spawn_loop("/bin/true", Int32(n), 0) == 0 else {
        print("fork loop failed")
        return
    }
    let forkRate = Double(n) / seconds(since: t)
    let forkCPU = (cpuSeconds() - cpu) / Double(n)
    t = sundial_monotonic_ns()
    cpu = cpuSeconds()
    guard sundial_bench_spawn_loop("/bin/true", Int32(n), 1) == 0 else {
        print("posix_spawn loop failed")
        return
    }
    let spawnRate = Double(n) / seconds(since: t)
    let spawnCPU = (cpuSeconds() - cpu) / Double(n)

    let runner: ProcessRunner
    do { runner = try ProcessRunner() } catch {
        print("runner: \(error)")
        return
    }
    func spec(_ i: Int) -> LaunchSpec {
        LaunchSpec(
            job: "bench", runID: RunID(rawValue: "BENCH\(i)"), executable: "/bin/true", arguments: ["/bin/true"],
            environment: ["PATH": LaunchSpec.defaultPath])
    }
    var failures = 0
    t = sundial_monotonic_ns()
    cpu = cpuSeconds()
    for i in 0..<n {
        let c = await runner.start(spec(i)) { _ in }.completion()
        if !c.outcome.isSuccess { failures += 1 }
    }
    let serialRate = Double(n) / seconds(since: t)
    let serialCPU = (cpuSeconds() - cpu) / Double(n)

    t = sundial_monotonic_ns()
    await withTaskGroup(of: Bool.self) { group in
        var next = 0
        func add() {
            let i = n + next
            next += 1
            group.addTask { await runner.start(spec(i)) { _ in }.completion().outcome.isSuccess }
        }
        for _ in 0..<min(concurrency, n) { add() }
        while let ok = await group.next() {
            if !ok { failures += 1 }
            if next < n { add() }
        }
    }
    let concurrentRate = Double(n) / seconds(since: t)
    func us(_ x: Double) -> String { "\(format(x * 1e6)) µs CPU/run" }
    print("runner-launch: \(n) runs of /bin/true, \(failures) failures, \(loadAverage())")
    print("  C fork+exec+waitpid loop:     \(format(forkRate)) /s, \(us(forkCPU))")
    print("  C posix_spawn+waitpid loop:   \(format(spawnRate)) /s, \(us(spawnCPU))")
    print("  runner, one at a time:        \(format(serialRate)) /s (\(String(format2(serialRate / forkRate))) of fork+exec), \(us(serialCPU))")
    print("  runner, \(concurrency) in flight:           \(format(concurrentRate)) /s (\(String(format2(concurrentRate / forkRate))) of fork+exec)")
}

func format2(_ x: Double) -> String {
    let r = (x * 100).rounded() / 100
    return "\(r)"
}

/// Events per second through ``EventLog`` into a file (typical `run.output` events, ~180 bytes).
func benchLogWriter(_ args: [String]) {
    let n = args.first.flatMap(Int.init) ?? 1_000_000
    let threads = args.dropFirst().first.flatMap(Int.init) ?? 1
    let path = "/tmp/sundial-bench-\(getpid()).log"
    defer { unlink(path) }
    let sink: FileEventSink
    do { sink = try FileEventSink(path: path, maxBytes: nil) } catch {
        print("open: \(error)")
        return
    }
    let log = EventLog(sink: sink, clock: BenchClock())
    let clock = BenchClock()
    let perThread = n / threads
    let t = sundial_monotonic_ns()
    let cpu = cpuSeconds()
    let work: @Sendable (Int) -> Void = { thread in
        for i in 0..<perThread {
            log.log(
                LogRecord.runOutput(
                    .init(
                        job: "nightly-backup", runID: RunID(rawValue: "01JD5X8Q0Z3M4N5P6Q7R8S9T0V"), attempt: 1, stream: .stdout,
                        line: "copied file \(i) of thread \(thread): /var/backups/app/part-0001.tar.gz", truncated: false, at: clock.wallNow())))
        }
    }
    if threads == 1 {
        work(0)
    } else {
        var tids: [pthread_t] = []
        for th in 0..<threads {
            var tid = pthread_t()
            let box = Unmanaged.passRetained(BenchThreadBox { work(th) }).toOpaque()
            pthread_create(
                &tid, nil,
                { arg in
                    Unmanaged<BenchThreadBox>.fromOpaque(arg!).takeRetainedValue().body()
                    return nil
                }, box)
            tids.append(tid)
        }
        for tid in tids { pthread_join(tid, nil) }
    }
    let elapsed = seconds(since: t)
    let cpuUsed = cpuSeconds() - cpu
    var st = stat()
    stat(path, &st)
    let total = perThread * threads
    print("log-writer: \(total) events, \(threads) thread(s), \(st.st_size / Int(max(1, total))) bytes/line, dropped \(log.totalDroppedLines)")
    print(
        "  \(format(Double(total) / elapsed)) events/s wall (\(format2(elapsed)) s), \(format(Double(total) / cpuUsed)) events per CPU-second, \(loadAverage())"
    )
}

final class BenchThreadBox {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// Peak RSS while the runner captures a job writing `megabytes` MB of 61-byte lines, each line
/// turned into a `run.output` event and written to an ``EventLog`` on /dev/null, as the agent does.
func benchRunnerRSS(_ args: [String]) async {
    let megabytes = args.first.flatMap(Int.init) ?? 100
    let maxBytes = args.dropFirst().first.flatMap(Int.init) ?? OutputLimits().maxBytes
    let before = sundial_proc_status_kb("VmHWM")
    let runner: ProcessRunner
    let sink: FileEventSink
    do {
        runner = try ProcessRunner()
        sink = try FileEventSink(path: "/dev/null")
    } catch {
        print("setup: \(error)")
        return
    }
    let log = EventLog(sink: sink, clock: BenchClock())
    let clock = BenchClock()
    var job = JobSpec(id: "bench-output", command: .shell("yes 012345678901234567890123456789012345678901234567890123456789 | head -c \(megabytes)000000"))
    job.output = OutputLimits(maxLineBytes: 8192, maxBytes: maxBytes)
    let t = sundial_monotonic_ns()
    let handle = await runner.start(job: job, runID: RunID(rawValue: "RSS"), attempt: 1) { line in
        log.log(.runOutput(line, job: "bench-output", attempt: 1, at: clock.wallNow()))
    }
    let c = await handle.completion()
    let elapsed = seconds(since: t)
    let after = sundial_proc_status_kb("VmHWM")
    print(
        "runner-rss: job wrote \(megabytes) MB (max_bytes \(maxBytes)), outcome \(c.outcome.name), accepted \(c.outputBytes) B, dropped \(c.droppedBytes) B, \(log.writtenLines) events, \(format2(elapsed)) s"
    )
    print("  VmHWM before: \(before / 1024) MiB, peak after: \(format2(Double(after) / 1024)) MiB (\(after) kB)")
}
