import Dispatch
import SundialCore
import SundialRuntime
import SundialTesting
import Synchronization
import Testing

/// The agent's fleet wiring: scheduler actions go to a ``FleetCoordinator`` off the actor (the
/// fleet worker) and the answers come back as scheduler events. Several agents on virtual time
/// share one in-memory ``FleetLedger``.
@Suite("Agent fleet wiring", .offPool)
struct AgentFleetTests {
    static let zones = SystemTimeZones()
    static let start = try! RFC3339.parse("2026-06-01T00:00:30Z").instant

    /// Polls (bounded) until `condition` holds: fleet answers travel through a worker thread.
    func eventually(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<2000 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return condition()
    }

    func resolved(_ h: AgentHarness, _ instant: String) -> Bool {
        (h.events("run.started") + h.events("run.skipped")).contains {
            $0["job"]?.stringValue == "report" && $0["scheduled_for"]?.stringValue == instant
        }
    }

    @Test func eachInstantRunsOnExactlyOneBox() async throws {
        let yaml = """
            version: 1
            jobs:
              report: { schedule: "* * * * *", timezone: UTC, lock: fleet, command: [x] }
              mine: { schedule: "* * * * *", timezone: UTC, command: [x] }
            """
        let ledger = FleetLedger(now: Self.start)
        let boxes = try (0..<3).map { try AgentHarness(yaml: yaml, start: Self.start, zones: Self.zones, fleet: ledger, box: "box-\($0)") }
        for h in boxes { try await h.start() }
        for m in 1...5 {
            let t = Instant(unixMillis: Self.start.unixMillis - 30_000 + Int64(m) * 60_000)
            ledger.setNow(t)
            for h in boxes { await h.advance(to: t) }
            let instant = t.description
            #expect(await eventually { boxes.allSatisfy { resolved($0, instant) } }, "\(instant)")
            for h in boxes { await h.settle() }
            // The run ends a second later; its claim is finished through the worker too (else
            // the next instant would be refused `fleet_busy`: `concurrency: forbid` fleet-wide).
            for h in boxes { await h.advance(by: .seconds(1)) }
            #expect(await eventually { ledger.allClaims.values.allSatisfy { $0.state == .finished } })
        }
        let runs = boxes.flatMap { $0.events("run.started").filter { $0["job"]?.stringValue == "report" } }
        #expect(runs.count == 5)
        #expect(Set(runs.compactMap { $0["scheduled_for"]?.stringValue }).count == 5)
        #expect(runs.allSatisfy { if case .int = $0["fleet_token"] { true } else { false } })
        let skipped = boxes.flatMap { $0.events("run.skipped") }
        #expect(
            skipped.count == 10 && skipped.allSatisfy { $0["reason"]?.stringValue == "fleet_claimed" },
            "\(skipped.map { ($0["reason"]?.stringValue ?? "", $0["box"]?.stringValue ?? "", $0["scheduled_for"]?.stringValue ?? "") })")
        // The local job runs everywhere.
        #expect(boxes.allSatisfy { h in h.events("run.started").filter { $0["job"]?.stringValue == "mine" }.count == 5 })
        for h in boxes { _ = await h.shutdown() }
    }

    @Test func withoutAFleetFleetJobsAreSkippedWithAWarning() async throws {
        let h = try AgentHarness(
            yaml: """
                version: 1
                jobs:
                  report: { schedule: "* * * * *", timezone: UTC, lock: fleet, command: [x] }
                  anyway: { schedule: "* * * * *", timezone: UTC, lock: fleet, fleet_unavailable: run-locally, command: [x] }
                """, start: Self.start, zones: Self.zones)
        try await h.start()
        #expect(h.events("fleet.not_configured").count == 1)
        await h.advance(by: .seconds(60))
        #expect(h.events("run.skipped").map { $0["reason"]?.stringValue } == ["fleet_unavailable"])
        #expect(h.events("run.started").map { $0["job"]?.stringValue } == ["anyway"])
        #expect(h.events("fleet.unavailable").count == 2)
        // No fleet: nothing fleet-related is timed (the next wake-up is the next minute's fire).
        let next = await h.agent.nextWake
        #expect(next == Instant(unixMillis: Self.start.unixMillis + 90_000))
        _ = await h.shutdown()
    }

    /// A run the shutdown stops still has its claim finished before the agent exits (else its
    /// lease would expire and `on_lost` could run the instant again).
    @Test func shutdownFinishesTheClaimsOfStoppedRuns() async throws {
        let ledger = FleetLedger(now: Self.start)
        let h = try AgentHarness(
            yaml: """
                version: 1
                jobs:
                  long: { schedule: "* * * * *", timezone: UTC, lock: fleet, command: [x] }
                """, start: Self.start, script: ["long": [.init(.success(exitCode: 0), durationMs: 600_000)]],
            zones: Self.zones, fleet: ledger, box: "b")
        try await h.start()
        let t = Instant(unixMillis: Self.start.unixMillis + 30_000)
        ledger.setNow(t)
        await h.advance(to: t)
        #expect(await eventually { !h.events("run.started").isEmpty })
        #expect(ledger.allClaims.values.map(\.state) == [.running])
        _ = await h.shutdown()
        #expect(ledger.allClaims.values.map(\.state) == [.finished])
    }

    /// A fleet database that does not take the stop's last calls holds the stop for at most
    /// `fleetDrainMs`, and the agent's actor (the loop's thread, in `sundial run`) stays free
    /// meanwhile: the wait is not on its thread.
    @Test func aDatabaseThatDoesNotAnswerHoldsTheStopForTheDrainLimitOnly() async throws {
        let ledger = FleetLedger(now: Self.start)
        let stuck = StuckFinishes(ledger)
        defer { stuck.release() }
        let h = try AgentHarness(
            yaml: """
                version: 1
                jobs:
                  long: { schedule: "* * * * *", timezone: UTC, lock: fleet, command: [x] }
                """, start: Self.start, script: ["long": [.init(.success(exitCode: 0), durationMs: 600_000)]],
            zones: Self.zones, fleet: stuck, box: "b", fleetDrainMs: 300)
        try await h.start()
        let t = Instant(unixMillis: Self.start.unixMillis + 30_000)
        ledger.setNow(t)
        await h.advance(to: t)
        #expect(await eventually { !h.events("run.started").isEmpty })
        let stopping = Task { await h.shutdown() }
        #expect(await eventually { stuck.finishCalls > 0 })
        let asked = ContinuousClock.now
        _ = await h.agent.nextWake
        #expect(ContinuousClock.now - asked < .seconds(2), "the actor waited for the fleet's database")
        let code = try await withDeadline(10) { await stopping.value }
        #expect(code == 0)
        #expect(h.events("fleet.finish_abandoned").count == 1)
        #expect(h.events("agent.stopped").count == 1)
    }
}

