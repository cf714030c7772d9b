import Foundation
import OrderedCollections
import SundialConfig
import SundialCore
import SundialRuntime
import SundialTesting
import Synchronization
import Testing

/// A launcher whose attempts run until the test ends them (``finish(_:)``), so runs stay active
/// for as long as a test needs.
final class HeldLauncher: JobLauncher {
    private struct State {
        var launched: [LaunchOrder] = []
        var waiting: [RunID: CheckedContinuation<RunCompletion, Never>] = [:]
        var early: [RunID: RunOutcome] = [:]
    }
    private let state = Mutex(State())

    func launch(_ order: LaunchOrder, workdir: String, notBefore: Instant?, onOutput: @escaping OutputHandler) async -> LaunchedAttempt {
        state.withLock { $0.launched.append(order) }
        let id = order.runID
        return LaunchedAttempt(pid: 4000 + Int32(state.withLock { $0.launched.count })) { [self] in
            await withCheckedContinuation { c in
                let early: RunOutcome? = state.withLock { s in
                    if let o = s.early.removeValue(forKey: id) { return o }
                    s.waiting[id] = c
                    return nil
                }
                if let early { c.resume(returning: RunCompletion(runID: id, pid: nil, outcome: early, durationMs: 1)) }
            }
        }
    }

    func terminate(_ runID: RunID, grace: Duration) { finish(runID, .signal(15)) }

    /// Ends the attempt of `id` with `outcome` (now, or as soon as it is waited for).
    func finish(_ id: RunID, _ outcome: RunOutcome = .success(exitCode: 0)) {
        let c: CheckedContinuation<RunCompletion, Never>? = state.withLock { s in
            if let c = s.waiting.removeValue(forKey: id) { return c }
            s.early[id] = outcome
            return nil
        }
        c?.resume(returning: RunCompletion(runID: id, pid: nil, outcome: outcome, durationMs: 1))
    }

    var launched: [LaunchOrder] { state.withLock { $0.launched } }
}

/// Records what the agent arms.
final class RecordingAlarm: WakeAlarm {
    private let armed = Mutex<[Instant?]>([])
    func arm(at instant: Instant?) { armed.withLock { $0.append(instant) } }
    var last: Instant?? { armed.withLock { $0.last } }
}

/// An agent on fakes: virtual clock, memory store and log, a held launcher.
struct AgentRig {
    let clock = VirtualClock(wall: t0, monotonic: 1_000_000)
    let sink = MemoryEventSink()
    let store = MemoryStateStore()
    let launcher = HeldLauncher()
    let alarm = RecordingAlarm()
    let config: ConfigBox
    let agent: Agent

    init(_ jobs: [JobSpec], revision: String = "rev-1") {
        let set = Self.set(jobs, revision: revision)
        let box = ConfigBox(ConfigLoadResult(jobSet: set, diagnostics: []))
        config = box
        agent = Agent(
            settings: .init(configPaths: ["/etc/sundial/jobs.d"], stateDirectory: "/tmp/none", version: "9.9.9"),
            jobs: set, clock: clock, random: SeededRandom(seed: 1), calculator: CalendarFireCalculator(zones: SystemTimeZones()),
            launcher: launcher, log: EventLog(sink: sink, clock: clock), store: store, alarm: alarm, pid: 4242,
            loadConfiguration: { box.load() })
    }

    final class ConfigBox: Sendable {
        let config: Mutex<ConfigLoadResult>
        init(_ c: ConfigLoadResult) { config = Mutex(c) }
        func load() -> ConfigLoadResult { config.withLock { $0 } }
    }

    static func set(_ jobs: [JobSpec], revision: String) -> JobSet {
        var d = OrderedDictionary<JobID, JobSpec>()
        for j in jobs { d[j.id] = j }
        return JobSet(jobs: d, files: ["jobs.yaml"], revision: revision)
    }

