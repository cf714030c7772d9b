import SundialCore
import SundialTesting
import Testing

/// Fleet counters come from the scheduler's own lines, as every other metric does.
@Suite(.offPool) struct FleetMetricsTests {
    @Test func claimsDecisionsAndLostLeasesAreCounted() throws {
        var r = MetricsRegistry(options: .init(version: "t"))
        let none = try Exposition(r.render())
        #expect(none.types["sundial_fleet_claims_total"] == nil)  // no fleet: exposition unchanged
        var s = makeScheduler([job("f", .cron("grid:60000")) { $0.lock = .fleet }], options: SchedulerOptions(fleetConfigured: true))
        var events: [LogRecord] = []
        events += s.handle(.start(restored: RestoredState(), reboot: false), at: t0).records
        func key(_ m: Int64) -> FleetClaimKey { FleetClaimKey(job: "f", scheduledFor: at(m * minute)) }
        _ = s.handle(.tick, at: at(minute))
        let won = s.handle(
            .claimResolved(key(1), .won(FleetLease(key: key(1), box: "me", token: 3, expiresAt: at(2 * minute)))),
            at: at(minute))
        events += s.handle(.attemptLaunched(runID: won.launches[0].runID, attempt: 1, pid: 1), at: at(minute)).records
        events +=
            s.handle(
                .attemptFinished(runID: won.launches[0].runID, attempt: 1, outcome: .success(exitCode: 0), durationMs: 1),
                at: at(minute)
            ).records
        _ = s.handle(.tick, at: at(2 * minute))
        events += s.handle(.claimResolved(key(2), .heldBy(box: "b", token: 4, state: .running)), at: at(2 * minute)).records
        _ = s.handle(.tick, at: at(3 * minute))
        events += s.handle(.claimResolved(key(3), .unavailable(reason: "x")), at: at(3 * minute)).records
        for e in events { r.observe(e) }
        let x = try Exposition(r.render())
        #expect(x.value("sundial_fleet_claims_total", ["result": "won"]) == 1)
        #expect(x.value("sundial_fleet_claims_total", ["result": "claimed"]) == 1)
        #expect(x.value("sundial_fleet_claims_total", ["result": "unavailable"]) == 1)
        #expect(x.value("sundial_fleet_unavailable_total", ["decision": "skip"]) == 1)
        #expect(x.value("sundial_fleet_leases_lost_total") == 0)
    }
}
