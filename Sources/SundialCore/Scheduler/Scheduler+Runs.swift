import HeapModule

extension Scheduler {
    // MARK: - Deciding a fire

    /// A fire of a job (scheduled, catch-up, `@reboot` or from its needs) passes the gates
    /// `enabled` and `needs`, then `concurrency`.
    mutating func decideFire(slot: Int, scheduledFor: Instant, trigger: RunTrigger, now: Instant) {
        guard slots[slot].occupied else { return }
        let spec = slots[slot].spec
        guard spec.enabled else {
            skip(job: spec.id, scheduledFor: scheduledFor, reason: .disabled, now: now)
            return
        }
        if !pausedJobs.isEmpty, pausedJobs.contains(spec.id) {
            skip(job: spec.id, scheduledFor: scheduledFor, reason: .paused, now: now)
            return
        }
        if trigger != .needs, !spec.needs.isEmpty, !slots[slot].allNeedsMet {
            skip(job: spec.id, scheduledFor: scheduledFor, reason: .needs, now: now)
            return
        }
        _ = admit(slot: slot, PendingRun(scheduledFor: scheduledFor, trigger: trigger), now: now)
    }

    /// Applies the job's `concurrency` to a fire that passed its gates.
    mutating func admit(slot: Int, _ fire: PendingRun, now: Instant) -> TriggerResult {
        guard slots[slot].occupied else { return .unknownJob }
        if slots[slot].active.isEmpty, slots[slot].pending.isEmpty {
            return .started(startRun(slot: slot, fire, now: now))
        }
        var js = slots[slot]
        switch js.spec.concurrency {
        case .forbid:
            skip(job: js.spec.id, scheduledFor: fire.scheduledFor, reason: .overlap, now: now)
            return .skipped(.overlap)
        case .allow:
            guard js.active.count < options.maxActiveRunsPerJob else {
                skip(job: js.spec.id, scheduledFor: fire.scheduledFor, reason: .overlap, now: now)
                return .skipped(.overlap)
            }
            return .started(startRun(slot: slot, fire, now: now))
        case .queue:
            guard !js.pending.contains(where: { !$0.isCatchup }) else {
                skip(job: js.spec.id, scheduledFor: fire.scheduledFor, reason: .overlap, now: now)
                return .skipped(.overlap)
            }
            js.pending.append(fire)
            slots[slot] = js
            drainPending(slot: slot, now: now)
            return .queued
        case .replace:
            let superseded = js.pending.filter { !$0.isCatchup }
            js.pending.removeAll { !$0.isCatchup }
            js.pending.append(fire)
            slots[slot] = js
            for p in superseded { skip(job: js.spec.id, scheduledFor: p.scheduledFor, reason: .overlap, now: now) }
            terminateActive(slot: slot, now: now)
            // Only runs waiting for a retry were active: nothing to wait for.
            if case let js = slots[slot], js.occupied, js.active.isEmpty, js.pending == [fire] {
                slots[slot].pending = []
                return .started(startRun(slot: slot, fire, now: now))
            }
            drainPending(slot: slot, now: now)
            return .replacing
        }
    }

