import SundialCore
import SundialTesting
import Testing

/// `lock: fleet` in the pure scheduler: claims as actions, answers as events, on virtual time.
@Suite("Scheduler fleet", .offPool)
struct SchedulerFleetTests {
    static let fleetOn = SchedulerOptions(fleetConfigured: true)
    /// Lost-lease scans out of the way (a day apart), where a test counts wake-ups.
    static let quietScan: SchedulerOptions = {
        var o = SchedulerOptions(fleetConfigured: true)
        o.fleetScanIntervalMs = day
        return o
    }()

    func fleetJob(_ id: JobID = "report", period: Int64 = minute, _ configure: (inout JobSpec) -> Void = { _ in }) -> JobSpec {
        job(id, .cron("grid:\(period)")) {
            $0.lock = .fleet
            $0.leaseMs = 30_000
            configure(&$0)
        }
    }

    func started(_ jobs: [JobSpec], options: SchedulerOptions = fleetOn) -> Scheduler {
        var s = makeScheduler(jobs, options: options)
        _ = s.handle(.start(restored: RestoredState(), reboot: false), at: t0)
        return s
    }

    func lease(_ job: JobID = "report", at instant: Instant, token: Int64, box: String = "me", expires: Instant? = nil) -> FleetLease {
        FleetLease(
            key: FleetClaimKey(job: job, scheduledFor: instant), box: box, token: token,
            expiresAt: expires ?? Instant(unixMillis: instant.unixMillis + 30_000))
    }

    @Test("a fleet-locked fire claims its instant instead of launching; won launches it with the fencing token")
    func claimWon() {
        var s = started([fleetJob()])
        let fire = s.handle(.tick, at: at(minute))
        let key = FleetClaimKey(job: "report", scheduledFor: at(minute))
        #expect(fire.launches.isEmpty)
        #expect(fire.contains(.claim(key, leaseMs: 30_000, forbidOverlap: true)))
        #expect(fire.changes.isEmpty || !fire.changes.contains { if case .runStarted = $0 { true } else { false } })
        #expect(s.activeRuns(of: "report").count == 1)  // the claiming run counts for concurrency

        let won = s.handle(.claimResolved(key, .won(lease(at: at(minute), token: 41))), at: at(minute + 20))
        #expect(won.launches.count == 1)
        let record = won.changes.compactMap { if case let .runStarted(r) = $0 { r } else { nil } }
        #expect(record.map(\.fleetToken) == [41])
        let id = won.launches[0].runID
        let launched = s.handle(.attemptLaunched(runID: id, attempt: 1, pid: 9), at: at(minute + 30))
        #expect(launched.events.named("run.started").first?.int("fleet_token") == 41)

        let done = s.handle(
            .attemptFinished(runID: id, attempt: 1, outcome: .success(exitCode: 0), durationMs: 5),
            at: at(minute + 40))
        #expect(done.contains(.finishClaim(lease(at: at(minute), token: 41), outcome: "success")))
    }

    @Test("held by another box: skipped fleet_claimed naming the box, in the why-ledger; busy: fleet_busy")
    func heldAndBusy() {
        var s = started([fleetJob()])
        _ = s.handle(.tick, at: at(minute))
        let key = FleetClaimKey(job: "report", scheduledFor: at(minute))
        let held = s.handle(.claimResolved(key, .heldBy(box: "box-7", token: 3, state: .running)), at: at(minute + 10))
        #expect(held.launches.isEmpty)
        let skip = held.events.named("run.skipped")
        #expect(skip.map(\.reason) == ["fleet_claimed"])
        #expect(skip.first?["box"]?.stringValue == "box-7")
        #expect(
            held.changes.contains(
                .planned(
                    LedgerEntry(
                        job: "report", scheduledFor: at(minute),
                        disposition: .skipped(.fleetClaimed), at: at(minute + 10)))))
        #expect(s.activeRuns(of: "report").isEmpty)

