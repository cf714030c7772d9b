import CSundialShim
import OrderedCollections
import SundialConfig
import SundialCore
import SundialRuntime

#if canImport(Glibc)
import Glibc
#endif

/// `sundial-bench memory DIR`: where an idle agent's private memory goes, part by part, in
/// process: the job set as the agent decodes it from the loader's answer, the scheduler's table
/// and its armed fires, and the metrics. Each figure is the growth of `RssAnon` after
/// `malloc_trim` (what the box feels, in whole pages), so small parts read as 0 or 4 KiB.
/// Issue 15's target is 10 MiB of RssAnon for an agent with 10,000 jobs; this shows which part
/// to shrink next.
func memoryBreakdown(_ args: [String]) {
    guard let dir = args.first else {
        print("usage: sundial-bench memory DIR")
        return
    }
    func anon() -> Int {
        _ = sundial_trim_heap()
        guard let file = fopen("/proc/self/status", "r") else { return 0 }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, 256, file) != nil {
            let bytes = line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
            let text = String(decoding: bytes, as: UTF8.self)
            if text.hasPrefix("RssAnon:") {
                return (Int(text.dropFirst(8).split { $0 == " " || $0 == "\t" }.first ?? "") ?? 0) * 1024
            }
        }
        return 0
    }
    // The answer as the loader child sends it, then dropped: the agent holds only the decoded set.
    var wire = LoaderWire.encode(ConfigurationLoading.load(paths: [dir]))
    let base = anon()
    guard let decoded = try? LoaderWire.decode(wire, maxBytes: Int.max), let set = decoded.jobSet else {
        print("memory: \(dir) did not load as a valid set")
        return
    }
    let n = max(1, set.jobs.count)
    let afterSet = anon()
    wire = []
    let withoutWire = anon()
    let zones = SystemTimeZones()
    let calculator = CalendarFireCalculator(zones: zones)
    var scheduler = Scheduler(jobs: set, calculator: calculator, random: SeededRandom(seed: 1))
    let afterTable = anon()
    let now = Instant(unixMillis: Int64(time(nil)) * 1000)
    _ = scheduler.handle(.start(restored: RestoredState(), reboot: false), at: now)
    let afterStart = anon()
    var metrics = MetricsRegistry(options: .init(version: "bench"))
    var fires: [JobID: Instant] = [:]
    for id in set.jobs.keys { fires[id] = scheduler.plannedFire(of: id) ?? now }
    metrics.setNextFires(fires)
    fires = [:]
    let afterMetrics = anon()
    func row(_ what: String, _ bytes: Int) {
        print("\(what): \(bytes / 1024) KiB (\(bytes / n) bytes per job)")
    }
    print("memory: \(set.jobs.count) jobs from \(dir)")
    row("job set (decoded from the loader's answer)", afterSet - base)
    row("scheduler's job table", afterTable - withoutWire)
    row("scheduler started (armed fires, parsed schedules)", afterStart - afterTable)
    row("metrics registry", afterMetrics - afterStart)
    withExtendedLifetime((decoded, scheduler, metrics, calculator)) {}
}
