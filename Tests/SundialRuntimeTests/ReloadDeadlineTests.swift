import OrderedCollections
import SundialCore
import SundialRuntime
import SundialTesting
import Testing

/// A load that never comes back (a loader stuck on a hung mount) must not wedge reloads: once
/// past the deadline, the next request abandons it and loads again (issue 13: before, the
/// in-flight flag stayed set and every later SIGHUP was silently merged into it).
@Suite("Reloads past their deadline", .offPool)
struct ReloadDeadlineTests {
    static let zones = SystemTimeZones()
    static let one = "version: 1\njobs:\n  a: { every: 1h, command: [x] }\n"
    static let two = "version: 1\njobs:\n  a: { every: 1h, command: [x] }\n  b: { every: 1h, command: [x] }\n"

    func waitFor(_ h: AgentHarness, _ what: @escaping @Sendable ([Event]) -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !what(h.events) {
            guard ContinuousClock.now < deadline else { throw CancellationError() }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    @Test func aStuckLoadIsAbandonedAndTheNextOneProceeds() async throws {
        let h = try AgentHarness(yaml: Self.one, start: try RFC3339.parse("2026-06-01T00:00:00Z").instant, zones: Self.zones)
        try await h.start()
        h.loads.holdNext()
        await h.agent.deliver(.reload(reason: "SIGHUP"))
        // The first load is the one held (under load its thread may start late; the second
        // load must not take the hold in its place).
        let held = ContinuousClock.now + .seconds(10)
        while !h.loads.isHolding, ContinuousClock.now < held { try await Task.sleep(for: .milliseconds(2)) }
        try #require(h.loads.isHolding)
        // Within the deadline, another request waits for the stuck one (nothing abandoned).
        await h.advance(by: .seconds(60))
        await h.agent.deliver(.reload(reason: "SIGHUP"))
        #expect(h.events("config.reload_abandoned").isEmpty)

        await h.advance(by: .seconds(31))
        h.setConfiguration(yaml: Self.two, zones: Self.zones)
        let waiter = Task { await h.agent.reloadNow(reason: "control") }
        try await waitFor(h) { $0.contains { $0.name == "config.loaded" && $0["added"] == ["b"] } }
        let abandoned = try #require(h.events("config.reload_abandoned").first)
        #expect(abandoned["running_ms"] == .int(91_000))
        guard case let .loaded(_, added, _, _) = await waiter.value else {
            Issue.record("not loaded")
            return
        }
        #expect(added == ["b"])

        // The stuck load's answer, when it finally comes, is dropped: no second config event.
        let configEvents = h.events.filter { $0.name.hasPrefix("config.") }.count
        h.loads.release()
        let deadline = ContinuousClock.now + .seconds(10)
        while h.loads.finishedLoads < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(h.loads.finishedLoads == 2)
        await h.settle()
        #expect(h.events.filter { $0.name.hasPrefix("config.") }.count == configEvents)
        #expect(await h.agent.jobSet.jobs.count == 2)

        // And reloads keep working afterwards.
        h.setConfiguration(yaml: Self.one, zones: Self.zones)
        await h.agent.deliver(.reload(reason: "SIGHUP"))
        try await waitFor(h) { $0.contains { $0.name == "config.loaded" && $0["removed"] == ["b"] } }
    }
}
