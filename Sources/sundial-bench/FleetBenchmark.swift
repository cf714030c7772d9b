import CSundialShim
import OrderedCollections
import SundialCore
import SundialRuntime

#if canImport(Glibc)
import Glibc
#endif

/// `sundial-bench fleet [BOXES] [HOURS] [--no-seconds]`: the `lock: fleet` simulation of
/// docs/fleet.md on virtual time — every box a real scheduler, one in-memory fleet database,
/// with box deaths, database outages, clock skew of up to ±5 s and slow boxes injected.
/// Defaults: 1,000 boxes, 24 hours. Prints the report (claims per second at the database,
/// round trips per fire, instants lost and doubled) and the time taken.
func benchmarkFleet(_ args: [String]) {
    let numbers = args.compactMap { Int($0) }
    let boxes = numbers.first ?? 1000
    let hours = numbers.count > 1 ? numbers[1] : 24
    let withSeconds = !args.contains("--no-seconds")
    var jobs: [JobSpec] = []
    func fleetJob(_ id: String, _ cron: String, _ configure: (inout JobSpec) -> Void) {
        var spec = JobSpec(id: id, schedule: .cron(cron), command: .argv(["/bin/true"]))
        spec.timezone = "UTC"
        spec.lock = .fleet
        configure(&spec)
        jobs.append(spec)
    }
    if withSeconds {
        fleetJob("every-second", "* * * * * *") {
            $0.concurrency = .allow
            $0.onLost = .skip
        }
    }
    fleetJob("every-minute", "* * * * *") {
        $0.concurrency = .allow
        $0.onLost = .rerun
    }
    fleetJob("hourly-forbid", "0 * * * *") {
        $0.concurrency = .forbid
        $0.onLost = .rerun
    }
    var set = JobSet()
    for j in jobs { set.jobs[j.id] = j }
    let start = Instant(unixMillis: 1_767_571_200_000)  // 2026-01-05T00:00:00Z
    let durationMs = Int64(hours) * 3_600_000
    var config = FleetSimulation.Config(boxes: boxes, start: start, durationMs: durationMs, jobs: set)
    config.runMs = ["every-second": 200, "every-minute": 20_000, "hourly-forbid": 10 * 60_000]
    config.deaths = max(1, boxes / 100)
    // As many again strike a box while it runs a fleet job: what exercises `on_lost`.
    config.targetedDeaths = max(1, boxes / 100) * Int(hours > 0 ? min(hours, 24) : 1)
    // Outages of seconds to minutes, spread over the run.
    let lengths: [Int64] = [3_000, 12_000, 45_000, 150_000, 7_000, 600_000]
    config.outages = lengths.enumerated().map { i, len in
        (atMs: durationMs * Int64(i + 1) / Int64(lengths.count + 1) + 1_234, lengthMs: len)
    }.filter { $0.atMs + $0.lengthMs < durationMs - 600_000 }
    let began = monotonicMs()
    let report = FleetSimulation.run(config, calculator: CalendarFireCalculator(zones: SystemTimeZones()))
    let took = Double(monotonicMs() - began) / 1000
    print("fleet: \(boxes) boxes, \(hours) h, jobs: \(jobs.map(\.id).joined(separator: ", "))")
    print(
        "faults: \(config.deaths) box deaths at random, \(config.targetedDeaths) of boxes running a fleet job, outages \(config.outages.map { "\($0.lengthMs / 1000) s" }.joined(separator: ", ")), skew ±\(config.maxSkewMs / 1000) s, \(Int(config.slowBoxes * 100)) % of boxes with \(config.slowRoundTripMs) ms round trips"
    )
    print(report)
    print("took \(took) s")
}

private func monotonicMs() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}
