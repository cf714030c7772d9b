import OrderedCollections
import SundialCore

/// A fire calculator whose fires are obvious, so scheduler tests check the scheduler only.
///
/// `every` and `at` are computed exactly as the design says; `cron` accepts a tiny language
/// instead of cron: `@hourly`, `@daily` (UTC), or `grid:PERIOD_MS[+OFFSET_MS]` (fires at
/// `OFFSET + k × PERIOD` ms past the epoch).
struct FakeCalculator: FireCalculating {
    func nextFire(of job: JobSpec, after: Instant, anchor: Instant) -> Instant? {
        switch job.schedule {
        case .manual, .reboot: return nil
        case let .at(list): return list.first { $0 > after }
        case let .every(interval, offset):
            return FakeCalculator.grid(period: interval, origin: offset ?? anchor.unixMillis, after: after)
        case let .cron(text):
            switch text {
            case "@hourly": return FakeCalculator.grid(period: 3_600_000, origin: 0, after: after)
            case "@daily": return FakeCalculator.grid(period: 86_400_000, origin: 0, after: after)
            default:
                guard text.hasPrefix("grid:") else { return nil }
                let parts = text.dropFirst(5).split(separator: "+")
                guard let period = Int64(parts[0]) else { return nil }
                let offset = parts.count > 1 ? Int64(parts[1]) ?? 0 : 0
                return FakeCalculator.grid(period: period, origin: offset, after: after)
            }
        }
    }

    /// The first `origin + k × period` strictly after `after` (any integer k).
    static func grid(period: Int64, origin: Int64, after: Instant) -> Instant {
        let d = after.unixMillis - origin
        let k = d >= 0 ? d / period + 1 : -((-d) / period) + ((-d) % period == 0 ? 1 : 0)
        return Instant(unixMillis: origin + k * period)
    }
}

let minute: Int64 = 60_000
let hour: Int64 = 3_600_000
let day: Int64 = 86_400_000

/// Monday 2026-01-05T00:00:00Z: the origin of most scenarios.
let t0 = Instant(unixMillis: 1_767_571_200_000)

func at(_ offsetMs: Int64) -> Instant { Instant(unixMillis: t0.unixMillis + offsetMs) }

func job(_ id: JobID, _ schedule: ScheduleSpec = .manual, needs: [Need] = [], _ configure: (inout JobSpec) -> Void = { _ in })
    -> JobSpec
{
    var spec = JobSpec(id: id, schedule: schedule, command: .argv(["/bin/true"]))
    spec.needs = needs
    configure(&spec)
    return spec
}

func jobSet(_ jobs: [JobSpec]) -> JobSet {
    var set = OrderedDictionary<JobID, JobSpec>()
    for j in jobs { set[j.id] = j }
    return JobSet(jobs: set, files: ["test.yaml"], revision: "test")
}

extension Event {
    var job: String? { self["job"]?.stringValue }
    var runID: String? { self["run_id"]?.stringValue }
    var reason: String? { self["reason"]?.stringValue }
    var trigger: String? { self["trigger"]?.stringValue }
    var outcome: String? { self["outcome"]?.stringValue }
    var scheduledFor: String? { self["scheduled_for"]?.stringValue }
    func int(_ key: String) -> Int64? { if case let .int(v) = self[key] { v } else { nil } }
}

extension [Event] {
    func named(_ name: String, job: JobID? = nil) -> [Event] {
        filter { $0.name == name && (job == nil || $0.job == job) }
    }
}

/// Runs a simulation and returns its events.
func simulate(
    _ jobs: [JobSpec], from: Instant = t0, to: Instant, script: [JobID: [SimulatedAttempt]] = [:],
    inputs: [SimulatedInput] = [], restored: RestoredState = RestoredState(), reboot: Bool = true,
    options: SchedulerOptions = SchedulerOptions(recordsState: false)
) -> [Event] {
    var sim = Simulator(jobs: jobSet(jobs), calculator: FakeCalculator(), script: script, inputs: inputs, options: options)
    return sim.events(from: from, to: to, restored: restored, reboot: reboot)
}

/// Runs a simulation and returns every action with its virtual instant.
func simulateActions(
    _ jobs: [JobSpec], from: Instant = t0, to: Instant, script: [JobID: [SimulatedAttempt]] = [:],
    inputs: [SimulatedInput] = [], restored: RestoredState = RestoredState(), reboot: Bool = true
)
    -> [(Instant, SchedulerAction)]
{
    var sim = Simulator(
        jobs: jobSet(jobs), calculator: FakeCalculator(), script: script, inputs: inputs,
        options: SchedulerOptions(recordsState: true))
    var all: [(Instant, SchedulerAction)] = []
    sim.run(from: from, to: to, restored: restored, reboot: reboot) { all.append(($0, $1)) }
    return all
}

/// A scheduler driven by hand, one event at a time.
func makeScheduler(_ jobs: [JobSpec], seed: UInt64 = 7, options: SchedulerOptions = SchedulerOptions()) -> Scheduler {
    Scheduler(jobs: jobSet(jobs), calculator: FakeCalculator(), random: SeededRandom(seed: seed), options: options)
}

extension [SchedulerAction] {
    var launches: [LaunchOrder] { compactMap { if case let .launch(o) = $0 { o } else { nil } } }
    var records: [LogRecord] { compactMap { if case let .emit(r) = $0 { r } else { nil } } }
    /// The records rendered as log lines (tests read names and fields).
    var events: [Event] { records.map(\.event) }
    var changes: [StateChange] { compactMap { if case let .persist(c) = $0 { c } else { nil } } }
    var wake: Instant? { compactMap { if case let .wake(w) = $0 { w } else { nil } }.last }
    var terminations: [RunID] { compactMap { if case let .terminate(id, _, _) = $0 { id } else { nil } } }
    var triggerResults: [TriggerResult] { compactMap { if case let .triggerResult(_, r) = $0 { r } else { nil } } }
    var shutdownCompleted: Bool { contains { if case .shutdownComplete = $0 { true } else { false } } }
}

let ok = SimulatedAttempt.instantSuccess
func fail(_ code: Int32 = 1, ms: Int64 = 0) -> SimulatedAttempt { SimulatedAttempt(.failure(exitCode: code), durationMs: ms) }
func succeed(ms: Int64) -> SimulatedAttempt { SimulatedAttempt(.success(exitCode: 0), durationMs: ms) }