    func setConfig(_ jobs: [JobSpec]?, revision: String, errors: [Diagnostic] = []) {
        config.config.withLock { $0 = ConfigLoadResult(jobSet: jobs.map { Self.set($0, revision: revision) }, diagnostics: errors) }
    }

    var events: [String] { sink.lines }
    func lines(_ name: String) -> [String] { sink.lines.filter { $0.contains("\"event\":\"\(name)\"") } }
}

func spec(_ id: JobID, _ schedule: ScheduleSpec = .manual, _ configure: (inout JobSpec) -> Void = { _ in }) -> JobSpec {
    var s = JobSpec(id: id, schedule: schedule, command: .argv(["/bin/true"]))
    configure(&s)
    return s
}

@Suite("Agent control handler", .offPool)
struct AgentControlTests {
    @Test func statusReportsRevisionNextFiresLastOutcomesAndActiveRuns() async throws {
        let rig = AgentRig([
            spec("hourly", .cron("0 * * * *")) {
                $0.description = "on the hour"
                $0.timezone = "UTC"
            },
            spec("beat", .every(intervalMs: 30_000, offsetMs: nil)),
            spec("after", .manual) { $0.needs = [Need(job: "beat")] },
            spec("off", .cron("0 * * * *")) { $0.enabled = false },
        ])
        // A previous agent left a finished run of `hourly`.
        let old = RunRecord(id: rid(1), job: "hourly", trigger: .schedule, scheduledFor: at(-3600), startedAt: at(-3600))
        try rig.store.apply([.runStarted(old), .runFinished(runID: old.id, outcome: .failure(exitCode: 2), at: at(-3590))])
        await rig.agent.start(restored: try rig.store.restore())
        let started = await rig.agent.trigger("beat")
        guard case let .started(beatRun) = started else {
            Issue.record("beat did not start: \(started)")
            return
        }

        let reply = await rig.agent.handle(.status)
        #expect(reply.ok)
        let report = try StatusReport(json: reply.body)
        #expect(report.revision == "rev-1" && report.pid == 4242 && report.version == "9.9.9" && report.startedAt == t0)
        #expect(report.jobs.map(\.id) == ["hourly", "beat", "after", "off"])
        #expect(report.jobs.map(\.schedule) == ["0 * * * *", "every 30s", "after beat", "0 * * * *"])
        #expect(report.jobs[0].description == "on the hour")
        // t0 is 2026-05-28T20:26:40Z: the next hour, and 30 s after the start.
        #expect(report.jobs[0].next == Instant(unixSeconds: 1_780_002_000))
        #expect(report.jobs[1].next == at(30))
        #expect(report.jobs[3].enabled == false && report.jobs[3].next == nil)
        #expect(report.jobs[0].last?.outcome == .failure(exitCode: 2))
        #expect(report.jobs[1].last?.id == beatRun && report.jobs[1].last?.outcome == nil)
        #expect(report.active.map(\.runID) == [beatRun])
        #expect(report.active.first?.job == "beat")
        #expect(report.jobs.allSatisfy { !$0.held })
    }

    @Test("status marks wall-clock jobs held by --hold-until-synced, and only them")
    func statusShowsHeldJobs() async throws {
        let rig = AgentRig([
            spec("hourly", .cron("0 * * * *")) { $0.timezone = "UTC" },
            spec("beat", .every(intervalMs: 30_000, offsetMs: nil)),
        ])
        await rig.agent.holdCalendar(true)
        await rig.agent.start(restored: try rig.store.restore())
        var report = try StatusReport(json: await rig.agent.handle(.status).body)
        #expect(report.jobs.map(\.held) == [true, false])
        #expect(report.jobs[0].next == nil && report.jobs[1].next == at(30))

        await rig.agent.holdCalendar(false)
        report = try StatusReport(json: await rig.agent.handle(.status).body)
        #expect(report.jobs.map(\.held) == [false, false])
        #expect(report.jobs[0].next != nil)
    }

