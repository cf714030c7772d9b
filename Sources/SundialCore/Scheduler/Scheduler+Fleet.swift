import HeapModule
import OrderedCollections

/// `lock: fleet` (docs/fleet.md): each scheduled instant of a fleet-locked job runs on one box.
///
/// The scheduler stays pure: it asks for claims, renewals, scans and takeovers as actions, and
/// the driver (the agent's fleet worker, or the fleet simulation) answers with events. Flow:
/// - A scheduled or catch-up fire becomes a run in phase `claiming` (it counts for the job's
///   local `concurrency`, nothing is recorded or launched) and a ``SchedulerAction/claim(_:leaseMs:forbidOverlap:)``.
/// - `won` records and launches it with the fencing token; `heldBy`/`busy` skip it
///   (`fleet_claimed` naming the box / `fleet_busy`); `unavailable` follows `fleet_unavailable`.
/// - While it runs, its lease is renewed every third of the lease. A renewal answered `lost`,
///   or no renewal answered within the lease as this box measures it, stops the run (fencing).
/// - When it ends, ``SchedulerAction/finishClaim(_:outcome:)`` releases the claim.
/// - While fleet jobs are loaded (and a fleet is configured), expired leases of silent boxes are
///   looked for every ``SchedulerOptions/fleetScanIntervalMs`` and resolved per `on_lost`.
/// Without fleet jobs or without a fleet, nothing here is ever timed (no wake-ups).
extension Scheduler {
    /// Manual, `needs` and `@reboot` runs are this box's own (their instant is "now", which no
    /// other box shares); only instants of the schedule are claimed.
    func claimsFleet(_ spec: JobSpec, trigger: RunTrigger) -> Bool {
        spec.lock == .fleet && (trigger == .schedule || trigger == .catchup)
    }

    /// The fleet-locked jobs currently in force, for the lost-lease scan.
    public var fleetLockedJobs: [JobID] { fleetJobs }

    // MARK: - Claims

    mutating func beginClaim(_ id: RunID, now: Instant) {
        guard let run = runs[id] else { return }
        let key = FleetClaimKey(job: run.job, scheduledFor: run.scheduledFor)
        runs[id]!.fleet = FleetRun(key: key, sentAt: now)
        guard options.fleetConfigured else {
            claimUnavailable(id, reason: "no fleet configured (sundial run --fleet URL)", now: now)
            return
        }
        if let other = fleetClaims[key], other != id, runs[other] != nil {
            // This box already holds or claims the instant (a catch-up racing a takeover).
            dropClaiming(id, reason: .fleetClaimed, extra: ["box": .string("self")], now: now)
            return
        }
        fleetClaims[key] = id
        sendClaim(id, now: now)
    }

    mutating func sendClaim(_ id: RunID, now: Instant) {
        guard let run = runs[id], let key = run.fleet?.key else { return }
        runs[id]!.fleet!.inFlight = true
        runs[id]!.fleet!.sentAt = now
        out.append(.claim(key, leaseMs: run.spec.leaseMs, forbidOverlap: run.spec.concurrency == .forbid))
    }

    mutating func claimResolved(_ key: FleetClaimKey, _ outcome: FleetClaimOutcome, now: Instant) {
        noteReachability(unavailable: { if case .unavailable = outcome { true } else { false } }(), now: now)
        guard let id = fleetClaims[key], let run = runs[id], run.phase == .claiming, let fleet = run.fleet,
            fleet.inFlight
        else { return }  // stale (shutdown, reload, replace): a won lease left alone expires
        runs[id]!.fleet!.inFlight = false
        if case let .won(lease) = outcome, !slots[run.slot].occupied || slots[run.slot].removed || lifecycle != .running {
            // The job went away (reload) while its claim was out: give the instant back at once.
            out.append(.finishClaim(lease, outcome: "skipped"))
            dropClaiming(id, reason: .shutdown, now: now)
            return
        }
        switch outcome {
        case let .won(lease):
            runs[id]!.fleet!.lease = lease
            runs[id]!.fleet!.localEnd = localLeaseEnd(sentAt: fleet.sentAt, leaseMs: run.spec.leaseMs)
            armFleetTimer(id, now: now)
            commitStart(id, now: now)
        case let .heldBy(box, token, state):
            dropClaiming(
                id, reason: .fleetClaimed,
                extra: ["box": .string(box), "token": .int(token), "state": .string(state.rawValue)], now: now)
        case let .busy(box, scheduledFor):
            dropClaiming(
                id, reason: .fleetBusy,
                extra: ["box": .string(box), "running_scheduled_for": .string(scheduledFor.description)], now: now)
        case let .unavailable(reason):
            claimUnavailable(id, reason: reason, now: now)
        }
    }

