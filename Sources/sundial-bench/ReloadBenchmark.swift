import CSundialShim
import Foundation
import OrderedCollections
import SundialConfig
import SundialCore
import SundialRuntime

/// `sundial-bench reload [--jobs N] [--files N] [--rounds N] [--debounce MS] [--skip-agent]`
///
/// Issue 6's two figures:
/// 1. **CPU cost of a reload** of an N-job set (target < 50 ms for 1,000 jobs), in process:
///    `ConfigurationLoading.load` (read, parse, schema, decode, checks; the zone and schedule
///    caches dropped first, as the agent's loader does) and `Scheduler.handle(.configReplaced)`, each timed with
///    `CLOCK_PROCESS_CPUTIME_ID`. Two replacements are timed: one file's defaults edited (its
///    jobs change, the rest keep their timing), and every job re-timed (a worst case).
/// 2. **Latency of the real agent**: the release `sundial run` (next to this binary) on the same
///    set; each round renames a changed file into place and reads the log for `config.loaded`;
///    the figure is `ts` of that event minus the time of the write, minus the debounce (target
///    < 100 ms beyond the debounce). The agent's CPU time over all rounds (from
///    `/proc/PID/stat`, 10 ms ticks) gives a second, whole-process figure per reload.
func benchmarkReload(_ args: [String]) async {
    func option(_ name: String, _ fallback: Int) -> Int {
        guard let i = args.firstIndex(of: name), i + 1 < args.count, let v = Int(args[i + 1]) else { return fallback }
        return v
    }
    let jobs = option("--jobs", 1000)
    let files = option("--files", 50)
    let rounds = max(1, option("--rounds", 20))
    let debounce = option("--debounce", 250)
    let root = FileManager.default.temporaryDirectory.path + "/sundial-bench-reload-\(getpid())"
    defer { try? FileManager.default.removeItem(atPath: root) }
    let conf = root + "/conf"
    let retimed = root + "/retimed"
    try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    // `--not-due`: nothing fires during the benchmark, so only reloads cost CPU.
    generateConfig([conf, "\(jobs)", "\(files)", "--not-due"])
    generateConfig([retimed, "\(jobs)", "\(files)"])
    print("reload: \(jobs) jobs in \(files) files, \(rounds) rounds; \(loadAverage())")

    let firstFile = conf + "/jobs-0000.yaml"
    guard let original = try? String(contentsOfFile: firstFile, encoding: .utf8), original.contains("timeout: 10m") else {
        print("reload: unexpected generated file \(firstFile)")
        return
    }
    /// The first file with its `defaults.timeout` set to `10+round` minutes: a valid change of
    /// every job in that file, none of their timing.
    func edit(_ round: Int) -> String { original.replacingOccurrences(of: "timeout: 10m", with: "timeout: \(11 + round)m") }

    // MARK: In-process CPU cost
    let zones = SystemTimeZones()
    let environment = ConfigEnvironment.system(zones: zones)
    let calculator = CalendarFireCalculator(zones: zones)
    func load(_ path: String) -> JobSet? {
        // As the agent's loader does (AgentHost): zone files re-read, parsed schedules dropped.
        zones.reload()
        calculator.invalidateCache()
        let r = ConfigurationLoading.load(paths: [path], environment: environment)
        if !r.isValid { print("reload: \(path) is invalid: \(r.diagnostics.prefix(3))") }
        return r.jobSet
    }
    guard let initial = load(conf), let other = load(retimed) else { return }
    let now = Instant(unixMillis: Int64(Date().timeIntervalSince1970 * 1000))
    var scheduler = Scheduler(jobs: initial, calculator: calculator, random: SeededRandom(seed: 1))
    _ = scheduler.handle(.start(restored: RestoredState(), reboot: false), at: now)

    var loadMs: [Double] = []
    var replaceMs: [Double] = []
    var retimeMs: [Double] = []
    var current = initial
    for round in 0..<rounds {
        try? edit(round).write(toFile: firstFile, atomically: true, encoding: .utf8)
        let t0 = processCPUms()
        guard let set = load(conf) else { return }
        let t1 = processCPUms()
        _ = scheduler.handle(.configReplaced(set), at: now)
        let t2 = processCPUms()
        loadMs.append(t1 - t0)
        replaceMs.append(t2 - t1)
        if round == 0 {
            let changed = set.jobs.values.filter { current.jobs[$0.id] != $0 }.count
            print("reload: an edit of one file changes \(changed) jobs' definitions (not their timing)")
        }
        current = set
        // Worst case: every job re-timed, and back.
        let t3 = processCPUms()
        _ = scheduler.handle(.configReplaced(other), at: now)
        _ = scheduler.handle(.configReplaced(current), at: now)
        retimeMs.append((processCPUms() - t3) / 2)
    }
    try? original.write(toFile: firstFile, atomically: true, encoding: .utf8)
    let total = zip(loadMs, replaceMs).map(+)
    print(
        "reload: CPU, median (max) of \(rounds): load \(fmt(median(loadMs))) (\(fmt(loadMs.max()!))) ms, "
            + "configReplaced \(fmt(median(replaceMs))) (\(fmt(replaceMs.max()!))) ms, "
            + "together \(fmt(median(total))) (\(fmt(total.max()!))) ms")
    print("reload: CPU of configReplaced re-timing all \(jobs) jobs: median \(fmt(median(retimeMs))) ms (max \(fmt(retimeMs.max()!)))")
    let per1000 = median(total) * 1000 / Double(max(1, jobs))
    print("reload: target < 50 ms of CPU per 1,000 jobs: \(per1000 < 50 ? "met" : "NOT met") (median \(fmt(per1000)) ms per 1,000 jobs)")

    guard !args.contains("--skip-agent") else { return }

    // MARK: The real agent
    let binary =
        (URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
        .deletingLastPathComponent().appendingPathComponent("sundial")).path
    guard FileManager.default.isExecutableFile(atPath: binary) else {
        print("reload: no sundial binary at \(binary); build it with swift build -c release")
        return
    }
    let logPath = root + "/events.jsonl"
    let spec = LaunchSpec(
        job: "bench-agent", runID: RunID(rawValue: "bench-\(getpid())"), executable: binary,
        arguments: [binary, "run", conf, "--state", root + "/state", "--log", logPath, "--debounce", "\(debounce)ms"],
        environment: ["PATH": "/usr/bin:/bin", "HOME": root, "LANG": "C.UTF-8"], workdir: root,
        timeoutMs: Int64(60 + rounds * 5) * 1000, killGraceMs: 2000)
    let runner: ProcessRunner
    do { runner = try ProcessRunner() } catch {
        print("reload: no runner: \(error)")
        return
    }
    let agent = await runner.start(spec) { line in print("agent: \(line.text)") }
    guard let pid = agent.pid else {
        print("reload: the agent did not start: \(await agent.completion().outcome)")
        return
    }
    var tail = LogTail(path: logPath)
    guard tail.waitFor(LogRecord.configLoadedName, timeoutMs: 20_000) != nil else {
        print("reload: the agent did not load its configuration")
        runner.terminate(agent.runID, grace: .seconds(1))
        return
    }
    let cpuBefore = agentCPUTicks(pid)
    var latencies: [Double] = []
    for round in 0..<rounds {
        let temporary = conf + "/.jobs-0000.yaml.tmp"
        try? edit(rounds + round).write(toFile: temporary, atomically: false, encoding: .utf8)
        rename(temporary, firstFile)
        let written = Date().timeIntervalSince1970 * 1000
        guard let loaded = tail.waitFor(LogRecord.configLoadedName, timeoutMs: 10_000),
            let ts = loaded["ts"]?.stringValue, let at = try? RFC3339.parse(ts).instant
        else {
            print("reload: round \(round): no config.loaded within 10 s")
            break
        }
        latencies.append(Double(at.unixMillis) - written - Double(debounce))
    }
    let cpuAfter = agentCPUTicks(pid)
    runner.terminate(agent.runID, grace: .seconds(5))
    _ = await agent.completion()
    guard !latencies.isEmpty else { return }
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    let cpuPerReload = Double(cpuAfter - cpuBefore) / ticks * 1000 / Double(latencies.count)
    let sorted = latencies.sorted()
    let p95 = sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * 0.95))]
    print(
        "reload: agent, last write -> config.loaded beyond the \(debounce) ms debounce: min \(fmt(sorted.first!)) ms, "
            + "median \(fmt(median(sorted))) ms, p95 \(fmt(p95)) ms, max \(fmt(sorted.last!)) ms")
    print("reload: agent CPU per reload (whole process, /proc): \(fmt(cpuPerReload)) ms")
    print("reload: target < 100 ms beyond the debounce: \(p95 < 100 ? "met" : "NOT met") (p95)")
}

