import Foundation
import SundialConfig
import SundialCore
import SundialTesting
import Testing

@testable import SundialRuntime

/// The agent's side of the operator's loop (issue 17) on fakes: pause and resume, following a
/// queued manual run to its end, did-you-mean.
@Suite("Agent: pause, resume, following runs", .offPool)
struct AgentOperatorTests {
    func messages(_ stream: ControlStream) throws -> [ControlStreamMessage] {
        try stream.drain().bytes.split(separator: UInt8(ascii: "\n")).map { try ControlStreamMessage(line: Array($0)) }
    }

    @Test func pauseAndResumeChangeTheSchedulersSetAndStatus() async throws {
        let rig = AgentRig([spec("hourly", .cron("0 * * * *")) { $0.timezone = "UTC" }, spec("beat", .every(intervalMs: 30_000, offsetMs: nil))])
        await rig.agent.start(restored: RestoredState(paused: ["beat"]))
        #expect(await rig.agent.pausedJobs == ["beat"])
        let one = try PauseReport(json: await rig.agent.handle(.pause(job: "hourly")).body)
        #expect(one.changed == ["hourly"] && one.unchanged.isEmpty && one.paused)
        #expect(await rig.agent.pausedJobs == ["beat", "hourly"])
        let status = try StatusReport(json: await rig.agent.handle(.status).body)
        #expect(status.jobs.map(\.paused) == [true, true])
        #expect(status.jobs.map(\.zone) == ["UTC", nil])
        #expect(status.now == t0)
        #expect(rig.lines("job.paused").count == 1, "a job paused at start is not logged again")

        let all = try PauseReport(json: await rig.agent.handle(.resume(job: nil)).body)
        #expect(!all.paused && all.changed == ["beat", "hourly"])
        #expect(await rig.agent.pausedJobs.isEmpty)
        #expect(rig.lines("job.resumed").count == 2)

        let typo = await rig.agent.handle(.pause(job: "hourli"))
        #expect(!typo.ok && typo.error == "unknown job hourli; did you mean `hourly`?")
        let far = await rig.agent.handle(.resume(job: "zzz"))
        #expect(!far.ok && far.error == "unknown job zzz")
    }

    @Test func aQueuedTriggerIsFollowedFromItsOwnStartToItsEnd() async throws {
        let rig = AgentRig([spec("line") { $0.concurrency = .queue }])
        await rig.agent.start(restored: RestoredState())
        guard case let .started(first) = await rig.agent.trigger("line") else {
            Issue.record("no first run")
            return
        }
        let stream = ControlStream(wake: {})
        let reply = await rig.agent.handle(.triggerAndWait(job: "line", output: false), stream: stream)
        #expect(reply.startsStream)
        #expect(try TriggerReport(json: reply.body).result == .queued)
        // The active run ends: it is not the one followed.
        rig.launcher.finish(first)
        let deadline = ContinuousClock.now + .seconds(5)
        while rig.launcher.launched.count < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        let second = try #require(rig.launcher.launched.last?.runID)
        #expect(second != first)
        rig.launcher.finish(second, .failure(exitCode: 2))
        while stream.isOpen, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        let got = try messages(stream)
        #expect(got.first == .started(runID: second, attempt: 1))
        guard case let .ended(end)? = got.last else {
            Issue.record("no end: \(got)")
            return
        }
        #expect(end.runID == second && end.outcome == .failure(exitCode: 2) && end.exitStatus == 2)

        let unknown = await rig.agent.handle(.triggerAndWait(job: "lin", output: true), stream: ControlStream(wake: {}))
        #expect(unknown.error == "unknown job lin; did you mean `line`?")
        let skipped = await rig.agent.handle(.follow(job: "nope"), stream: ControlStream(wake: {}))
        #expect(!skipped.ok)
    }
}

/// A removed job's secret values are dropped by the reload that finds it gone and not running
/// (they were kept for the agent's life, so renamed jobs grew the masker without bound).
@Suite("Agent: secrets of removed jobs", .offPool)
struct AgentRemovedSecretsTests {
    static let zones = SystemTimeZones()
    static let both = "version: 1\njobs:\n  a: { every: 1h, command: [x] }\n  b: { every: 1m, command: [y] }\n"
    static let none = "version: 1\njobs:\n  c: { every: 1h, command: [z] }\n"

    @Test func aRemovedJobsSecretsGoOnceItHasNoRun() async throws {
        let h = try AgentHarness(
            yaml: Self.both, start: try RFC3339.parse("2026-06-01T00:00:00Z").instant,
            script: ["b": [.init(.success(exitCode: 0), durationMs: 600_000)]], zones: Self.zones)
        try await h.start()
        let masker = await h.agent.log.masker
        masker.add(["secret-of-a"], for: "a")
        masker.add(["secret-of-b"], for: "b")
        await h.advance(by: .seconds(61))
        #expect(await h.agent.activeRuns.values.map(\.job) == ["b"])

        await h.reload(yaml: Self.none, zones: Self.zones)
        // `a` is gone; `b` is gone too but its run may still print its secret.
        #expect(masker.mask("secret-of-a secret-of-b") == "secret-of-a ***")

        await h.advance(by: .seconds(600))
        #expect(await h.agent.activeRuns.isEmpty)
        await h.reload(yaml: Self.none, zones: Self.zones)
        #expect(masker.mask("secret-of-a secret-of-b") == "secret-of-a secret-of-b")
        #expect(masker.count == 0)
    }
}