    /// The database could not be asked: the job's `fleet_unavailable` decides, and it is logged
    /// (`fleet.unavailable`, with the decision) and so counted in metrics.
    mutating func claimUnavailable(_ id: RunID, reason: String, now: Instant) {
        guard let run = runs[id], let fleet = run.fleet else { return }
        var decision = run.spec.fleetUnavailable
        var gaveUp = false
        if decision == .wait {
            if !options.fleetConfigured {
                decision = .skip
            } else {
                let delay = min(options.fleetClaimRetryMaxMs, Int64(1000) << Int64(min(fleet.claims - 1, 20)))
                let at = Instant(unixMillis: now.unixMillis &+ delay)
                if at < claimDeadline(run) {
                    emit(Scheduler.fleetUnavailableEvent(run, reason: reason, decision: .wait, claims: fleet.claims, at: now))
                    runs[id]!.fleet!.claims += 1
                    seq &+= 1
                    runs[id]!.fleet!.timerSeq = seq
                    timers.insert(Timer(at: at, seq: seq, kind: .fleet(id)))
                    return
                }
                decision = .skip
                gaveUp = true
            }
        }
        emit(
            Scheduler.fleetUnavailableEvent(
                run, reason: reason, decision: decision, claims: fleet.claims,
                gaveUp: gaveUp, at: now))
        switch decision {
        case .skip, .wait:
            dropClaiming(id, reason: .fleetUnavailable, extra: [:], now: now)
        case .runLocally:
            if fleetClaims[fleet.key] == id { fleetClaims[fleet.key] = nil }
            commitStart(id, now: now)
        }
    }

    /// `fleet_unavailable: wait` claims an instant until it would no longer run on time: past
    /// the late tolerance, or once the job's next instant comes (which claims for itself).
    func claimDeadline(_ run: RunState) -> Instant {
        let late = Instant(unixMillis: run.scheduledFor.unixMillis &+ options.lateToleranceMs)
        guard let next = calculator.nextFire(of: run.spec, after: run.scheduledFor, anchor: anchor) else { return late }
        return min(late, next)
    }

    /// Ends a run that never started (lost its claim, or gave up): `run.skipped` and a ledger
    /// entry with `reason`, then whatever waited behind it.
    mutating func dropClaiming(_ id: RunID, reason: SkipReason, extra: [String: JSONValue] = [:], now: Instant) {
        guard let run = runs.removeValue(forKey: id) else { return }
        if run.fleet?.timerSeq != nil { staleTimers += 1 }
        if let key = run.fleet?.key, fleetClaims[key] == id { fleetClaims[key] = nil }
        var skipped = LogRecord.RunSkipped(job: run.job, scheduledFor: run.scheduledFor, reason: reason, count: nil, at: now)
        for (k, v) in extra.sorted(by: { $0.key < $1.key }) { skipped.detail[k] = v }
        emit(.runSkipped(skipped))
        persist(.planned(LedgerEntry(job: run.job, scheduledFor: run.scheduledFor, disposition: .skipped(reason), at: now)))
        let slot = run.slot
        guard slot < slots.count, slots[slot].occupied else { return }
        slots[slot].active.removeAll { $0 == id }
        if slots[slot].removed {
            if slots[slot].active.isEmpty { freeSlot(slot) }
        } else {
            drainPending(slot: slot, now: now)
        }
    }

    // MARK: - Leases

