import CSundialShim
import Foundation
import SundialCore
import SundialTesting
import Testing

@testable import SundialRuntime

/// Fires prepared ahead of their instant (``Agent/Settings/fireLeadMs``, issue 16): the agent
/// wakes a little early, decides and commits the fire as of its instant, and the runner holds
/// the spawn until the instant, so that only the clone and the exec are left after it.
@Suite("Fires prepared ahead of their instant", .offPool)
struct FireLeadTests {
    static let yaml = """
        version: 1
        jobs:
          tick: { schedule: "*/10 * * * * *", timezone: UTC, command: [x] }
          other: { every: 1h, command: [x] }

        """

    static let start = Instant(unixMillis: 1_780_272_003_000)  // 2026-06-01T00:00:03Z
    static let due = Instant(unixMillis: 1_780_272_010_000)  // the next */10 s instant

    @Test func theAgentWakesByTheLeadAndDecidesTheFireAsOfItsInstant() async throws {
        let h = try AgentHarness(yaml: Self.yaml, start: Self.start, zones: SystemTimeZones(), fireLeadMs: 2)
        try await h.start()
        #expect(h.alarm.armedAt == Self.due - .milliseconds(2))
        await h.advance(to: Self.due - .milliseconds(2))
        let launches = h.launcher.launches
        try #require(launches.count == 1, "\(launches)")
        #expect(launches[0].job == "tick")
        #expect(launches[0].scheduledFor == Self.due)
        #expect(launches[0].notBefore == Self.due)
        #expect(launches[0].at == Self.due - .milliseconds(2))
        // The next one is armed by the lead as well.
        #expect(h.alarm.armedAt == Self.due + .seconds(10) - .milliseconds(2))
    }

    @Test func aWakeEarlierThanTheLeadDecidesNothing() async throws {
        let h = try AgentHarness(yaml: Self.yaml, start: Self.start, zones: SystemTimeZones(), fireLeadMs: 2)
        try await h.start()
        h.clock.advance(by: (Self.due - .milliseconds(5)) - h.clock.wallNow())
        await h.agent.deliver(.wake)
        await h.settle()
        #expect(h.launcher.launches.isEmpty)
        #expect(h.alarm.armedAt == Self.due - .milliseconds(2))
    }

    @Test func withoutALeadTheFireIsDecidedAtItsInstantAndNotHeld() async throws {
        let h = try AgentHarness(yaml: Self.yaml, start: Self.start, zones: SystemTimeZones())
        try await h.start()
        #expect(h.alarm.armedAt == Self.due)
        await h.advance(to: Self.due)
        let launches = h.launcher.launches
        try #require(launches.count == 1, "\(launches)")
        #expect(launches[0].notBefore == nil)
        #expect(launches[0].at == Self.due)
    }

    /// The scheduler was told the fire's instant; an input handled before the wall clock gets
    /// there (here a manual trigger) must not take its time back.
    @Test func inputsAfterAnEarlyDecisionDoNotGoBackInTime() async throws {
        let h = try AgentHarness(yaml: Self.yaml, start: Self.start, zones: SystemTimeZones(), fireLeadMs: 2)
        try await h.start()
        await h.advance(to: Self.due - .milliseconds(2))
        h.clock.advance(by: .milliseconds(1))
        let result = await h.agent.trigger("other")
        guard case .started = result else {
            Issue.record("trigger: \(result)")
            return
        }
        await h.settle()
        let manual = try #require(h.launcher.launches.first { $0.job == "other" })
        #expect(manual.scheduledFor == Self.due)
        // Decided as of the instant, so it does not start before it either.
        #expect(manual.notBefore == Self.due)
    }

    /// A fire decided ahead that replaces a running attempt (`concurrency: replace`) does not
    /// stop it before the instant: the agent waits out the rest of the lead, then terminates.
    @Test func aReplacementDecidedAheadDoesNotStopTheRunningAttemptEarly() async throws {
        let h = try await Self.startedReplacingAgent()
        await h.advance(to: Self.due)
        let run = try #require(h.launcher.launches.first).runID
        let next = Self.due + .seconds(10)
        #expect(h.alarm.armedAt == next - .milliseconds(2))
        await h.advance(to: next - .milliseconds(2))
        #expect(h.launcher.terminatedAt(run) == next)
    }

    /// A manual trigger of a `concurrency: replace` job handled while an early decision is
    /// ahead of the wall clock stops the running attempt no sooner than that instant either.
    @Test func aStopFromAnotherInputInsideTheLeadWaitsForTheInstant() async throws {
        let h = try await Self.startedReplacingAgent()
        // The early wake decides the fire; 1 ms later, still before its instant, a manual
        // trigger replaces the fire's run.
        await h.advance(to: Self.due - .milliseconds(2))
        let fired = try #require(h.launcher.launches.first)
        #expect(fired.trigger == .schedule)
        h.clock.advance(by: .milliseconds(1))
        #expect(await h.agent.trigger("slow") == .replacing)
        #expect(h.launcher.terminatedAt(fired.runID) == Self.due)
    }