    /// `catchup: all`: the missed fires (and the on-time one after them) run one after the
    /// other, oldest first; the backlog holds at most `maxCatchupRuns` catch-ups.
    mutating func enqueueBacklog(slot: Int, catchups: [Instant], onTime: Instant?, now: Instant) {
        guard case var js = slots[slot], js.occupied else { return }
        let job = js.spec.id
        var accepted: [PendingRun] = []
        for f in catchups {
            if !pausedJobs.isEmpty, pausedJobs.contains(job) {
                skip(job: job, scheduledFor: f, reason: .paused, now: now)
            } else if !js.spec.needs.isEmpty, !js.allNeedsMet {
                skip(job: job, scheduledFor: f, reason: .needs, now: now)
            } else {
                accepted.append(PendingRun(scheduledFor: f, trigger: .catchup))
            }
        }
        let room = max(0, options.maxCatchupRuns - js.pending.filter(\.isCatchup).count)
        if accepted.count > room {
            let dropped = accepted.count - room
            skip(job: job, scheduledFor: accepted[0].scheduledFor, reason: .missed, now: now, count: dropped)
            accepted.removeFirst(dropped)
        }
        // Catch-ups go before a queued or replacing fire, which is newer.
        let insertAt = js.pending.firstIndex { !$0.isCatchup } ?? js.pending.endIndex
        js.pending.insert(contentsOf: accepted, at: insertAt)
        slots[slot] = js
        if let f = onTime {
            if !pausedJobs.isEmpty, pausedJobs.contains(job) {
                skip(job: job, scheduledFor: f, reason: .paused, now: now)
            } else if !js.spec.needs.isEmpty, !js.allNeedsMet {
                skip(job: job, scheduledFor: f, reason: .needs, now: now)
            } else if !js.pending.contains(where: { !$0.isCatchup }) {
                slots[slot].pending.append(PendingRun(scheduledFor: f, trigger: .schedule))
            } else {
                skip(job: job, scheduledFor: f, reason: .overlap, now: now)
            }
        }
        drainPending(slot: slot, now: now)
    }

    /// Starts the next pending fire once the job has no active run.
    mutating func drainPending(slot: Int, now: Instant) {
        guard lifecycle == .running, slots[slot].occupied, slots[slot].active.isEmpty, let next = slots[slot].pending.first else { return }
        slots[slot].pending.removeFirst()
        _ = startRun(slot: slot, next, now: now)
    }

    // MARK: - Runs and attempts

    /// Begins a run: a new id, its records, and the launch of attempt 1.
    ///
    /// A fleet-locked fire (``claimsFleet(_:trigger:)``) first claims its instant: the run
    /// exists (it counts for `concurrency`) but is recorded and launched only once the claim
    /// is won (``commitStart(_:now:)``).
    mutating func startRun(slot: Int, _ fire: PendingRun, now: Instant) -> RunID {
        let id = newRunID(now: now)
        let spec = slots[slot].spec
        let job = spec.id
        let claims = claimsFleet(spec, trigger: fire.trigger)
        runs[id] = RunState(
            id: id, job: job, slot: slot, spec: spec, trigger: fire.trigger, scheduledFor: fire.scheduledFor,
            attempt: 1, phase: claims ? .claiming : .launching)
        slots[slot].active.append(id)
        if claims {
            beginClaim(id, now: now)
        } else {
            commitStart(id, now: now)
        }
        return id
    }

    /// Records a run's start and launches its first attempt.
    mutating func commitStart(_ id: RunID, now: Instant) {
        guard let run = runs[id] else { return }
        let slot = run.slot
        let job = run.job
        let fire = PendingRun(scheduledFor: run.scheduledFor, trigger: run.trigger)
        let spec = run.spec
        runs[id]!.phase = .launching
        // "Since this job last started": its needs must be met afresh.
        if !slots[slot].needMet.isEmpty {
            for i in slots[slot].needMet.indices { slots[slot].needMet[i] = false }
        }
        persist(
            .runStarted(
                RunRecord(
                    id: id, job: job, trigger: fire.trigger, scheduledFor: fire.scheduledFor,
                    startedAt: now, fleetToken: run.fleet?.lease?.token)))
        switch fire.trigger {
        case .schedule, .reboot:
            persist(.planned(LedgerEntry(job: job, scheduledFor: fire.scheduledFor, disposition: .ran(id), at: now)))
        case .catchup:
            persist(.planned(LedgerEntry(job: job, scheduledFor: fire.scheduledFor, disposition: .caughtUp(id), at: now)))
        case .manual, .needs, .retry: break
        }
        out.append(
            .launch(
                LaunchOrder(
                    runID: id, job: spec, attempt: 1, trigger: fire.trigger,
                    scheduledFor: fire.scheduledFor)))
    }