    /// This box's own end of a lease: from when the request that set it was *sent* (the database
    /// counted from a later moment), minus a tenth for clock-rate error and the driver's delay,
    /// minus the fencing grace, so that a fenced process is gone (SIGKILL) before the database
    /// may hand the instant to another box.
    func localLeaseEnd(sentAt: Instant, leaseMs: Int64) -> Instant {
        Instant(unixMillis: sentAt.unixMillis &+ leaseMs &- leaseMs / 10 &- Self.fenceGraceMs(leaseMs: leaseMs, killGraceMs: .max))
    }

    /// The SIGTERM-to-SIGKILL grace of a fenced run: its `kill_grace`, but at most a sixth of
    /// the lease (the lease's end, not the job's patience, bounds how long it may go on).
    static func fenceGraceMs(leaseMs: Int64, killGraceMs: Int64) -> Int64 {
        max(0, min(killGraceMs, leaseMs / 6))
    }

    /// Arms the run's next renewal: a third of the lease from now, or its local end if sooner.
    mutating func armFleetTimer(_ id: RunID, now: Instant) {
        guard let run = runs[id], let fleet = run.fleet, fleet.lease != nil else { return }
        if fleet.timerSeq != nil { staleTimers += 1 }
        var at = Instant(unixMillis: now.unixMillis &+ max(1000, run.spec.leaseMs / 3))
        if let end = fleet.localEnd, end < at { at = max(end, now) }
        seq &+= 1
        runs[id]!.fleet!.timerSeq = seq
        timers.insert(Timer(at: at, seq: seq, kind: .fleet(id)))
    }

    /// A fleet timer is due: a claim retry (`wait`), or a renewal of a running run's lease.
    mutating func fleetTimerDue(_ id: RunID, now: Instant) {
        guard let run = runs[id], let fleet = run.fleet else { return }
        if run.phase == .claiming {
            guard lifecycle == .running else { return }
            if now >= claimDeadline(run) {
                claimUnavailable(id, reason: "the database was unavailable until the instant was too old", now: now)
            } else {
                sendClaim(id, now: now)
            }
            return
        }
        guard let lease = fleet.lease else { return }
        if let end = fleet.localEnd, now >= end {
            fence(id, byBox: nil, token: nil, why: "not renewed within the lease", now: now)
            return
        }
        if !fleet.inFlight {
            runs[id]!.fleet!.inFlight = true
            runs[id]!.fleet!.sentAt = now
            out.append(.renewLease(lease, leaseMs: run.spec.leaseMs))
        }
        armFleetTimer(id, now: now)
    }

    mutating func leaseRenewed(_ key: FleetClaimKey, _ outcome: FleetRenewOutcome, now: Instant) {
        noteReachability(unavailable: { if case .unavailable = outcome { true } else { false } }(), now: now)
        guard let id = fleetClaims[key], let run = runs[id], let fleet = run.fleet, fleet.lease != nil, fleet.inFlight
        else { return }
        runs[id]!.fleet!.inFlight = false
        switch outcome {
        case let .renewed(lease):
            runs[id]!.fleet!.lease = lease
            runs[id]!.fleet!.localEnd = localLeaseEnd(sentAt: fleet.sentAt, leaseMs: run.spec.leaseMs)
        case let .lost(box, token):
            fence(id, byBox: box, token: token, why: "taken over or marked lost", now: now)
        case let .unavailable(reason):
            // The run goes on; the timer retries, and stops the run at the lease's local end.
            emit(
                .fleet(
                    .init(
                        .renewFailed, at: now, level: .warn,
                        [
                            "job": .string(run.job), "run_id": .string(id.rawValue), "scheduled_for": .string(run.scheduledFor.description),
                            "reason": .string(reason),
                        ])))
        }
    }