    /// An agent with a lead of 2 ms and one `concurrency: replace` job every 10 s whose attempts
    /// run for a minute, started.
    static func startedReplacingAgent() async throws -> AgentHarness {
        let yaml = """
            version: 1
            jobs:
              slow: { schedule: "*/10 * * * * *", timezone: UTC, command: [x], concurrency: replace }

            """
        let h = try AgentHarness(
            yaml: yaml, start: start, script: ["slow": [.init(.success(exitCode: 0), durationMs: 60_000)]], zones: SystemTimeZones(),
            fireLeadMs: 2)
        try await h.start()
        return h
    }

    /// Decisions ahead are measured from the wall clock, so they never chain: a due instant
    /// within the lead of an earlier decision, but not of the wall clock, waits for its wake.
    @Test func anEarlyDecisionDoesNotPullTheNextInstantAhead() async throws {
        let yaml = """
            version: 1
            jobs:
              first: { schedule: "10 * * * * *", timezone: UTC, command: [x] }
              second: { schedule: "11 * * * * *", timezone: UTC, command: [x] }

            """
        // A lead of 1.5 s: `second` (1 s after `first`) is within the lead of `first`'s
        // instant, but not of the wall clock when `first` is decided (2 s before `second`).
        let h = try AgentHarness(yaml: yaml, start: Self.start, zones: SystemTimeZones(), fireLeadMs: 1500)
        try await h.start()
        h.clock.advance(by: (Self.due - .milliseconds(1000)) - h.clock.wallNow())
        await h.agent.deliver(.wake)
        await h.settle()
        #expect(h.launcher.launches.map(\.job) == ["first"])
        await h.agent.deliver(.wake)
        await h.settle()
        #expect(h.launcher.launches.map(\.job) == ["first"])
    }

    /// A clock step puts the wall clock back in charge, even behind an early decision.
    @Test func aClockStepBackwardsEndsTheEarlyDecisionsTimeline() async throws {
        let h = try AgentHarness(yaml: Self.yaml, start: Self.start, zones: SystemTimeZones(), fireLeadMs: 2)
        try await h.start()
        await h.advance(to: Self.due - .milliseconds(2))
        await h.stepWallClock(by: .seconds(-60))
        let result = await h.agent.trigger("other")
        guard case .started = result else {
            Issue.record("trigger: \(result)")
            return
        }
        await h.settle()
        let manual = try #require(h.launcher.launches.first { $0.job == "other" })
        #expect(manual.scheduledFor < Self.due - .seconds(50))
    }

    // MARK: - The runner's hold

    /// The process does not start before ``LaunchSpec/notBefore``: its own first reading of the
    /// wall clock is at or after it.
    @Test func theRunnerHoldsTheSpawnUntilTheInstant() async throws {
        let runner = try TestRunner.shared()
        let lines = Lines()
        let instant = Instant(unixMillis: Self.wallMillis() + 15)
        var spec = LaunchSpec(job: "held", runID: nextRunID(), executable: "/bin/date", arguments: ["date", "+%s%N"])
        spec.notBefore = instant
        let held = spec
        let completion = try await withDeadline(15) {
            let handle = await runner.start(held, onOutput: lines.handler)
            return await handle.completion()
        }
        #expect(completion.outcome.isSuccess)
        let ns = try #require(lines.stdout.first.flatMap { Int64($0) }, "\(lines.stdout)")
        #expect(ns >= instant.unixMillis * 1_000_000, "started \(instant.unixMillis * 1_000_000 - ns) ns early")
    }

    /// An instant further away than ``LaunchSpec/maximumHoldMs`` (the wall clock was stepped
    /// since the decision) is not waited for: the loop is never held longer than that.
    @Test func anInstantBeyondTheMaximumHoldIsNotWaitedFor() async throws {
        let runner = try TestRunner.shared()
        let lines = Lines()
        let instant = Instant(unixMillis: Self.wallMillis() + 60_000)
        var spec = LaunchSpec(job: "held", runID: nextRunID(), executable: "/bin/date", arguments: ["date", "+%s%N"])
        spec.notBefore = instant
        let held = spec
        let completion = try await withDeadline(15) {
            let handle = await runner.start(held, onOutput: lines.handler)
            return await handle.completion()
        }
        #expect(completion.outcome.isSuccess)
        let ns = try #require(lines.stdout.first.flatMap { Int64($0) }, "\(lines.stdout)")
        #expect(ns < instant.unixMillis * 1_000_000 - 30_000_000_000)
    }

    static func wallMillis() -> Int64 {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        return Int64(t.tv_sec) * 1000 + Int64(t.tv_nsec) / 1_000_000
    }
}