    @Test("a status reply without \"held\" (an older agent) decodes as not held; a wrong type is an error")
    func heldIsOptionalOnTheWire() throws {
        let base: JSONValue = [
            "version": "1", "pid": 1, "revision": "r", "started": .string(t0.description), "active": [],
            "jobs": [["id": "a", "description": .null, "schedule": "manual", "enabled": true, "next": .null, "last": .null]],
        ]
        #expect(try StatusReport(json: base).jobs.first?.held == false)
        guard case var .object(o) = base, case var .array(jobs) = o["jobs"], case var .object(j) = jobs[0] else {
            Issue.record("unexpected JSON shape")
            return
        }
        j["held"] = "yes"
        jobs[0] = .object(j)
        o["jobs"] = .array(jobs)
        #expect(throws: ControlProtocolError.self) { try StatusReport(json: .object(o)) }
    }

    @Test func triggerHonoursConcurrencyAndNamesUnknownJobs() async throws {
        let rig = AgentRig([
            spec("solo") { $0.concurrency = .forbid },
            spec("line") { $0.concurrency = .queue },
            spec("swap") { $0.concurrency = .replace },
        ])
        await rig.agent.start(restored: RestoredState())
        func trigger(_ job: JobID) async throws -> TriggerReport {
            let r = await rig.agent.handle(.trigger(job: job))
            return try TriggerReport(json: r.body)
        }
        let first = try await trigger("solo")
        #expect(first.result == .started && first.runID != nil)
        let second = try await trigger("solo")
        #expect(second.result == .skipped && second.reason == "a run is active (concurrency: forbid)")
        _ = try await trigger("line")
        #expect(try await trigger("line").result == .queued)
        // The one waiting place is taken: the reply names the job's own policy (it said forbid).
        let full = try await trigger("line")
        #expect(full.result == .skipped && full.reason == "a run is active and another is already waiting (concurrency: queue)")
        _ = try await trigger("swap")
        let replacing = try await trigger("swap")
        #expect(replacing.result == .queued && replacing.reason?.contains("replace") == true)
        let unknown = await rig.agent.handle(.trigger(job: "nope"))
        #expect(!unknown.ok && unknown.error == "unknown job nope")
    }

    @Test func historyAndWhyReadTheStoreAndRefuseUnknownJobs() async throws {
        let rig = AgentRig([spec("tick", .every(intervalMs: 60_000, offsetMs: 0)) { $0.concurrency = .forbid }])
        await rig.agent.start(restored: RestoredState())
        // The first fire (t0 + 20 s: t0 is 40 s past the minute) runs; while it is active the
        // next is skipped for overlap.
        rig.clock.advance(by: .seconds(20))
        await rig.agent.deliver(.wake)
        rig.clock.advance(by: .seconds(60))
        await rig.agent.deliver(.wake)
        #expect(await eventuallyAsync { rig.launcher.launched.count == 1 })
        let run = try #require(rig.launcher.launched.first?.runID)
        rig.launcher.finish(run)
        #expect(await eventuallyAsync { await rig.agent.activeRuns.isEmpty })

        let history = try HistoryReport(json: await rig.agent.handle(.history(job: "tick", limit: 5)).body)
        #expect(history.runs.map(\.id) == [run] && history.runs[0].outcome == .success(exitCode: 0))
        let why = try WhyReport(json: await rig.agent.handle(.why(job: "tick")).body)
        #expect(why.entries.map(\.disposition) == [.ran(run), .skipped(.overlap)])
        #expect(why.since == rig.clock.wallNow() - .seconds(86_400))
        #expect(why.next == at(140))
        for request in [ControlRequest.history(job: "nope", limit: 5), .why(job: "nope")] {
            let r = await rig.agent.handle(request)
            #expect(!r.ok && r.error == "unknown job nope")
        }
    }

