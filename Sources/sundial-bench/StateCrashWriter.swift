import Foundation
import SundialCore
import SundialRuntime

/// `sundial-bench state-crash-writer DB`: the child process of the runtime tests' crash-safety
/// test (not a benchmark). It behaves like an agent's scheduler path against the state store —
/// on start it records the runs left in flight as `interrupted` and resumes each job after its
/// last fired instant; then it fires three jobs in a loop — and prints, unbuffered,
/// `F job scheduledForMillis runID` once `apply([.fired, .runStarted])` has returned (the
/// durable step). The test kills it with SIGKILL at random moments and checks the database
/// against what it printed.
func stateCrashWriter(_ args: [String]) throws {
    guard let path = args.first else {
        print("usage: sundial-bench state-crash-writer DB")
        exit(2)
    }
    // Every run kept: the test checks that each acknowledged run is in the file, so the store's
    // hourly retention (first applied at the first alive mark) must not prune any.
    let store = try SQLiteStateStore(path: path, retention: StateRetention(maxRunsPerJob: .max, maxLedgerEntriesPerJob: .max))
    let restored = try store.restore()
    let now = { Instant(unixMillis: Int64(Date().timeIntervalSince1970 * 1000)) }
    for run in restored.inFlight {
        try store.apply([.runFinished(runID: run.id, outcome: .interrupted, at: now())])
    }
    try store.flush()
    let jobs = ["alpha", "beta", "gamma"]
    let base = Instant(unixSeconds: 1_780_000_000)
    var next = Dictionary(uniqueKeysWithValues: jobs.map { ($0, (restored.lastFired[$0] ?? base) + .seconds(1)) })
    var random = SeededRandom(seed: UInt64(getpid()))
    func say(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
    }
    var i = 0
    while true {
        let job = jobs[i % jobs.count]
        let t = next[job]!
        next[job] = t + .seconds(1)
        let id = RunID(time: now(), random: &random)
        try store.apply([.fired(job: job, scheduledFor: t), .runStarted(RunRecord(id: id, job: job, trigger: .schedule, scheduledFor: t, startedAt: now()))])
        say("F \(job) \(t.unixMillis) \(id.rawValue)")
        try store.apply([.attemptStarted(runID: id, attempt: 1, pid: getpid(), at: now())])
        try store.apply([.planned(LedgerEntry(job: job, scheduledFor: t, disposition: .ran(id), at: now()))])
        try store.apply([.attemptFinished(runID: id, attempt: 1, outcome: .success(exitCode: 0), at: now(), durationMs: 1)])
        try store.apply([.runFinished(runID: id, outcome: .success(exitCode: 0), at: now())])
        if i % 50 == 0 { try store.markAlive(now: now()) }
        i += 1
    }
}