/// A coordinator whose `finish` blocks until ``release()`` (for at most 20 s): a fleet database
/// that stopped answering.
final class StuckFinishes: FleetCoordinator {
    let ledger: FleetLedger
    private let calls = Mutex(0)
    private let gate = DispatchSemaphore(value: 0)
    init(_ ledger: FleetLedger) { self.ledger = ledger }
    var finishCalls: Int { calls.withLock { $0 } }
    func release() { gate.signal() }

    func claim(_ key: FleetClaimKey, box: String, leaseMs: Int64, forbidOverlap: Bool) -> FleetClaimOutcome {
        ledger.claim(key, box: box, leaseMs: leaseMs, forbidOverlap: forbidOverlap)
    }
    func renew(_ lease: FleetLease, leaseMs: Int64) -> FleetRenewOutcome { ledger.renew(lease, leaseMs: leaseMs) }
    func finish(_ lease: FleetLease, outcome: String) -> Bool {
        calls.withLock { $0 += 1 }
        _ = gate.wait(timeout: .now() + 20)
        return ledger.finish(lease, outcome: outcome)
    }
    func expiredLeases(jobs: [JobID], limit: Int) -> [FleetLease] { ledger.expiredLeases(jobs: jobs, limit: limit) }
    func resolveLost(_ lease: FleetLease, action: FleetLostAction, box: String, leaseMs: Int64) -> FleetClaimOutcome {
        ledger.resolveLost(lease, action: action, box: box, leaseMs: leaseMs)
    }
}