    @Test func reloadWaitsForTheOutcome() async throws {
        let rig = AgentRig([spec("a"), spec("b")])
        await rig.agent.start(restored: RestoredState())
        let same = try ReloadReport(json: await rig.agent.handle(.reload).body)
        #expect(same == ReloadReport(revision: "rev-1"))

        rig.setConfig([spec("a") { $0.description = "changed" }, spec("c")], revision: "rev-2")
        let loaded = try ReloadReport(json: await rig.agent.handle(.reload).body)
        #expect(loaded == ReloadReport(revision: "rev-2", added: ["c"], removed: ["b"], changed: ["a"]))

        let bad = Diagnostic(at: SourceLocation(file: "jobs.yaml", line: 3, column: 12), "`every`: invalid duration `nope`")
        rig.setConfig(nil, revision: "", errors: [bad])
        let rejected = await rig.agent.handle(.reload)
        #expect(!rejected.ok)
        #expect(rejected.error?.contains("still running revision rev-2") == true)
        #expect(rejected.error?.contains("jobs.yaml:3:12: `every`: invalid duration `nope`") == true)
        #expect(await rig.agent.jobSet.revision == "rev-2")

        // `sundial reload` prints the reply on a terminal: a quoted value's escapes arrive as text.
        let hostile = Diagnostic(at: SourceLocation(file: "jobs.yaml", line: 4, column: 1), "unknown time zone `\u{1B}]0;PWNED\u{07}\u{9B}\u{202E}`")
        rig.setConfig(nil, revision: "", errors: [hostile])
        let escaped = try #require(await rig.agent.handle(.reload).error)
        #expect(escaped.contains("jobs.yaml:4:1: unknown time zone `\\x1b]0;PWNED\\x07\\xc2\\x9b\\xe2\\x80\\xae`"), "\(escaped)")
        #expect(!escaped.unicodeScalars.contains { $0 == "\u{1B}" || $0 == "\u{07}" || $0 == "\u{9B}" || $0 == "\u{202E}" })

        // Many at once: each gets an answer (requests during a load share the next one).
        rig.setConfig([spec("z")], revision: "rev-3")
        let answers = await withTaskGroup(of: ControlResponse.self) { group in
            for _ in 0..<20 { group.addTask { await rig.agent.handle(.reload) } }
            var all: [ControlResponse] = []
            for await r in group { all.append(r) }
            return all
        }
        #expect(answers.count == 20 && answers.allSatisfy(\.ok))
        #expect(rig.lines("config.loaded").count == 3)  // start, rev-2, rev-3
    }

    @Test func afterShutdownRequestsGetErrorsNotHangs() async throws {
        let rig = AgentRig([spec("a")])
        await rig.agent.start(restored: RestoredState())
        await rig.agent.deliver(.shutdown(signal: "SIGTERM"))
        #expect(await rig.agent.waitUntilStopped() == 0)
        let trigger = await rig.agent.handle(.trigger(job: "a"))
        #expect(!trigger.ok && trigger.error == "the agent is shutting down")
        let reload = await rig.agent.handle(.reload)
        #expect(!reload.ok)
        #expect(await rig.agent.handle(.status).ok)
    }

    @Test func aliveIsMarkedAtStartOnEventsAndOnAnIdleTimerAtMostEveryFiveMinutes() async throws {
        let rig = AgentRig([spec("daily", .cron("0 3 * * *")) { $0.timezone = "UTC" }])
        await rig.agent.start(restored: RestoredState())
        #expect(try rig.store.restore().lastSeen == t0)
        // Idle: the alarm is armed for the alive mark, not later.
        #expect(rig.alarm.last == .some(at(300)))
        rig.clock.advance(by: .seconds(300))
        await rig.agent.deliver(.wake)
        #expect(try rig.store.restore().lastSeen == at(300))
        #expect(rig.alarm.last == .some(at(600)))
        // Events closer than 10 s share a mark.
        rig.clock.advance(by: .seconds(5))
        await rig.agent.deliver(.wake)
        #expect(try rig.store.restore().lastSeen == at(300))
        await rig.agent.deliver(.shutdown(signal: "SIGTERM"))
        _ = await rig.agent.waitUntilStopped()
        #expect(try rig.store.restore().lastSeen == at(305))
    }

