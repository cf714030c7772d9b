import SundialCore
import SundialRuntime
import SundialTesting
import Testing

/// A run starts only once the marks that allow it are recorded (design §2: never twice). With
/// the state disk full, the agent used to log `state.error` and launch anyway: after a restart
/// that found no mark, every instant fired meanwhile ran a second time (a hostile probe of the
/// release binary: a 1 MiB tmpfs, `catchup: all`, `kill -9`, room made, restart).
@Suite("Launches that cannot be recorded", .offPool)
struct UnrecordedLaunchTests {
    static let zones = SystemTimeZones()
    static let t0 = try! RFC3339.parse("2026-06-01T00:00:30Z").instant

    @Test func aFireWhoseMarkCannotBeRecordedDoesNotRunAndIsNotRunAgainLater() async throws {
        let yaml = "version: 1\njobs:\n  tick: { schedule: \"* * * * *\", catchup: all, command: [x] }\n"
        let store = MemoryStateStore()
        let h = try AgentHarness(yaml: yaml, start: Self.t0, zones: Self.zones, store: store)
        try await h.start()
        store.failWrites(with: "database or disk is full")
        await h.advance(by: .seconds(60))  // 00:01:00 fires
        await h.settle()
        #expect(h.launcher.launches.isEmpty, "a run was started without its mark")
        let finished = try #require(h.events("run.finished").first)
        #expect(finished["outcome"] == "launch_failed")
        #expect(finished["reason"]?.stringValue?.contains("could not be recorded") == true)
        #expect(finished["reason"]?.stringValue?.contains("database or disk is full") == true)
        #expect(!h.events("state.error").isEmpty)

        // Room again: the next fire runs, and a restart does not run the refused instant (it
        // was never run: catch-up may run it once, never twice).
        store.failWrites(with: nil)
        await h.advance(by: .seconds(60))  // 00:02:00 fires
        await h.settle()
        #expect(h.launcher.launches.map(\.scheduledFor) == [Self.t0 + .seconds(90)])
        _ = await h.shutdown()
        let again = try AgentHarness(yaml: yaml, start: Self.t0 + .seconds(100), zones: Self.zones, store: store)
        try await again.start()
        await again.advance(by: .seconds(5))
        let ran = h.launcher.launches.map(\.scheduledFor) + again.launcher.launches.map(\.scheduledFor)
        #expect(Set(ran).count == ran.count, "an instant ran twice: \(ran)")
    }

    /// A retry's attempt is committed before it starts; when that cannot be recorded, the retry
    /// does not start either (and the retries stay bounded by `attempts`).
    @Test func aRetryThatCannotBeRecordedDoesNotStart() async throws {
        let yaml =
            "version: 1\njobs:\n  flaky: { schedule: \"* * * * *\", retry: { attempts: 3, delay: 10s }, command: [x] }\n"
        let store = MemoryStateStore()
        let h = try AgentHarness(
            yaml: yaml, start: Self.t0, script: ["flaky": [.init(.failure(exitCode: 1), durationMs: 1000)]], zones: Self.zones,
            store: store)
        try await h.start()
        await h.advance(by: .seconds(31))  // 00:01:00 fires, fails at 00:01:01
        #expect(h.launcher.launches.count == 1)
        store.failWrites(with: "disk I/O error")
        await h.advance(by: .seconds(25))  // both retries are due within this
        await h.settle()
        #expect(h.launcher.launches.count == 1, "a retry started without its attempt recorded")
    }

    /// `@reboot` jobs run once per boot because the boot is recorded before they start; a boot
    /// that cannot be recorded runs none. The record stays queued (as SQLite keeps a failed
    /// commit's changes) and is committed once the disk has room: a later start in the same
    /// boot does not run them either. At most once per boot; a new boot runs them.
    @Test func aBootThatCannotBeRecordedRunsNoRebootJob() async throws {
        let yaml = "version: 1\njobs:\n  boot: { schedule: \"@reboot\", command: [x] }\n"
        let store = MemoryStateStore()
        store.failWrites(with: "database or disk is full")
        let h = try AgentHarness(yaml: yaml, start: Self.t0, zones: Self.zones, store: store, bootID: "boot-a")
        try await h.start()
        await h.advance(by: .seconds(10))
        #expect(h.launcher.launches.isEmpty)
        _ = await h.shutdown()
        store.failWrites(with: nil)
        try store.flush()
        #expect(try store.restore().bootID == "boot-a")
        let again = try AgentHarness(yaml: yaml, start: Self.t0 + .seconds(60), zones: Self.zones, store: store, bootID: "boot-a")
        try await again.start()
        await again.advance(by: .seconds(10))
        #expect(again.launcher.launches.isEmpty, "ran twice in one boot? \(again.launcher.launches)")
        let next = try AgentHarness(yaml: yaml, start: Self.t0 + .seconds(120), zones: Self.zones, store: store, bootID: "boot-b")
        try await next.start()
        await next.advance(by: .seconds(10))
        #expect(next.launcher.launches.map(\.job) == ["boot"])
    }

    /// A retry's own step has nothing that must be durable at once: an earlier batch's failure,
    /// reported by `apply`, must not refuse it when the flush that follows succeeds.
    @Test func aRetryIsNotRefusedForAnEarlierFailureOnceWritesWork() async throws {
        let yaml =
            "version: 1\njobs:\n  flaky: { schedule: \"* * * * *\", retry: { attempts: 2, delay: 10s }, command: [x] }\n"
        let store = MemoryStateStore()
        let h = try AgentHarness(
            yaml: yaml, start: Self.t0, script: ["flaky": [.init(.failure(exitCode: 1), durationMs: 1000)]], zones: Self.zones,
            store: store)
        try await h.start()
        await h.advance(by: .seconds(31))  // 00:01:00 fires, fails at 00:01:01
        store.reportOnNextQueuedApply("an earlier batch failed: disk I/O error")
        await h.advance(by: .seconds(15))  // the retry is due
        await h.settle()
        #expect(h.launcher.launches.map(\.attempt) == [1, 2])
    }
}