/// Reads an event log as it grows.
private struct LogTail {
    let path: String
    var offset = 0

    init(path: String) { self.path = path }

    /// The next event named `name`, polling every millisecond until the deadline.
    mutating func waitFor(_ name: String, timeoutMs: Int) -> JSONValue? {
        let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
        while Date() < deadline {
            if let data = FileManager.default.contents(atPath: path), data.count > offset {
                let bytes = [UInt8](data[offset...])
                var start = 0
                for (i, b) in bytes.enumerated() where b == 0x0A {
                    let line = Array(bytes[start..<i])
                    start = i + 1
                    if let e = try? JSONParser.parse(line), e["event"]?.stringValue == name {
                        offset += start
                        return e
                    }
                }
                offset += start
            }
            usleep(1000)
        }
        return nil
    }
}

private func processCPUms() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) * 1000 + Double(ts.tv_nsec) / 1e6
}

/// utime + stime of a process, in clock ticks (fields 14 and 15 of `/proc/PID/stat`).
private func agentCPUTicks(_ pid: Int32) -> Int {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return 0 }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    // After the command name: field 3 (state) is fields[0], so utime (14) is fields[11].
    guard fields.count > 12, let u = Int(fields[11]), let s = Int(fields[12]) else { return 0 }
    return u + s
}

private func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.isEmpty ? 0 : s[s.count / 2]
}

private func fmt(_ x: Double) -> String { String(format: "%.1f", x) }
