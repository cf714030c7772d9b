import CSundialShim
import Foundation
import OrderedCollections
import SundialConfig
import SundialCore
import SundialRuntime

#if canImport(Glibc)
import Glibc
#endif

/// `sundial-bench seed-status JOBS-DIR STATE-DIR [RUNS-PER-JOB]`: fills a state database with
/// finished runs (default 50) and a ledger entry for every job of the config, so that `status`
/// has a last outcome to find for each job (issue 7: `sundial status` in < 50 ms with 1,000 jobs).
/// `scripts/bench-status.sh` runs the whole benchmark.
func seedStatusState(_ args: [String]) throws {
    guard args.count >= 2 else {
        print("usage: sundial-bench seed-status JOBS-DIR STATE-DIR [RUNS-PER-JOB]")
        exit(2)
    }
    let runsPerJob = args.count > 2 ? Int(args[2]) ?? 50 : 50
    let loaded = ConfigurationLoading.load(paths: [args[0]], environment: .system(zones: SystemTimeZones()))
    guard let set = loaded.jobSet, loaded.isValid else {
        print("the config in \(args[0]) is invalid")
        exit(1)
    }
    mkdir(args[1], 0o700)
    let store = try SQLiteStateStore(path: args[1] + "/state.db")
    var random = SeededRandom(seed: 42)
    let now = SystemClock().wallNow()
    for (n, id) in set.jobs.keys.enumerated() {
        var changes: [StateChange] = []
        for k in 0..<runsPerJob {
            let at = Instant(unixMillis: now.unixMillis - Int64(runsPerJob - k) * 3_600_000 - Int64(n))
            let run = RunID(time: at, random: &random)
            let outcome: RunOutcome = k % 10 == 9 ? .failure(exitCode: 1) : .success(exitCode: 0)
            changes += [
                .runStarted(RunRecord(id: run, job: id, trigger: .schedule, scheduledFor: at, startedAt: at)),
                .attemptStarted(runID: run, attempt: 1, pid: 1000, at: at),
                .attemptFinished(runID: run, attempt: 1, outcome: outcome, at: at + .seconds(2), durationMs: 2000),
                .runFinished(runID: run, outcome: outcome, at: at + .seconds(2)),
                .planned(LedgerEntry(job: id, scheduledFor: at, disposition: .ran(run), at: at)),
            ]
        }
        try store.apply(changes)
    }
    try store.close()
    print("seeded \(set.jobs.count) jobs × \(runsPerJob) runs into \(args[1])/state.db")
}

/// `sundial-bench status-client SOCKET [N]`: N `status` round trips over the control socket
/// (request, the agent's answer, decoding the report), with percentiles. The CLI's own start-up
/// is measured by the script.
func benchStatusClient(_ args: [String]) throws {
    guard let path = args.first else {
        print("usage: sundial-bench status-client SOCKET [N]")
        exit(2)
    }
    let n = args.count > 1 ? Int(args[1]) ?? 100 : 100
    let client = ControlClient(path: path, timeout: .seconds(10))
    let clock = SystemClock()
    var times: [Double] = []
    var bytes = 0
    var jobs = 0
    for _ in 0..<n {
        var t0 = timespec()
        var t1 = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t0)
        let reply = try client.send(.status)
        let report = try StatusReport(json: reply.body)
        clock_gettime(CLOCK_MONOTONIC, &t1)
        times.append(Double(t1.tv_sec - t0.tv_sec) * 1000 + Double(t1.tv_nsec - t0.tv_nsec) / 1e6)
        bytes = reply.line.count
        jobs = report.jobs.count
        _ = clock
    }
    // Where the time goes: decoding the reply line, and the report, on their own.
    let line = Array(try client.send(.status).line.dropLast())
    func ms(_ body: () throws -> Void) rethrows -> Double {
        var a = timespec()
        var b = timespec()
        clock_gettime(CLOCK_MONOTONIC, &a)
        try body()
        clock_gettime(CLOCK_MONOTONIC, &b)
        return Double(b.tv_sec - a.tv_sec) * 1000 + Double(b.tv_nsec - a.tv_nsec) / 1e6
    }
    var response: ControlResponse?
    let parse = try ms { response = try ControlResponse(line: line) }
    var report: StatusReport?
    let decode = try ms { report = try StatusReport(json: response!.body) }
    // What the agent does to answer, besides its queries: the report to JSON to one line.
    let encode = ms { _ = ControlResponse.success(report!.json).line }
    print(String(format: "  one reply: decoding JSON %.2f ms, the report %.2f ms; encoding (as the agent does) %.2f ms", parse, decode, encode))
    // The agent's one query for `status`, on a second connection to its database.
    let dir = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
    var options = SQLiteStateStore.Options()
    options.checkOnOpen = false
    let store = try SQLiteStateStore(path: dir + "/state.db", options: options)
    var queries: [Double] = []
    for _ in 0..<20 { queries.append(try ms { _ = try store.latestRuns() }) }
    try store.close()
    print(String(format: "  the agent's query (latestRuns, %d jobs): median %.2f ms", jobs, queries.sorted()[10]))
    times.sort()
    func p(_ q: Double) -> String { String(format: "%.2f", times[min(times.count - 1, Int(Double(times.count) * q))]) }
    print("status over the socket: \(jobs) jobs, \(bytes) bytes per reply, \(n) requests: p50 \(p(0.5)) ms, p95 \(p(0.95)) ms, max \(p(1.0)) ms")
}
