import CSundialShim
import OrderedCollections
import SundialCore
import SundialRuntime

#if canImport(Glibc)
import Glibc
#endif

/// `sundial-bench simulate [--days N] [--jobs N] [--heavy] [--print]`: simulates a year (by
/// default) of a 100-job configuration on the pure scheduler with the real calendar calculator
/// (zones from the system's tz database), and reports the time taken. Target (issue 5): a year
/// of 100 jobs in under one second.
///
/// The default mix stands for a typical server's crontab: 50 % daily jobs at scattered times in
/// a dozen zones (with DST), 24 % hourly, 10 % weekdays-only, 6 % every 15 minutes, 2 % every
/// 5 minutes, 8 % dependants of a daily job; every 5th job with jitter and `queue`, every 7th
/// with retries (one attempt in ten fails); runs last 1 to 5.5 s. About 650,000 runs a year.
/// `--heavy`: 10 % every 15 minutes and 6 % every 5 minutes (about 1.4 million runs).
/// `--print` also encodes every event as its JSON line (what `sundial simulate` prints).
func simulateBenchmark(_ args: [String]) {
    func option(_ name: String, _ fallback: Int) -> Int {
        guard let i = args.firstIndex(of: name), i + 1 < args.count, let v = Int(args[i + 1]) else { return fallback }
        return v
    }
    let days = option("--days", 365)
    let count = option("--jobs", 100)
    let printLines = args.contains("--print")
    let zones = [
        "UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Lord_Howe", "Asia/Kathmandu",
        "Pacific/Chatham", "Europe/Dublin", "America/Los_Angeles", "Africa/Cairo", "America/Sao_Paulo", "Asia/Kolkata",
    ]
    var set = JobSet()
    var script: [JobID: [SimulatedAttempt]] = [:]
    var lastDaily: JobID?
    for i in 0..<count {
        let id = "job-\(i)"
        var spec = JobSpec(id: id, command: .argv(["/bin/true"]))
        // Upper bounds, out of 50, of: daily, hourly, weekdays, every 15 min, every 5 min; the
        // rest are dependants.
        let b = args.contains("--heavy") ? [20, 32, 37, 42, 45] : [25, 37, 42, 45, 46]
        let k = i % 50
        if k < b[0] {
            spec.schedule = .cron("\((i * 7) % 60) \((i * 5) % 24) * * *")
            spec.timezone = zones[i % zones.count]
            lastDaily = id
        } else if k < b[1] {
            spec.schedule = .cron("\((i * 11) % 60) * * * *")
        } else if k < b[2] {
            spec.schedule = .cron("\((i * 13) % 60) \(6 + i % 12) * * MON-FRI")
        } else if k < b[3] {
            spec.schedule = .every(intervalMs: 15 * 60_000, offsetMs: i % 2 == 0 ? nil : 60_000)
        } else if k < b[4] {
            spec.schedule = .every(intervalMs: 5 * 60_000, offsetMs: nil)
        } else {
            spec.needs = [Need(job: lastDaily ?? "job-0")]
        }
        if i % 5 == 0 {
            spec.jitterMs = 30_000
            spec.concurrency = .queue
        }
        if i % 7 == 0 {
            spec.retry = RetryPolicy(attempts: 3, backoff: .exponential, delayMs: 10_000)
            // One attempt in ten fails (the script's last entry repeats, so cover a year).
            let pattern =
                Array(repeating: SimulatedAttempt(.success(exitCode: 0), durationMs: 2000), count: 9)
                + [SimulatedAttempt(.failure(exitCode: 1), durationMs: 500)]
            script[id] = Array(Array(repeating: pattern, count: 12_000).joined())
        } else {
            script[id] = [SimulatedAttempt(.success(exitCode: 0), durationMs: Int64(1000 + (i % 10) * 500))]
        }
        set.jobs[id] = spec
    }
    let calculator = CalendarFireCalculator(zones: SystemTimeZones())
    let from = Instant(unixMillis: 1_767_225_600_000)  // 2026-01-01T00:00:00Z
    let to = Instant(unixMillis: from.unixMillis + Int64(days) * 86_400_000)

    var sim = Simulator(jobs: set, calculator: calculator, script: script, seed: 42)
    var events = 0
    var launches = 0
    var persists = 0
    var bytes = 0
    var line: [UInt8] = []
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    let start = Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    sim.run(from: from, to: to) { _, action in
        switch action {
        case let .emit(e):
            events += 1
            if printLines {
                line.removeAll(keepingCapacity: true)
                e.event.appendJSONLine(to: &line)
                bytes += line.count
            }
        case .launch: launches += 1
        case .persist: persists += 1
        default: break
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &ts)
    let seconds = Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9 - start
    print(
        "simulate: \(count) jobs, \(days) days: \(launches) attempts, \(events) events, \(persists) state changes"
            + (printLines ? ", \(bytes) bytes of JSON" : ""))
    print("simulate: \(String(format3(seconds))) s (\(Int(Double(events) / seconds)) events/s); target < 1 s for 365 days")
}

private func format3(_ x: Double) -> String {
    let ms = Int((x * 1000).rounded())
    let frac = String(ms % 1000)
    return "\(ms / 1000).\(String(repeating: "0", count: 3 - frac.count))\(frac)"
}