    /// The run's lease is gone: stop it, so that no two boxes go on running one instant. Its
    /// claim is not finished (it is no longer this box's).
    mutating func fence(_ id: RunID, byBox: String?, token: Int64?, why: String, now: Instant) {
        guard var run = runs[id], let fleet = run.fleet, let lease = fleet.lease else { return }
        if fleet.timerSeq != nil { staleTimers += 1 }
        run.fleet!.lease = nil
        run.fleet!.timerSeq = nil
        run.fleet!.inFlight = false
        if fleetClaims[fleet.key] == id { fleetClaims[fleet.key] = nil }
        emit(
            .fleet(
                .init(
                    .leaseLost, at: now, level: .warn,
                    [
                        "job": .string(run.job), "run_id": .string(id.rawValue), "scheduled_for": .string(run.scheduledFor.description),
                        "fleet_token": .int(lease.token), "by_box": byBox.map { .string($0) } ?? .null,
                        "by_token": token.map { .int($0) } ?? .null, "reason": .string(why),
                    ])))
        switch run.phase {
        case .launching, .running:
            runs[id] = run
            if !run.terminating {
                terminate(id, graceMs: Self.fenceGraceMs(leaseMs: run.spec.leaseMs, killGraceMs: run.spec.killGraceMs), reason: .fleetLost)
            }
        case .waitingRetry:
            run.timerSeq = nil
            staleTimers += 1
            runs[id] = run
            finishRun(id, outcome: run.lastOutcome, now: now)
        case .claiming:
            runs[id] = run
        }
    }

    /// The run is over: its claim is finished in the database (when it still holds one).
    mutating func releaseClaim(_ run: RunState, outcome: RunOutcome) {
        guard let fleet = run.fleet else { return }
        if fleet.timerSeq != nil { staleTimers += 1 }
        if fleetClaims[fleet.key] == run.id { fleetClaims[fleet.key] = nil }
        if let lease = fleet.lease { out.append(.finishClaim(lease, outcome: outcome.name)) }
    }

    // MARK: - Lost leases

    /// Recomputes the fleet-locked jobs after a job set is installed, and arms the scan.
    mutating func refreshFleetJobs(now: Instant) {
        var jobs: [JobID] = []
        for js in slots where js.occupied && !js.removed && js.spec.enabled && js.spec.lock == .fleet {
            jobs.append(js.spec.id)
        }
        fleetJobs = jobs.sorted()
        if fleetJobs.isEmpty, lostScanSeq != nil {
            lostScanSeq = nil
            staleTimers += 1
        }
        armLostScan(now: now)
    }

    mutating func armLostScan(now: Instant) {
        guard lifecycle == .running, options.fleetConfigured, !fleetJobs.isEmpty, lostScanSeq == nil else { return }
        let spread = 0.5 + random.nextUnit()
        let delay = max(1000, Int64(Double(options.fleetScanIntervalMs) * spread))
        seq &+= 1
        lostScanSeq = seq
        timers.insert(Timer(at: Instant(unixMillis: now.unixMillis &+ delay), seq: seq, kind: .lostScan))
    }

    mutating func lostScanDue(now: Instant) {
        if !lostScanInFlight, !fleetJobs.isEmpty {
            lostScanInFlight = true
            out.append(.scanLostLeases(jobs: fleetJobs, limit: max(1, options.fleetScanLimit)))
        }
        armLostScan(now: now)
    }

