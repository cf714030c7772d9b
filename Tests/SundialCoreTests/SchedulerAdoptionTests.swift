import SundialCore
import SundialTesting
import Testing

/// Runs whose process outlived a crashed agent (``RestoredState/alive``): adopted or killed per
/// `on_agent_restart`, and counted by `concurrency` across the restart. Virtual time only.
@Suite("Scheduler: runs adopted after an agent restart", .offPool)
struct SchedulerAdoptionTests {
    let runID = RunID(rawValue: "01ADOPTEDRUN0000000000000A")
    let identity = ProcessIdentity(pid: 4242, startTicks: 123_456, processGroup: 4242, bootID: "boot-a")

    /// A job firing every 10 minutes (first at 10), with a run of it in flight from before the crash.
    func restart(_ configure: (inout JobSpec) -> Void = { _ in }, alive: Bool = true) -> (Scheduler, [SchedulerAction]) {
        let spec = job("long", .every(intervalMs: 10 * minute, offsetMs: 0), configure)
        var s = makeScheduler([spec])
        let record = RunRecord(
            id: runID, job: "long", trigger: .schedule, scheduledFor: at(-10 * minute),
            startedAt: at(-10 * minute), attempt: 1, process: identity)
        // The previous agent consumed the instant at 0 too: the next fire is at 10 minutes.
        let restored = RestoredState(
            lastFired: ["long": t0], inFlight: [record], lastSeen: at(-1000),
            alive: alive ? [runID: identity] : [:])
        let actions = s.handle(.start(restored: restored, reboot: true), at: t0)
        return (s, actions)
    }

    func watched(_ actions: [SchedulerAction]) -> [AdoptedRun] {
        actions.compactMap { if case let .watch(r) = $0 { r } else { nil } }
    }

    @Test("a live run is adopted: watched, active, no run.finished, and logged run.adopted")
    func adoptIsWatched() throws {
        let (s, actions) = restart {
            $0.timeoutMs = 60_000
            $0.killGraceMs = 2000
        }
        let run = try #require(watched(actions).first)
        #expect(run.runID == runID && run.identity == identity && run.timeoutMs == 60_000 && run.killGraceMs == 2000)
        #expect(actions.terminations.isEmpty)
        #expect(actions.events.named("run.finished").isEmpty)
        let adopted = try #require(actions.events.named("run.adopted").first)
        #expect(adopted.int("pid") == 4242 && adopted["on_agent_restart"]?.stringValue == "adopt")
        #expect(s.activeRuns(of: "long") == [runID])
    }

    @Test("a run whose process is gone is recorded interrupted, as before")
    func deadIsInterrupted() {
        let (s, actions) = restart(alive: false)
        #expect(watched(actions).isEmpty)
        #expect(actions.events.named("run.finished").map(\.outcome) == ["interrupted"])
        #expect(s.activeRuns(of: "long").isEmpty)
    }

    @Test("forbid: a fire while the adopted run lives is skipped; its end is recorded unknown, adopted")
    func forbidHoldsAcrossTheRestart() throws {
        var (s, _) = restart()
        let fire = s.handle(.tick, at: at(10 * minute))
        #expect(fire.launches.isEmpty)
        #expect(fire.events.named("run.skipped").map(\.reason) == ["overlap"])
        #expect(s.handle(.trigger("long"), at: at(11 * minute)).triggerResults == [.skipped(.overlap)])
        let end = s.handle(.attemptFinished(runID: runID, attempt: 1, outcome: .unknown, durationMs: 12 * minute), at: at(12 * minute))
        let finished = try #require(end.events.named("run.finished").first)
        #expect(finished.outcome == "unknown" && finished["adopted"] == .bool(true))
        #expect(end.changes.contains(.runFinished(runID: runID, outcome: .unknown, at: at(12 * minute))))
        // Not retried (nothing says it failed), and the next fire runs.
        #expect(end.launches.isEmpty && end.events.named("run.retry_scheduled").isEmpty)
        #expect(s.handle(.tick, at: at(20 * minute)).launches.count == 1)
    }

    @Test("an unknown outcome is not retried, even with attempts left")
    func unknownIsNotRetried() {
        var (s, _) = restart { $0.retry = RetryPolicy(attempts: 3, delayMs: 1000) }
        let end = s.handle(.attemptFinished(runID: runID, attempt: 1, outcome: .unknown, durationMs: 5), at: at(1000))
        #expect(end.launches.isEmpty && end.events.named("run.retry_scheduled").isEmpty)
        #expect(s.activeRuns(of: "long").isEmpty)
    }

    @Test("queue: the fire waits for the adopted run and starts when it ends")
    func queueWaits() {
        var (s, _) = restart { $0.concurrency = .queue }
        let fire = s.handle(.tick, at: at(10 * minute))
        #expect(fire.launches.isEmpty && fire.events.named("run.skipped").isEmpty)
        let end = s.handle(.attemptFinished(runID: runID, attempt: 1, outcome: .unknown, durationMs: 0), at: at(11 * minute))
        #expect(end.launches.map(\.scheduledFor) == [at(10 * minute)])
    }

