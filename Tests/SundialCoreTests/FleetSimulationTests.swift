import SundialCore
import SundialTesting
import Testing

/// The fleet on virtual time, small enough for CI: 50 boxes for an hour, with box deaths,
/// database outages, clock skew of up to ±5 s and slow boxes. No instant lost, none doubled.
/// (The 1,000-box day is `sundial-bench fleet`; its figures are in docs/fleet.md.)
@Suite("Fleet simulation", .offPool)
struct FleetSimulationTests {
    static func jobs() -> JobSet {
        jobSet([
            job("every-second", .cron("grid:1000")) {
                $0.lock = .fleet
                $0.concurrency = .allow
                $0.onLost = .skip
            },
            job("every-minute", .cron("grid:60000")) {
                $0.lock = .fleet
                $0.concurrency = .allow
                $0.onLost = .rerun
            },
            job("ten-minutes-forbid", .cron("grid:600000")) {
                $0.lock = .fleet
                $0.concurrency = .forbid
                $0.onLost = .rerun
            },
        ])
    }

    @Test func fiftyBoxesForAnHourLoseAndDoubleNothing() {
        var config = FleetSimulation.Config(boxes: 50, start: t0, durationMs: hour, jobs: Self.jobs())
        config.runMs = ["every-second": 200, "every-minute": 20_000, "ten-minutes-forbid": 3 * minute]
        config.deaths = 2
        config.targetedDeaths = 6  // boxes killed mid-run: `on_lost` at work
        config.outages = [(atMs: 20 * minute + 500, lengthMs: 10_000), (atMs: 40 * minute + 7_000, lengthMs: 90_000)]
        let r = FleetSimulation.run(config, calculator: FakeCalculator())
        #expect(r.lost == 0, "\(r)")
        #expect(r.doubled == 0, "\(r)")
        #expect(r.instants > 3000)
        #expect(r.skippedByPolicy > 0 && r.skippedByPolicy < 200, "\(r)")  // the outages, nothing else
        #expect(r.diedRuns >= 5 && r.fencedRuns > 0, "\(r)")  // the faults did hit runs
        #expect(r.database.resolutions > 0, "\(r)")  // and lost leases were acted on
    }

    @Test func withoutFaultsEveryInstantRunsOnceWithOneClaimPerBox() {
        var config = FleetSimulation.Config(boxes: 20, start: t0, durationMs: 10 * minute, jobs: Self.jobs())
        config.slowBoxes = 0
        let r = FleetSimulation.run(config, calculator: FakeCalculator())
        #expect(r.lost == 0 && r.doubled == 0 && r.skippedByPolicy == 0, "\(r)")
        #expect(r.executions >= r.instants)
        // Each fire: one claim per box (20), one finish; plus scans.
        #expect(r.database.claims > 20 * 590 && r.database.claims < 20 * 620, "\(r)")
    }
}