    /// Records the attempt as started at `startedAt` (the process's own start, never after
    /// `now`), which the history shows as the run's start for its first attempt.
    mutating func attemptLaunched(_ id: RunID, attempt: Int, pid: Int32?, startedAt: Instant? = nil, now: Instant) {
        guard let i = runs.index(forKey: id), runs.values[i].attempt == attempt, runs.values[i].phase == .launching
        else { return }
        runs.values[i].phase = .running
        runs.values[i].pid = pid
        emit(Scheduler.runStartedEvent(runs.values[i], pid: pid, at: now))
        persist(.attemptStarted(runID: id, attempt: attempt, pid: pid, at: min(startedAt ?? now, now)))
        // Stopped while its start was being prepared: the runner knows the run now.
        if let stop = runs.values[i].terminateOnLaunch {
            runs.values[i].terminateOnLaunch = nil
            out.append(.terminate(runID: id, graceMs: stop.graceMs, reason: stop.reason))
        }
    }

    /// Asks the runner to stop a launching or running attempt; no retry follows, whatever its
    /// outcome. Remembered when the attempt is still launching (``RunState/terminateOnLaunch``).
    mutating func terminate(_ id: RunID, graceMs: Int64, reason: TerminationReason) {
        guard let i = runs.index(forKey: id) else { return }
        runs.values[i].terminating = true
        if runs.values[i].phase == .launching { runs.values[i].terminateOnLaunch = (graceMs, reason) }
        out.append(.terminate(runID: id, graceMs: graceMs, reason: reason))
    }

    mutating func attemptFinished(_ id: RunID, attempt: Int, outcome reported: RunOutcome, durationMs: Int64, now: Instant) {
        guard let run = runs[id], run.attempt == attempt, run.phase != .waitingRetry, run.phase != .claiming else { return }
        // An adopted process's end says nothing about how it ended, unless Sundial stopped it.
        var outcome = reported
        if run.adopted, run.terminating || run.killedAtRestart, outcome == .unknown { outcome = .interrupted }
        if run.phase == .launching {
            emit(Scheduler.runStartedEvent(run, pid: nil, at: now))
            persist(.attemptStarted(runID: id, attempt: attempt, pid: nil, at: now))
        }
        let duration = max(0, durationMs)
        emit(
            Scheduler.runFinishedEvent(
                job: run.job, runID: id, attempt: attempt, outcome: outcome,
                durationMs: duration, adopted: run.adopted, at: now))
        persist(.attemptFinished(runID: id, attempt: attempt, outcome: outcome, at: now, durationMs: duration))
        let jobLive = slots[run.slot].occupied && !slots[run.slot].removed
        if lifecycle == .running, !run.terminating, jobLive, !outcome.isSuccess,
            run.spec.retry.shouldRetry(afterAttempt: attempt, outcome: outcome)
        {
            runs[id]!.lastOutcome = outcome
            runs[id]!.pid = nil
            runs[id]!.adopted = false
            runs[id]!.killedAtRestart = false
            scheduleRetry(id, now: now)
        } else {
            finishRun(id, outcome: outcome, now: now)
        }
        completeShutdownIfDone()
    }

    /// Waits for the run's next attempt; the wait is a heap timer, so other jobs never wait.
    mutating func scheduleRetry(_ id: RunID, now: Instant) {
        guard var run = runs[id] else { return }
        let unit = run.spec.retry.jitter > 0 ? random.nextUnit() : 0.5
        let delay = run.spec.retry.delayMs(afterAttempt: run.attempt, unit: unit)
        seq &+= 1
        run.phase = .waitingRetry
        run.timerSeq = seq
        runs[id] = run
        timers.insert(Timer(at: Instant(unixMillis: now.unixMillis &+ delay), seq: seq, kind: .retry(id)))
        emit(Scheduler.retryScheduledEvent(job: run.job, runID: id, attempt: run.attempt + 1, delayMs: delay, at: now))
    }

    mutating func launchRetry(_ id: RunID, now: Instant) {
        guard var run = runs[id], run.phase == .waitingRetry else { return }
        run.attempt += 1
        run.phase = .launching
        runs[id] = run
        out.append(
            .launch(
                LaunchOrder(
                    runID: id, job: run.spec, attempt: run.attempt, trigger: .retry,
                    scheduledFor: run.scheduledFor)))
    }