    @Test("replace: the adopted run is stopped (kill_grace), ends interrupted, then the new run starts")
    func replaceStopsIt() throws {
        var (s, _) = restart {
            $0.concurrency = .replace
            $0.killGraceMs = 1500
        }
        let fire = s.handle(.tick, at: at(10 * minute))
        #expect(fire.contains(.terminate(runID: runID, graceMs: 1500, reason: .replaced)))
        #expect(fire.launches.isEmpty)
        // The watcher cannot know how it ended; Sundial stopped it, so: interrupted.
        let end = s.handle(.attemptFinished(runID: runID, attempt: 1, outcome: .unknown, durationMs: 0), at: at(10 * minute + 900))
        #expect(end.events.named("run.finished").map(\.outcome) == ["interrupted"])
        #expect(end.launches.map(\.scheduledFor) == [at(10 * minute)])
    }

    @Test("allow: a new run starts beside the adopted one")
    func allowRunsAlongside() {
        var (s, _) = restart { $0.concurrency = .allow }
        let fire = s.handle(.tick, at: at(10 * minute))
        #expect(fire.launches.count == 1 && fire.terminations.isEmpty)
        #expect(s.activeRuns(of: "long").count == 2)
    }

    @Test("on_agent_restart: kill stops it at once (grace 0), records interrupted, retries per policy")
    func killPolicy() throws {
        var (s, actions) = restart {
            $0.onAgentRestart = .kill
            $0.retry = RetryPolicy(attempts: 2, backoff: .fixed, delayMs: 1000)
        }
        #expect(watched(actions).count == 1)
        #expect(actions.contains(.terminate(runID: runID, graceMs: 0, reason: .agentRestart)))
        #expect(actions.events.named("run.adopted").first?["on_agent_restart"]?.stringValue == "kill")
        // Until its end is seen, it still counts: no second copy under forbid.
        #expect(s.handle(.trigger("long"), at: at(10)).triggerResults == [.skipped(.overlap)])
        let end = s.handle(.attemptFinished(runID: runID, attempt: 1, outcome: .unknown, durationMs: 0), at: at(50))
        #expect(end.events.named("run.finished").map(\.outcome) == ["interrupted"])
        #expect(end.events.named("run.retry_scheduled").count == 1)
        let retry = s.handle(.tick, at: at(1050))
        #expect(retry.launches.map(\.attempt) == [2])
    }

    @Test("a job no longer configured: adopted anyway, finished, and its slot freed; re-adding it counts the run")
    func removedJob() {
        var s = makeScheduler([job("other")])
        let record = RunRecord(id: runID, job: "gone", trigger: .manual, scheduledFor: nil, startedAt: at(-5000), process: identity)
        let start = s.handle(.start(restored: RestoredState(inFlight: [record], alive: [runID: identity]), reboot: true), at: t0)
        #expect(watched(start).map(\.job) == ["gone"])
        #expect(start.terminations.isEmpty)
        #expect(s.plannedFire(of: "gone") == nil)
        // A reload brings the job back while the adopted run lives: forbid holds.
        _ = s.handle(.configReplaced(jobSet([job("other"), job("gone")])), at: at(1000))
        #expect(s.handle(.trigger("gone"), at: at(2000)).triggerResults == [.skipped(.overlap)])
        _ = s.handle(.attemptFinished(runID: runID, attempt: 1, outcome: .unknown, durationMs: 0), at: at(3000))
        #expect(s.activeRuns(of: "gone").isEmpty)
        #expect(s.handle(.trigger("gone"), at: at(4000)).launches.count == 1)
    }

    @Test("an unknown outcome satisfies only needs on completion")
    func needsOnUnknown() {
        let up = job("up")
        let onSuccess = job("s", needs: [Need(job: "up", on: .success)])
        let onFailure = job("f", needs: [Need(job: "up", on: .failure)])
        let onCompletion = job("c", needs: [Need(job: "up", on: .completion)])
        var s = makeScheduler([up, onSuccess, onFailure, onCompletion])
        let record = RunRecord(id: runID, job: "up", trigger: .manual, scheduledFor: nil, startedAt: at(-5000), process: identity)
        _ = s.handle(.start(restored: RestoredState(inFlight: [record], alive: [runID: identity]), reboot: true), at: t0)
        let end = s.handle(.attemptFinished(runID: runID, attempt: 1, outcome: .unknown, durationMs: 0), at: at(1000))
        #expect(end.launches.map(\.job.id) == ["c"])
        #expect(Set(end.events.named("run.skipped").compactMap(\.job)) == ["s", "f"])
    }

    @Test("shutdown stops adopted runs like any other")
    func shutdownStopsThem() {
        var (s, _) = restart()
        let stop = s.handle(.shutdown(graceMs: 5000), at: at(1000))
        #expect(stop.contains(.terminate(runID: runID, graceMs: 5000, reason: .shutdown)))
        #expect(!stop.shutdownCompleted)
        let end = s.handle(.attemptFinished(runID: runID, attempt: 1, outcome: .unknown, durationMs: 0), at: at(2000))
        #expect(end.events.named("run.finished").map(\.outcome) == ["interrupted"])
        #expect(end.shutdownCompleted)
    }
}
