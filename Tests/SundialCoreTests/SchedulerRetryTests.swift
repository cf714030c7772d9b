import SundialCore
import SundialTesting
import Testing

@Suite("Scheduler retries", .offPool)
struct SchedulerRetryTests {
    @Test("backoff delays: fixed, linear, exponential, capped, never overflowing")
    func delays() {
        let fixed = RetryPolicy(attempts: 5, backoff: .fixed, delayMs: 1000)
        let linear = RetryPolicy(attempts: 5, backoff: .linear, delayMs: 1000)
        let expo = RetryPolicy(attempts: 9, backoff: .exponential, delayMs: 1000, maxDelayMs: 60_000)
        #expect((1...4).map { fixed.delayMs(afterAttempt: $0, unit: 0.5) } == [1000, 1000, 1000, 1000])
        #expect((1...4).map { linear.delayMs(afterAttempt: $0, unit: 0.5) } == [1000, 2000, 3000, 4000])
        #expect((1...8).map { expo.delayMs(afterAttempt: $0, unit: 0.5) } == [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000])
        let huge = RetryPolicy(attempts: 1000, backoff: .exponential, delayMs: 1000)
        #expect(huge.delayMs(afterAttempt: 999, unit: 0.5) == DurationParser.maximumMilliseconds)
        // Jitter 0.2 spreads a 10 s delay over [8 s, 12 s].
        let j = RetryPolicy(attempts: 3, backoff: .fixed, delayMs: 10_000, jitter: 0.2)
        #expect(j.delayMs(afterAttempt: 1, unit: 0) == 8000)
        #expect(j.delayMs(afterAttempt: 1, unit: 0.5) == 10_000)
        #expect(j.delayMs(afterAttempt: 1, unit: 0.999_999) == 12_000)
    }

    @Test("which outcomes are retried: on, exit_codes, launch_failed as failure, attempts bound")
    func retryConditions() {
        let all = RetryPolicy(attempts: 3)
        #expect(all.shouldRetry(afterAttempt: 1, outcome: .failure(exitCode: 2)))
        #expect(all.shouldRetry(afterAttempt: 2, outcome: .timeout))
        #expect(!all.shouldRetry(afterAttempt: 3, outcome: .timeout))
        #expect(!all.shouldRetry(afterAttempt: 1, outcome: .success(exitCode: 0)))
        #expect(all.shouldRetry(afterAttempt: 1, outcome: .launchFailed(reason: "ENOENT")))
        let onTimeout = RetryPolicy(attempts: 3, on: [.timeout])
        #expect(!onTimeout.shouldRetry(afterAttempt: 1, outcome: .failure(exitCode: 1)))
        #expect(!onTimeout.shouldRetry(afterAttempt: 1, outcome: .signal(9)))
        #expect(!onTimeout.shouldRetry(afterAttempt: 1, outcome: .launchFailed(reason: "ENOENT")))
        #expect(onTimeout.shouldRetry(afterAttempt: 1, outcome: .timeout))
        let codes = RetryPolicy(attempts: 3, exitCodes: [75])
        #expect(codes.shouldRetry(afterAttempt: 1, outcome: .failure(exitCode: 75)))
        #expect(!codes.shouldRetry(afterAttempt: 1, outcome: .failure(exitCode: 1)))
        #expect(RetryPolicy(attempts: 1).shouldRetry(afterAttempt: 1, outcome: .failure(exitCode: 1)) == false)
    }

    @Test("a failing job retries with exponential backoff at the exact delays, then gives up")
    func exponentialThenGiveUp() {
        let spec = job("flaky", .cron("@daily")) {
            $0.retry = RetryPolicy(attempts: 4, backoff: .exponential, delayMs: 10_000, maxDelayMs: 30_000)
        }
        let events = simulate([spec], to: at(day + hour), script: ["flaky": [fail(7, ms: 1000)]])
        let retries = events.named("run.retry_scheduled")
        #expect(retries.map { $0.int("delay_ms") } == [10_000, 20_000, 30_000])
        #expect(retries.map { $0.int("attempt") } == [2, 3, 4])
        let starts = events.named("run.started")
        #expect(starts.map { $0.int("attempt") } == [1, 2, 3, 4])
        #expect(starts.map(\.trigger) == ["schedule", "retry", "retry", "retry"])
        #expect(Set(starts.map(\.runID)).count == 1)
        #expect(starts.allSatisfy { $0.scheduledFor == at(day).description })
        // Attempt k+1 starts delay_k after attempt k ended (each attempt runs 1 s).
        #expect(starts.map(\.ts) == [at(day), at(day + 11_000), at(day + 32_000), at(day + 63_000)])
        #expect(events.named("run.finished").map { $0.int("exit_code") } == [7, 7, 7, 7])
        #expect(events.named("run.retry_scheduled").count == 3)
    }

    @Test("the run's final outcome is persisted once, after the last attempt")
    func finalOutcomePersisted() {
        let spec = job("flaky", .cron("@daily")) { $0.retry = RetryPolicy(attempts: 2, backoff: .fixed, delayMs: 5000) }
        let actions = simulateActions([spec], to: at(day + hour), script: ["flaky": [fail(), fail(2)]])
        let finals = actions.compactMap { if case let .persist(.runFinished(_, outcome, _)) = $1 { outcome } else { nil } }
        #expect(finals == [.failure(exitCode: 2)])
    }

    @Test("retries never block other jobs, and a flood of retries is bounded by attempts")
    func retriesDoNotBlock() {
        let jobs = [
            job("broken", .every(intervalMs: minute, offsetMs: nil)) {
                $0.retry = RetryPolicy(attempts: 3, backoff: .fixed, delayMs: 30 * minute)
                $0.concurrency = .allow
            },
            job("beat", .every(intervalMs: minute, offsetMs: nil)),
        ]
        let events = simulate(jobs, to: at(2 * hour), script: ["broken": [SimulatedAttempt(.launchFailed(reason: "ENOENT"))]])
        #expect(events.named("run.started", job: "beat").count == 120)
        let broken = events.named("run.started", job: "broken")
        // Each of the 120 runs gets its first attempt; attempts 2 and 3 follow 30 and 60 min later.
        #expect(broken.filter { $0.int("attempt") == 1 }.count == 100 + 20)
        #expect(broken.filter { $0.int("attempt") == 4 }.isEmpty)
        #expect(events.named("run.finished", job: "broken").allSatisfy { $0.outcome == "launch_failed" })
    }

    @Test("a terminated (replaced) run is not retried")
    func replacedNotRetried() {
        let spec = job("long", .cron("@hourly")) {
            $0.concurrency = .replace
            $0.retry = RetryPolicy(attempts: 3, backoff: .fixed, delayMs: 1000)
        }
        let events = simulate([spec], to: at(3 * hour + 1), script: ["long": [succeed(ms: 2 * hour)]])
        #expect(events.named("run.retry_scheduled").isEmpty)
        #expect(events.named("run.finished").map(\.outcome) == ["signal", "signal"])
    }
}