    @Test func aRetryIsRecordedUnderItsAttemptBeforeItLaunches() async throws {
        let rig = AgentRig([spec("flaky") { $0.retry = RetryPolicy(attempts: 3, backoff: .fixed, delayMs: 1000) }])
        await rig.agent.start(restored: RestoredState())
        guard case let .started(id) = await rig.agent.trigger("flaky") else {
            Issue.record("not started")
            return
        }
        rig.launcher.finish(id, .failure(exitCode: 1))
        #expect(await eventuallyAsync { rig.lines("run.retry_scheduled").count == 1 })
        rig.clock.advance(by: .seconds(1))
        await rig.agent.deliver(.wake)
        #expect(await eventuallyAsync { rig.launcher.launched.map(\.attempt) == [1, 2] })
        // Killed now: the restart records attempt 2 interrupted (attempt 1 keeps its failure).
        #expect(try rig.store.restore().inFlight.map(\.attempt) == [2])
        #expect(try rig.store.history(job: "flaky", limit: 1).first?.attempts == 2)
    }

    @Test func holdingCalendarJobsLogsAndReleases() async throws {
        let rig = AgentRig([
            spec("cal", .every(intervalMs: 60_000, offsetMs: 0)),
            spec("beat", .every(intervalMs: 10_000, offsetMs: nil)),
        ])
        let synced = Mutex(false)
        let monitor = ClockSyncMonitor(probe: { synced.withLock { $0 } }, interval: .milliseconds(10))
        #expect(await monitor.start(holding: rig.agent, clock: rig.clock))
        await rig.agent.start(restored: RestoredState())
        #expect(rig.lines("clock.unsynced").count == 1)
        #expect(await rig.agent.nextFires()["cal"] == nil)
        #expect(await rig.agent.nextFires()["beat"] == at(10))
        // No alive mark while the clock is not trusted.
        #expect(try rig.store.restore().lastSeen == nil)
        synced.withLock { $0 = true }
        #expect(await eventuallyAsync { rig.lines("clock.synced").count == 1 })
        #expect(await rig.agent.nextFires()["cal"] == at(20))
        #expect(try rig.store.restore().lastSeen == t0)
        await rig.agent.deliver(.shutdown(signal: "SIGTERM"))
        _ = await rig.agent.waitUntilStopped()
    }

    @Test func oddRequestsGetErrorRepliesNeverCrashes() async throws {
        let rig = AgentRig([spec("a")])
        await rig.agent.start(restored: RestoredState())
        let odd = ["", String(repeating: "x", count: 70_000), "\u{0}", "a\nb", "'; DROP TABLE runs; --", "\u{1F600}"]
        for name in odd {
            for request in [
                ControlRequest.trigger(job: name), .history(job: name, limit: 1), .history(job: name, limit: 1_000_000),
                .history(job: name, limit: -5), .why(job: name),
            ] {
                let r = await rig.agent.handle(request)
                #expect(!r.ok && r.error?.hasPrefix("unknown job") == true)
            }
        }
        // A history limit out of range is clamped, not trusted.
        _ = await rig.agent.trigger("a")
        let all = try HistoryReport(json: await rig.agent.handle(.history(job: "a", limit: -1)).body)
        #expect(all.runs.count == 1)
    }

    @Test func theKernelAnswersTheSyncQuestion() {
        // Whatever this machine's state, adjtimex must answer (it needs no privilege).
        #expect(ClockSync.kernelSaysSynchronised() != nil)
    }
}

/// Polls an async condition for up to `timeout` (effects of tasks the test cannot drive).
func eventuallyAsync(timeout: Duration = .seconds(5), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return try await condition()
}
