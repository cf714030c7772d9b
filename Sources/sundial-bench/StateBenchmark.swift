import CSundialShim
import Foundation
import SundialCore
import SundialRuntime

/// `sundial-bench state [--size] [--jobs N] [--hours N] [--dir DIR]`: the state database's figures (issue 7).
///
/// - recording 10,000 runs, each as the agent records it (`[.fired, .runStarted]` committed
///   before launch, the attempt and ledger batched, `.runFinished` committed), target < 1 s, and
///   the latency of the commit on the firing path;
/// - a `status`-style query (each of 1,000 jobs' last run) and `restore()`, target < 50 ms;
/// - with `--size`: the file size for 1,000 minutely jobs under the default retention, recording
///   `--hours` (default 36) of history with a prune every simulated hour. Minutely jobs reach the
///   per-job count caps (1,000 runs: ~17 h; 1,500 ledger entries: 25 h) long before 30 days, so
///   36 h is the steady state: the size no longer grows after it. `--jobs` (default 1,000)
///   scales it down: the steady size is linear in the number of jobs. 1,000 jobs take a while.
func stateBenchmark(_ args: [String]) throws {
    let dir = value(of: "--dir", in: args) ?? NSTemporaryDirectory() + "sundial-bench-state-\(getpid())"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { if value(of: "--dir", in: args) == nil { try? FileManager.default.removeItem(atPath: dir) } }
    var random = SeededRandom(seed: 42)
    let base = Instant(unixSeconds: 1_780_000_000)

    // MARK: Recording 10,000 runs
    do {
        let path = dir + "/record.db"
        let store = try SQLiteStateStore(path: path)
        var fireLatencies: [Double] = []
        fireLatencies.reserveCapacity(10_000)
        let start = DispatchTime.now().uptimeNanoseconds
        let cpu0 = processCPUSeconds()
        for i in 0..<10_000 {
            let job = "job-\(i % 100)"
            let t = base + .seconds(Int64(i))
            let id = RunID(time: t, random: &random)
            let f0 = DispatchTime.now().uptimeNanoseconds
            try store.apply([.fired(job: job, scheduledFor: t), .runStarted(RunRecord(id: id, job: job, trigger: .schedule, scheduledFor: t, startedAt: t))])
            fireLatencies.append(Double(DispatchTime.now().uptimeNanoseconds - f0) / 1e6)
            try store.apply([.attemptStarted(runID: id, attempt: 1, pid: 1234, at: t)])
            try store.apply([.planned(LedgerEntry(job: job, scheduledFor: t, disposition: .ran(id), at: t))])
            try store.apply([.attemptFinished(runID: id, attempt: 1, outcome: .success(exitCode: 0), at: t + .seconds(2), durationMs: 2000)])
            try store.apply([.runFinished(runID: id, outcome: .success(exitCode: 0), at: t + .seconds(2))])
        }
        try store.flush()
        let total = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let cpu = processCPUSeconds() - cpu0
        fireLatencies.sort()
        print(
            String(
                format:
                    "record 10,000 runs: %.3f s wall, %.3f s CPU (user+sys, all threads) (target < 1 s); fire-path commit p50 %.3f ms, p99 %.3f ms, max %.3f ms",
                total, cpu, fireLatencies[5_000], fireLatencies[9_900], fireLatencies.last!))
        try store.close()
    }

    // MARK: status-style query with 1,000 jobs
    let queryPath = dir + "/query.db"
    if !args.contains("--size") {
        let store = try SQLiteStateStore(path: queryPath)
        for minute in 0..<20 { try recordMinute(store, minute: minute, jobs: 1_000, base: base, random: &random) }
        try store.close()
    }

    if args.contains("--size") {
        let hours = Int(value(of: "--hours", in: args) ?? "36") ?? 36
        let jobs = Int(value(of: "--jobs", in: args) ?? "1000") ?? 1000
        let store = try SQLiteStateStore(path: queryPath)
        let start = DispatchTime.now().uptimeNanoseconds
        var peak: Int64 = 0
        for hour in 0..<hours {
            for m in 0..<60 { try recordMinute(store, minute: hour * 60 + m, jobs: jobs, base: base, random: &random) }
            try store.prune(now: base + .seconds(Int64((hour + 1) * 3600)))
            peak = max(peak, fileSize(queryPath) + fileSize(queryPath + "-wal"))
            if (hour + 1) % 6 == 0 {
                print(
                    String(
                        format: "  after %d h: %.1f MB (db %.1f MB + wal %.1f MB), %.0f s elapsed", hour + 1,
                        Double(fileSize(queryPath) + fileSize(queryPath + "-wal")) / 1e6, Double(fileSize(queryPath)) / 1e6,
                        Double(fileSize(queryPath + "-wal")) / 1e6, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9))
            }
        }
        try store.close()
        print(
            String(
                format:
                    "size: %d minutely jobs, %d h recorded, default retention (pruned hourly): %.1f MB after close (%.1f MB per 1,000 jobs), peak %.1f MB with the WAL (target < 200 MB for 1,000 jobs)",
                jobs, hours, Double(fileSize(queryPath)) / 1e6, Double(fileSize(queryPath)) / 1e6 * 1000 / Double(jobs), Double(peak) / 1e6))
    }

    do {
        let store = try SQLiteStateStore(path: queryPath)
        let q0 = DispatchTime.now().uptimeNanoseconds
        let found = try store.latestRuns().count
        let q1 = DispatchTime.now().uptimeNanoseconds
        let restored = try store.restore()
        let q2 = DispatchTime.now().uptimeNanoseconds
        _ = try store.ledger(job: "job-0", since: base)
        let q3 = DispatchTime.now().uptimeNanoseconds
        print(
            String(
                format:
                    "status query (latestRuns(): last run of each of 1,000 jobs, %d found): %.1f ms (target < 50 ms); restore(): %.1f ms (%d jobs); why (one job's ledger): %.2f ms",
                found, Double(q1 - q0) / 1e6, Double(q2 - q1) / 1e6, restored.lastFired.count, Double(q3 - q2) / 1e6))
        try store.close()
    }
}

/// One minute of an agent with `jobs` minutely jobs: each fires, runs 2 s and succeeds.
private func recordMinute(_ store: SQLiteStateStore, minute: Int, jobs: Int, base: Instant, random: inout SeededRandom) throws {
    let t = base + .seconds(Int64(minute) * 60)
    var changes: [StateChange] = []
    changes.reserveCapacity(jobs * 6)
    for j in 0..<jobs {
        let job = "job-\(j)"
        let id = RunID(time: t, random: &random)
        changes.append(.fired(job: job, scheduledFor: t))
        changes.append(.runStarted(RunRecord(id: id, job: job, trigger: .schedule, scheduledFor: t, startedAt: t)))
        changes.append(.attemptStarted(runID: id, attempt: 1, pid: 1234, at: t))
        changes.append(.planned(LedgerEntry(job: job, scheduledFor: t, disposition: .ran(id), at: t)))
        changes.append(.attemptFinished(runID: id, attempt: 1, outcome: .success(exitCode: 0), at: t + .seconds(2), durationMs: 2000))
        changes.append(.runFinished(runID: id, outcome: .success(exitCode: 0), at: t + .seconds(2)))
    }
    try store.apply(changes)
}

/// CPU time of the whole process: robust to a loaded machine, unlike wall time.
private func processCPUSeconds() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
}

private func fileSize(_ path: String) -> Int64 {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
}

private func value(of flag: String, in args: [String]) -> String? {
    guard let i = args.firstIndex(of: flag), i + 1 < args.count else { return nil }
    return args[i + 1]
}
