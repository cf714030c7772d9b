import OrderedCollections
import SundialCore
import SundialTesting
import Testing

@Suite("Notification decisions", .offPool)
struct NotificationPolicyTests {
    static let hook = NotifyTarget.webhook(WebhookSpec(url: "http://127.0.0.1:9/h"))

    func spec(_ on: Set<NotifyEvent>, attempts: Int = 1) -> JobSpec {
        job("backup") {
            $0.retry = RetryPolicy(attempts: attempts, backoff: .fixed, delayMs: 5000)
            $0.notify = [NotifySpec(on: on, target: .command(["/bin/notify"]))]
        }
    }

    /// Drives the real scheduler by hand on virtual time: one manual run whose attempts end
    /// with `outcomes` in turn; returns the records of each step that ended an attempt.
    func steps(_ spec: JobSpec, _ outcomes: [RunOutcome], scheduler existing: Scheduler? = nil) -> [[LogRecord]] {
        var s = existing ?? makeScheduler([spec])
        _ = s.handle(.start(restored: RestoredState(), reboot: false), at: t0)
        var now = t0.unixMillis
        var launch = s.handle(.trigger(spec.id), at: Instant(unixMillis: now)).launches.first
        var result: [[LogRecord]] = []
        for outcome in outcomes {
            guard let order = launch else { break }
            _ = s.handle(.attemptLaunched(runID: order.runID, attempt: order.attempt, pid: 42), at: Instant(unixMillis: now))
            now += 1500
            let ended = s.handle(
                .attemptFinished(runID: order.runID, attempt: order.attempt, outcome: outcome, durationMs: 1500),
                at: Instant(unixMillis: now))
            result.append(ended.records)
            launch = nil
            if let wake = ended.wake, ended.records.contains(where: { if case .runRetryScheduled = $0 { true } else { false } }) {
                now = wake.unixMillis
                launch = s.handle(.tick, at: wake).launches.first
            }
        }
        return result
    }

    func decide(_ policy: inout NotificationPolicy, _ spec: JobSpec, _ steps: [[LogRecord]]) -> [[NotifyEvent]] {
        steps.map { events in RunFact.facts(fromStep: events).flatMap { policy.decide($0, job: spec, box: "box1").map(\.event) } }
    }