        _ = s.handle(.tick, at: at(2 * minute))
        let key2 = FleetClaimKey(job: "report", scheduledFor: at(2 * minute))
        let busy = s.handle(.claimResolved(key2, .busy(box: "box-2", scheduledFor: at(minute))), at: at(2 * minute + 10))
        #expect(busy.events.named("run.skipped").map(\.reason) == ["fleet_busy"])
        #expect(
            busy.changes.contains(
                .planned(
                    LedgerEntry(
                        job: "report", scheduledFor: at(2 * minute),
                        disposition: .skipped(.fleetBusy), at: at(2 * minute + 10)))))
    }

    @Test("unavailable: skip (default) logs the decision and skips fleet_unavailable")
    func unavailableSkip() {
        var s = started([fleetJob()])
        _ = s.handle(.tick, at: at(minute))
        let key = FleetClaimKey(job: "report", scheduledFor: at(minute))
        let r = s.handle(.claimResolved(key, .unavailable(reason: "timeout")), at: at(minute + 5000))
        #expect(r.launches.isEmpty)
        let u = r.events.named("fleet.unavailable")
        #expect(u.first?["decision"]?.stringValue == "skip" && u.first?.reason == "timeout")
        #expect(r.events.named("run.skipped").map(\.reason) == ["fleet_unavailable"])
    }

    @Test("unavailable: run-locally launches without a token, logged")
    func unavailableRunLocally() {
        var s = started([fleetJob { $0.fleetUnavailable = .runLocally }])
        _ = s.handle(.tick, at: at(minute))
        let key = FleetClaimKey(job: "report", scheduledFor: at(minute))
        let r = s.handle(.claimResolved(key, .unavailable(reason: "refused")), at: at(minute + 5))
        #expect(r.events.named("fleet.unavailable").first?["decision"]?.stringValue == "run-locally")
        #expect(r.launches.count == 1)
        let l = s.handle(.attemptLaunched(runID: r.launches[0].runID, attempt: 1, pid: 1), at: at(minute + 6))
        #expect(l.events.named("run.started").first?["fleet_token"] == .null)
        let end = s.handle(
            .attemptFinished(runID: r.launches[0].runID, attempt: 1, outcome: .success(exitCode: 0), durationMs: 1),
            at: at(minute + 7))
        #expect(!end.contains { if case .finishClaim = $0 { true } else { false } })
    }

    @Test("unavailable: wait claims again with backoff, and launches once a claim is won")
    func unavailableWaitThenWon() {
        var s = started([fleetJob { $0.fleetUnavailable = .wait }])
        _ = s.handle(.tick, at: at(minute))
        let key = FleetClaimKey(job: "report", scheduledFor: at(minute))
        let first = s.handle(.claimResolved(key, .unavailable(reason: "down")), at: at(minute + 100))
        #expect(first.wake == at(minute + 1100))  // 1 s backoff
        #expect(first.events.named("run.skipped").isEmpty)
        let retry = s.handle(.tick, at: at(minute + 1100))
        #expect(retry.contains(.claim(key, leaseMs: 30_000, forbidOverlap: true)))
        let second = s.handle(.claimResolved(key, .unavailable(reason: "down")), at: at(minute + 1200))
        #expect(second.wake == at(minute + 3200))  // 2 s
        _ = s.handle(.tick, at: at(minute + 3200))
        let won = s.handle(.claimResolved(key, .won(lease(at: at(minute), token: 5))), at: at(minute + 3300))
        #expect(won.launches.count == 1)
    }

    @Test("unavailable: wait gives up (skip) when the next instant would come first")
    func unavailableWaitGivesUp() {
        var s = started([fleetJob(period: 5000) { $0.fleetUnavailable = .wait }])
        _ = s.handle(.tick, at: at(5000))
        let key = FleetClaimKey(job: "report", scheduledFor: at(5000))
        _ = s.handle(.claimResolved(key, .unavailable(reason: "down")), at: at(5100))  // retry at 6100
        _ = s.handle(.tick, at: at(6100))
        _ = s.handle(.claimResolved(key, .unavailable(reason: "down")), at: at(6200))  // retry at 8200
        _ = s.handle(.tick, at: at(8200))
        let last = s.handle(.claimResolved(key, .unavailable(reason: "down")), at: at(8300))  // 4 s: past 10000
        let u = last.events.named("fleet.unavailable")
        #expect(u.first?["decision"]?.stringValue == "skip" && u.first?["gave_up"] == .bool(true))
        #expect(last.events.named("run.skipped").map(\.reason) == ["fleet_unavailable"])
    }

    @Test("without a fleet configured: no claim, the policy at once (wait is skip), no fleet wake-ups")
    func noFleetConfigured() {
        var s = started(
            [
                fleetJob(), fleetJob("local-ok") { $0.fleetUnavailable = .runLocally },
                fleetJob("waiter") { $0.fleetUnavailable = .wait },
            ], options: SchedulerOptions())
        #expect(s.nextWake == at(minute))
        let r = s.handle(.tick, at: at(minute))
        #expect(!r.contains { if case .claim = $0 { true } else { false } })
        #expect(r.launches.map(\.job.id) == ["local-ok"])
        #expect(r.events.named("run.skipped").map(\.job) == ["report", "waiter"])
        #expect(r.wake == at(2 * minute))
    }

    @Test("no fleet jobs: a fleet-configured scheduler times nothing of its own")
    func noFleetJobsNoWakeups() {
        let s = started([job("local", .cron("@hourly"))])
        #expect(s.nextWake == at(hour))
        #expect(s.fleetLockedJobs.isEmpty)
    }

    @Test("a won lease is renewed every third of the lease; a renewal answered lost stops the run (fencing)")
    func renewAndLost() {
        var s = started([fleetJob { $0.killGraceMs = 2000 }], options: Self.quietScan)
        _ = s.handle(.tick, at: at(minute))
        let key = FleetClaimKey(job: "report", scheduledFor: at(minute))
        let l = lease(at: at(minute), token: 8)
        let won = s.handle(.claimResolved(key, .won(l)), at: at(minute))
        let id = won.launches[0].runID
        _ = s.handle(.attemptLaunched(runID: id, attempt: 1, pid: 3), at: at(minute))
        #expect(s.nextWake == at(minute + 10_000))
        let renew = s.handle(.tick, at: at(minute + 10_000))
        #expect(renew.contains(.renewLease(l, leaseMs: 30_000)))
        let l2 = lease(at: at(minute), token: 8, expires: at(minute + 40_000))
        _ = s.handle(.leaseRenewed(key, .renewed(l2)), at: at(minute + 10_050))
        let renew2 = s.handle(.tick, at: at(minute + 20_000))
        #expect(renew2.contains(.renewLease(l2, leaseMs: 30_000)))
        let lost = s.handle(.leaseRenewed(key, .lost(byBox: "box-9", token: 12)), at: at(minute + 20_100))
        #expect(lost.contains(.terminate(runID: id, graceMs: 2000, reason: .fleetLost)))  // kill_grace under lease/6
        #expect(lost.events.named("fleet.lease_lost").first?["by_box"]?.stringValue == "box-9")
        let end = s.handle(.attemptFinished(runID: id, attempt: 1, outcome: .signal(15), durationMs: 20_000), at: at(minute + 21_000))
        #expect(!end.contains { if case .finishClaim = $0 { true } else { false } })
    }

    @Test("renewals that never get through stop the run before the lease ends on the database")
    func selfFence() {
        var s = started([fleetJob()])
        _ = s.handle(.tick, at: at(minute))
        let key = FleetClaimKey(job: "report", scheduledFor: at(minute))
        let won = s.handle(.claimResolved(key, .won(lease(at: at(minute), token: 8))), at: at(minute))
        let id = won.launches[0].runID
        _ = s.handle(.attemptLaunched(runID: id, attempt: 1, pid: 3), at: at(minute))
        var terminated: Instant?
        var now = at(minute)
        for _ in 0..<10 where terminated == nil {
            guard let w = s.nextWake else { break }
            now = w
            let r = s.handle(.tick, at: now)
            if r.contains(.terminate(runID: id, graceMs: 5000, reason: .fleetLost)) { terminated = now }
            if r.contains(where: { if case .renewLease = $0 { true } else { false } }) {
                _ = s.handle(.leaseRenewed(key, .unavailable(reason: "down")), at: now)
            }
        }
        // The claim was sent at +0: the database's lease ends at +30 s; the box stops the run at
        // +22 s (a tenth of margin, and the fencing grace of 5 s so that SIGKILL comes by +27 s).
        #expect(terminated == at(minute + 22_000))
    }

    @Test("expired leases of silent boxes are rerun here (on_lost: rerun) with a new token, or marked lost (skip)")
    func lostLeases() {
        var s = started([fleetJob { $0.onLost = .rerun }, fleetJob("other") { $0.onLost = .skip }])
        // The scan comes within 0.5-1.5 × 15 s.
        var scanAt: Instant?
        var now = t0
        while scanAt == nil, let w = s.nextWake, w < at(minute) {
            now = w
            if s.handle(.tick, at: now).contains(where: { if case .scanLostLeases = $0 { true } else { false } }) { scanAt = now }
        }
        #expect(scanAt != nil)
        let dead = lease(at: at(-minute), token: 4, box: "dead-box")
        let deadOther = lease("other", at: at(-minute), token: 5, box: "dead-box")
        let found = s.handle(.lostLeasesFound([dead, deadOther]), at: at(40_000))
        #expect(found.contains(.resolveLost(dead, action: .rerun, leaseMs: 30_000)))
        #expect(found.contains(.resolveLost(deadOther, action: .skip, leaseMs: 30_000)))
        let newLease = lease(at: at(-minute), token: 9)
        let won = s.handle(.lostResolved(dead, .won(newLease)), at: at(40_100))
        #expect(won.launches.count == 1 && won.launches[0].scheduledFor == at(-minute))
        #expect(won.events.named("fleet.lost").first?.int("new_token") == 9)
        let l = s.handle(.attemptLaunched(runID: won.launches[0].runID, attempt: 1, pid: 5), at: at(40_200))
        #expect(l.events.named("run.started").first?.int("fleet_rerun_of") == 4)
        let marked = s.handle(.lostResolved(deadOther, .heldBy(box: "dead-box", token: 5, state: .lost)), at: at(40_300))
        #expect(marked.events.named("fleet.lost").first?["on_lost"]?.stringValue == "skip")
    }

    @Test("after an unavailable answer, lost leases wait a whole lease of reachability (holders renew first)")
    func lostLeasesWaitAfterOutage() {
        var s = started([fleetJob { $0.onLost = .rerun }])
        _ = s.handle(.tick, at: at(minute))
        let key = FleetClaimKey(job: "report", scheduledFor: at(minute))
        _ = s.handle(.claimResolved(key, .unavailable(reason: "down")), at: at(minute + 10))
        let dead = lease(at: at(0), token: 4, box: "dead-box")
        // The database is back (a claim got through at +2 min); 20 s later is too soon.
        _ = s.handle(.tick, at: at(2 * minute))
        _ = s.handle(
            .claimResolved(
                FleetClaimKey(job: "report", scheduledFor: at(2 * minute)),
                .heldBy(box: "b", token: 1, state: .running)), at: at(2 * minute))
        let soon = s.handle(.lostLeasesFound([dead]), at: at(2 * minute + 20_000))
        #expect(!soon.contains { if case .resolveLost = $0 { true } else { false } })
        let later = s.handle(.lostLeasesFound([dead]), at: at(2 * minute + 30_000))
        #expect(later.contains(.resolveLost(dead, action: .rerun, leaseMs: 30_000)))
    }

    @Test("manual runs of a fleet-locked job are this box's own: no claim")
    func manualIsLocal() {
        var s = started([fleetJob()])
        let r = s.handle(.trigger("report"), at: at(1000))
        #expect(r.launches.count == 1)
        #expect(!r.contains { if case .claim = $0 { true } else { false } })
    }

    @Test("shutdown: a claiming run is dropped, a running one keeps its lease renewed until it ends")
    func shutdownKeepsRenewing() {
        var s = started([fleetJob()])
        _ = s.handle(.tick, at: at(minute))
        let key = FleetClaimKey(job: "report", scheduledFor: at(minute))
        let won = s.handle(.claimResolved(key, .won(lease(at: at(minute), token: 2))), at: at(minute))
        let id = won.launches[0].runID
        _ = s.handle(.attemptLaunched(runID: id, attempt: 1, pid: 3), at: at(minute))
        let stop = s.handle(.shutdown(graceMs: 60_000), at: at(minute + 1000))
        #expect(stop.terminations == [id])
        #expect(stop.wake == at(minute + 11_000))
        let renew = s.handle(.tick, at: at(minute + 11_000))
        #expect(renew.contains { if case .renewLease = $0 { true } else { false } })
    }

    @Test("a job paused here leaves lost leases to other boxes")
    func pausedJobTakesNothingOver() {
        var s = started([fleetJob { $0.onLost = .rerun }])
        _ = s.handle(.pause("report"), at: at(1000))
        let dead = lease(at: at(-minute), token: 4, box: "dead-box")
        let found = s.handle(.lostLeasesFound([dead]), at: at(40_000))
        #expect(!found.contains { if case .resolveLost = $0 { true } else { false } })
        _ = s.handle(.resume("report"), at: at(41_000))
        let again = s.handle(.lostLeasesFound([dead]), at: at(42_000))
        #expect(again.contains(.resolveLost(dead, action: .rerun, leaseMs: 30_000)))
    }
}