    /// The run is over: record it, tell its dependents, and start what waited for it.
    mutating func finishRun(_ id: RunID, outcome: RunOutcome, now: Instant) {
        guard let run = runs.removeValue(forKey: id) else { return }
        if run.timerSeq != nil { staleTimers += 1 }
        releaseClaim(run, outcome: outcome)
        persist(.runFinished(runID: id, outcome: outcome, at: now))
        let slot = run.slot
        guard slot < slots.count, slots[slot].occupied else { return }
        if let i = slots[slot].active.firstIndex(of: id) { slots[slot].active.remove(at: i) }
        if lifecycle == .running, dependents[run.job] != nil { notifyDependents(of: run.job, outcome: outcome, now: now) }
        guard slots[slot].occupied else { return }
        let removed = slots[slot].removed
        if removed {
            if slots[slot].active.isEmpty { freeSlot(slot) }
        } else {
            drainPending(slot: slot, now: now)
        }
    }

    /// `concurrency: replace`: stop every active attempt of the job; a run waiting for a retry
    /// simply ends with its last outcome.
    mutating func terminateActive(slot: Int, now: Instant) {
        guard case let js = slots[slot], js.occupied else { return }
        for id in js.active {
            guard var run = runs[id] else { continue }
            switch run.phase {
            case .waitingRetry:
                run.timerSeq = nil
                staleTimers += 1
                runs[id] = run
                let outcome = run.lastOutcome
                // Remove without draining: the caller drains once every run is handled.
                runs[id] = nil
                releaseClaim(run, outcome: outcome)
                persist(.runFinished(runID: id, outcome: outcome, at: now))
                slots[slot].active.removeAll { $0 == id }
                notifyDependents(of: run.job, outcome: outcome, now: now)
            case .launching, .running:
                guard !run.terminating else { continue }
                terminate(id, graceMs: max(0, run.spec.killGraceMs), reason: .replaced)
            case .claiming:
                // Not started: `replace` gives up its claim (the fire that replaces it claims its own).
                runs[id] = nil
                if run.fleet?.timerSeq != nil { staleTimers += 1 }
                if let key = run.fleet?.key, fleetClaims[key] == id { fleetClaims[key] = nil }
                slots[slot].active.removeAll { $0 == id }
                skip(job: run.job, scheduledFor: run.scheduledFor, reason: .overlap, now: now)
            }
        }
    }

    // MARK: - Dependencies

    /// A run of `job` ended with `outcome`: update the needs of its dependents; start a
    /// needs-only dependent whose needs are all met, or skip it (`upstream`) when this outcome
    /// does not satisfy it.
    mutating func notifyDependents(of job: JobID, outcome: RunOutcome, now: Instant) {
        guard let deps = dependents[job] else { return }
        var failed: [Int] = []
        for d in deps {
            guard case var ds = slots[d], ds.occupied, !ds.removed else { continue }
            var unmet = false
            for (i, need) in ds.spec.needs.enumerated() where need.job == job {
                let ok: Bool
                switch need.on {
                case .success: ok = outcome.isSuccess
                case .failure: ok = !outcome.isSuccess && outcome != .unknown
                case .completion: ok = true
                }
                ds.needMet[i] = ok
                if !ok { unmet = true }
            }
            slots[d] = ds
            guard ds.timing == .none else { continue }
            if unmet {
                failed.append(d)
            } else if ds.allNeedsMet {
                decideFire(slot: d, scheduledFor: now, trigger: .needs, now: now)
            }
        }
        skipUpstream(failed, now: now)
    }

    /// Logs `upstream` for needs-only jobs that will not run, and for their own needs-only
    /// dependents, each once.
    mutating func skipUpstream(_ start: [Int], now: Instant) {
        var queue = start
        var seen = Set<Int>()
        var i = 0
        while i < queue.count {
            let d = queue[i]
            i += 1
            guard seen.insert(d).inserted, case let ds = slots[d], ds.occupied, ds.spec.enabled, !ds.removed else { continue }
            skip(job: ds.spec.id, scheduledFor: now, reason: .upstream, now: now)
            for next in dependents[ds.spec.id] ?? [] where slots[next].occupied && slots[next].timing == Timing.none {
                queue.append(next)
            }
        }
    }
}