    @Test("failure only once the retries are exhausted; each failed attempt before is a retry")
    func failureAfterRetries() {
        let spec = spec([.failure, .retry], attempts: 3)
        var p = NotificationPolicy()
        let events = decide(&p, spec, steps(spec, [.failure(exitCode: 2), .signal(9), .failure(exitCode: 3)]))
        #expect(events == [[.retry], [.retry], [.failure]])
        let onlyFailure = self.spec([.failure], attempts: 3)
        var q = NotificationPolicy()
        #expect(
            decide(&q, onlyFailure, steps(onlyFailure, [.failure(exitCode: 2), .failure(exitCode: 2), .failure(exitCode: 3)]))
                == [[], [], [.failure]])
    }

    @Test("a retry that succeeds is a success and no failure")
    func retryThenSuccess() {
        let spec = spec([.failure, .success, .recovered], attempts: 2)
        var p = NotificationPolicy()
        #expect(decide(&p, spec, steps(spec, [.failure(exitCode: 1), .success(exitCode: 0)])) == [[], [.success]])
        #expect(p.failing.isEmpty)
    }

    @Test("recovered: the first success after a final failure, once")
    func recovered() {
        let spec = spec([.recovered])
        var p = NotificationPolicy()
        #expect(decide(&p, spec, steps(spec, [.success(exitCode: 0)])) == [[]])
        #expect(decide(&p, spec, steps(spec, [.failure(exitCode: 1)])) == [[]])
        #expect(p.failing == ["backup"])
        #expect(decide(&p, spec, steps(spec, [.success(exitCode: 0)])) == [[.recovered]])
        #expect(decide(&p, spec, steps(spec, [.success(exitCode: 0)])) == [[]])
        // Interrupted (the agent stopped) is neither: the failing state survives it.
        _ = decide(&p, spec, steps(spec, [.timeout]))
        #expect(decide(&p, spec, steps(spec, [.interrupted])) == [[]])
        #expect(decide(&p, spec, steps(spec, [.success(exitCode: 0)])) == [[.recovered]])
    }

    @Test("a failure recorded before a restart makes the first success recovered")
    func recoveredAcrossRestart() {
        let spec = spec([.recovered])
        var p = NotificationPolicy(lastOutcomes: ["backup": .launchFailed(reason: "ENOENT"), "other": .success(exitCode: 0)])
        #expect(p.failing == ["backup"])
        #expect(decide(&p, spec, steps(spec, [.success(exitCode: 0)])) == [[.recovered]])
    }

    @Test("timeout on every attempt stopped by its timeout; one request per entry, the most specific")
    func timeoutAndPrecedence() {
        var spec = spec([.timeout], attempts: 2)
        spec.notify.append(NotifySpec(on: [.failure, .timeout], target: Self.hook))
        var p = NotificationPolicy()
        let requests = steps(spec, [.timeout, .timeout]).map { RunFact.facts(fromStep: $0).flatMap { p.decide($0, job: spec, box: "b") } }
        #expect(requests.map { $0.map(\.event) } == [[.timeout, .timeout], [.timeout, .failure]])
        #expect(requests[1].map(\.entry) == [0, 1])
        #expect(requests[1][1].target == Self.hook)
    }

    @Test("missed fires: one request for the summary, with its count and first instant")
    func missed() throws {
        let spec = spec([.missed])
        let skipped = LogRecord.runSkipped(.init(job: "backup", scheduledFor: at(0), reason: .missed, count: 3, at: at(hour)))
        var p = NotificationPolicy()
        let requests = RunFact.facts(fromStep: [skipped]).flatMap { p.decide($0, job: spec, box: "b") }
        let r = try #require(requests.first)
        #expect(requests.count == 1 && r.event == .missed)
        #expect(r.facts.missedCount == 3 && r.facts.scheduledFor == at(0))
        let overlap = LogRecord.runSkipped(.init(job: "backup", scheduledFor: at(0), reason: .overlap, count: nil, at: at(hour)))
        #expect(RunFact.facts(fromStep: [overlap]).isEmpty)
    }

    @Test("the facts: JSON and SUNDIAL_* variables agree, absent facts left out")
    func facts() throws {
        let spec = spec([.failure])
        var p = NotificationPolicy()
        let step = try #require(steps(spec, [.failure(exitCode: 3)]).first)
        let r = try #require(RunFact.facts(fromStep: step).flatMap { p.decide($0, job: spec, box: "db1") }.first)
        let env = Dictionary(uniqueKeysWithValues: r.facts.environment.map { ($0.name, $0.value) })
        #expect(env["SUNDIAL_EVENT"] == "failure" && env["SUNDIAL_JOB"] == "backup" && env["SUNDIAL_OUTCOME"] == "failure")
        #expect(env["SUNDIAL_EXIT_CODE"] == "3" && env["SUNDIAL_ATTEMPT"] == "1" && env["SUNDIAL_BOX"] == "db1")
        #expect(env["SUNDIAL_DURATION_MS"] == "1500" && env["SUNDIAL_FINISHED_AT"] == at(1500).description)
        #expect(env["SUNDIAL_STARTED_AT"] == t0.description && env["SUNDIAL_SIGNAL"] == nil)
        #expect(env["SUNDIAL_RUN_ID"] == r.facts.runID?.rawValue && r.facts.runID != nil)
        let json = r.facts.json
        #expect(json["exit_code"] == .int(3) && json["job"] == "backup" && json["box"] == "db1" && json["signal"] == nil)
        #expect(r.envFile == nil && r.entry == 0 && r.target == .command(["/bin/notify"]))
    }

    @Test("a job without notify entries, or gone, asks for nothing but still tracks failures")
    func noEntries() {
        let plain = job("backup")
        var p = NotificationPolicy()
        #expect(decide(&p, plain, steps(plain, [.failure(exitCode: 1)])) == [[]])
        #expect(p.failing == ["backup"])
        let fact = RunFact(kind: .attemptEnded(willRetry: false), job: "backup", outcome: .success(exitCode: 0), at: t0)
        #expect(p.decide(fact, job: nil, box: "b").isEmpty)
        #expect(p.failing.isEmpty)
        p = NotificationPolicy(lastOutcomes: ["a": .timeout, "b": .signal(9)])
        p.retain(["b"])
        #expect(p.failing == ["b"])
    }
}