    /// Expired leases of silent boxes: each is acted on per its job's `on_lost`. `rerun` makes a
    /// run here in phase `claiming` (it counts for `concurrency`), launched if the takeover is won.
    mutating func lostLeasesFound(_ leases: [FleetLease], now: Instant) {
        lostScanInFlight = false
        guard lifecycle == .running, let reachable = fleetReachableSince else { return }
        for lease in leases.prefix(max(1, options.fleetScanLimit)) {
            guard let slot = slotOf[lease.key.job], case let js = slots[slot], js.occupied, !js.removed,
                js.spec.lock == .fleet, js.spec.enabled,
                now.unixMillis &- reachable.unixMillis >= js.spec.leaseMs
            else { continue }
            // This box holds it: its renewal is late, not lost (the fencing rules judge it).
            if fleetClaims[lease.key] != nil || resolvingLost.contains(lease.key) { continue }
            switch js.spec.onLost {
            case .skip:
                guard resolvingLost.count < 4 * max(1, options.fleetScanLimit) else { continue }
                resolvingLost.insert(lease.key)
                out.append(.resolveLost(lease, action: .skip, leaseMs: js.spec.leaseMs))
            case .rerun:
                // Local `concurrency` first: a job that may not run beside itself here leaves the
                // takeover to another box (or a later scan); so does a job paused here.
                if !js.active.isEmpty, js.spec.concurrency != .allow { continue }
                if !pausedJobs.isEmpty, pausedJobs.contains(js.spec.id) { continue }
                if js.active.count >= options.maxActiveRunsPerJob { continue }
                let id = newRunID(now: now)
                var run = RunState(
                    id: id, job: js.spec.id, slot: slot, spec: js.spec, trigger: .schedule,
                    scheduledFor: lease.key.scheduledFor, attempt: 1, phase: .claiming)
                var fleet = FleetRun(key: lease.key, sentAt: now)
                fleet.inFlight = true
                fleet.rerunOf = lease.token
                run.fleet = fleet
                runs[id] = run
                slots[slot].active.append(id)
                fleetClaims[lease.key] = id
                out.append(.resolveLost(lease, action: .rerun, leaseMs: js.spec.leaseMs))
            }
        }
    }

    mutating func lostResolved(_ lease: FleetLease, _ outcome: FleetClaimOutcome, now: Instant) {
        noteReachability(unavailable: { if case .unavailable = outcome { true } else { false } }(), now: now)
        if resolvingLost.remove(lease.key) != nil {
            if case let .heldBy(box, token, .lost) = outcome, box == lease.box, token == lease.token {
                emit(
                    .fleet(
                        .init(
                            .lost, at: now, level: .warn,
                            [
                                "job": .string(lease.key.job), "scheduled_for": .string(lease.key.scheduledFor.description),
                                "box": .string(lease.box), "fleet_token": .int(lease.token), "on_lost": .string("skip"),
                            ])))
            }
            return
        }
        guard let id = fleetClaims[lease.key], let run = runs[id], run.phase == .claiming,
            run.fleet?.rerunOf == lease.token, run.fleet?.inFlight == true
        else { return }
        runs[id]!.fleet!.inFlight = false
        guard case let .won(newLease) = outcome else {
            // Another box acted first, or the database went away: not this box's instant.
            runs[id] = nil
            fleetClaims[lease.key] = nil
            slots[run.slot].active.removeAll { $0 == id }
            if slots[run.slot].removed, slots[run.slot].active.isEmpty { freeSlot(run.slot) } else { drainPending(slot: run.slot, now: now) }
            return
        }
        emit(
            .fleet(
                .init(
                    .lost, at: now, level: .warn,
                    [
                        "job": .string(lease.key.job), "scheduled_for": .string(lease.key.scheduledFor.description),
                        "box": .string(lease.box), "fleet_token": .int(lease.token), "on_lost": .string("rerun"),
                        "new_token": .int(newLease.token),
                    ])))
        runs[id]!.fleet!.lease = newLease
        runs[id]!.fleet!.localEnd = localLeaseEnd(sentAt: run.fleet!.sentAt, leaseMs: run.spec.leaseMs)
        armFleetTimer(id, now: now)
        commitStart(id, now: now)
    }

    mutating func noteReachability(unavailable: Bool, now: Instant) {
        if unavailable {
            fleetReachableSince = nil
        } else if fleetReachableSince == nil {
            fleetReachableSince = now
        }
    }

    // MARK: - Events

    static func fleetUnavailableEvent(
        _ run: RunState, reason: String, decision: FleetUnavailablePolicy, claims: Int,
        gaveUp: Bool = false, at now: Instant
    ) -> LogRecord {
        var fields: OrderedDictionary<String, JSONValue> = [
            "job": .string(run.job), "scheduled_for": .string(run.scheduledFor.description),
            "reason": .string(reason), "decision": .string(decision.rawValue), "claims": .int(Int64(claims)),
        ]
        if gaveUp { fields["gave_up"] = .bool(true) }
        return .fleet(.init(.unavailable, at: now, level: .warn, fields))
    }
}
