import HeapModule

/// The pure scheduler: decides *what* happens; its driver decides *when* and carries it out.
///
/// `handle(_:at:)` takes one ``SchedulerEvent`` at a wall-clock `now` and returns the
/// ``SchedulerAction``s to perform, in order. It owns no clock and no randomness (both are
/// arguments), does no I/O, and is cheap: due fires come off a min-heap keyed by due time, so
/// a tick costs O(k log n) for k due entries among n jobs, never a scan of all jobs.
///
/// Semantics (design §2), with the choices the design leaves open:
/// - `run.started` is emitted when the driver reports `attemptLaunched` (so it carries the
///   pid and the real launch time). An attempt that fails to launch gets a `run.started`
///   without pid followed by its `run.finished`, so every attempt has both lines.
/// - A fire handled at most `lateToleranceMs` (60 s) after its due time runs normally. Fires
///   handled later (downtime, suspend, a forward clock step) are *missed* and follow the job's
///   `catchup`: `none` logs one `run.skipped` `missed` summary (`scheduled_for` = the first
///   missed fire, `count` = how many, capped at `missedCountCap`); `latest` runs the newest
///   missed fire once (trigger `catchup`); `all` runs each missed fire inside
///   `catchup_window`, at most 100, one after the other (never a burst). Several fires of one
///   job due at the same handling are coalesced the same way, so a stall never bursts.
/// - `every` without `offset` counts from the agent's start in real time: a clock step
///   shifts it (and waiting retries) by the step. Every other schedule is on the wall clock:
///   a forward step leaves its fires missed (→ `catchup`), a backward step leaves its next
///   fire in place, so an instant that fired never fires again.
/// - `enabled: false` jobs are not planned at all (no timers, no per-fire events); when their
///   `needs` are met they log `run.skipped` `disabled`. A manual trigger runs them anyway
///   (an explicit request, like `systemctl start` on a disabled unit).
/// - Needs: a need is met when that job's latest run since this job last started ended with
///   the required outcome (a later failing run un-meets it). Only jobs without a schedule log
///   `upstream` (transitively, once per job); a scheduled job with unmet needs logs `needs`
///   when its fire comes.
/// - `holdCalendar(true)` (`--hold-until-synced` on a box whose clock is not synchronised yet)
///   leaves wall-clock jobs unarmed; intervals counted from the start keep running. The
///   release arms them as a start would, so what was missed follows `catchup`.
/// - `pause` (`sundial pause`) leaves a job armed but skips each of its fires, whatever the
///   trigger, with reason `paused` (see Scheduler+Pause); a manual trigger still runs it.
/// - `.fired` is persisted for the newest consumed instant of each handling (the store keeps
///   the maximum per job); the ledger gets one `planned` entry per run, skip, or missed summary.
public struct Scheduler: Sendable {
    public let options: SchedulerOptions
    let calculator: any FireCalculating
    var random: any RandomSource

    var lifecycle: Lifecycle = .idle
    /// The agent's start, shifted by clock steps: the origin of `every` without `offset`.
    var anchor = Instant(unixMillis: 0)
    var jobSet: JobSet
    /// Job table; a freed slot stays (unoccupied) for reuse. Not optional: reading a field of
    /// an optional element copies the whole element, and this is the hottest table.
    var slots: [JobState] = []
    var slotOf: [JobID: Int] = [:]
    var freeSlots: [Int] = []
    /// Reverse `needs` edges: for each job, the slots of the jobs that need it.
    var dependents: [JobID: [Int]] = [:]
    var runs: [RunID: RunState] = [:]
    /// Per job, the latest scheduled instant consumed (restored on start).
    var lastFired: [JobID: Instant] = [:]
    /// `holdCalendar(true)`: wall-clock jobs are not armed (``SchedulerEvent/holdCalendar(_:)``).
    var calendarHeld = false
    /// Jobs paused by `sundial pause` (``SchedulerEvent/pause(_:)``; see Scheduler+Pause).
    public internal(set) var pausedJobs: Set<JobID> = []
    /// The previous agent's last sign of life, kept from `start` for a release of the hold.
    var restoredLastSeen: Instant?
    /// Fires the previous agent's stop owed (``RestoredState/owed``) while the calendar is held
    /// at start: decided, and settled, when the hold is released (the clock is trusted then).
    /// Until then they stay owed in the store, so a stop during the hold loses none.
    var heldOwed: [JobID: [Instant]] = [:]
    /// `lock: fleet`: the run holding or claiming each instant (Scheduler+Fleet).
    var fleetClaims: [FleetClaimKey: RunID] = [:]
    /// Enabled fleet-locked jobs, sorted (what the lost-lease scan covers).
    var fleetJobs: [JobID] = []
    var lostScanSeq: UInt64?
    /// Since when every fleet answer this box saw came through (`nil` right after one that
    /// did not): lost leases are acted on only after a whole lease of that, so that after a
    /// database outage their holders get a lease's time to renew or finish first.
    var fleetReachableSince: Instant?
    var lostScanInFlight = false
    /// Expired leases sent to `resolveLost` with `on_lost: skip`, awaiting the answer.
    var resolvingLost: Set<FleetClaimKey> = []
    var timers = Heap<Timer>()
    var staleTimers = 0
    var seq: UInt64 = 0
    /// The actions of the event being handled.
    var out: [SchedulerAction] = []

    /// When the driver should next deliver `.tick` (`nil`: nothing timed is pending).
    public private(set) var nextWake: Instant?

    /// - Parameters:
    ///   - jobs: the validated job set (a reload replaces it with `.configReplaced`).
    ///   - calculator: computes calendar and interval fires.
    ///   - random: jitter, retry jitter and run ids; `SeededRandom` for determinism.
    public init(
        jobs: JobSet, calculator: any FireCalculating, random: some RandomSource,
        options: SchedulerOptions = SchedulerOptions()
    ) {
        self.options = options
        self.calculator = calculator
        self.random = random
        self.jobSet = JobSet()
        installJobSet(jobs, now: Instant(unixMillis: 0))
    }

    /// Handles one event at the wall-clock instant `now` and returns what to do, in order.
    /// Never throws and never traps on unexpected input (an unknown run id is ignored).
    public mutating func handle(_ event: SchedulerEvent, at now: Instant) -> [SchedulerAction] {
        out.reserveCapacity(8)
        switch event {
        case let .start(restored, reboot): start(restored: restored, reboot: reboot, now: now)
        case .tick: break
        case let .attemptLaunched(id, attempt, pid, startedAt):
            attemptLaunched(id, attempt: attempt, pid: pid, startedAt: startedAt, now: now)
        case let .attemptFinished(id, attempt, outcome, durationMs):
            attemptFinished(id, attempt: attempt, outcome: outcome, durationMs: durationMs, now: now)
        case let .configReplaced(set): installJobSet(set, now: now)
        case let .trigger(job): trigger(job, now: now)
        case let .clockStepped(from, to): clockStepped(byMs: to.unixMillis &- from.unixMillis, now: now)
        case let .shutdown(graceMs): shutdown(graceMs: graceMs, now: now)
        case let .holdCalendar(held): holdCalendar(held, now: now)
        case let .pause(job): setPaused(job, true, now: now)
        case let .resume(job): setPaused(job, false, now: now)
        case let .claimResolved(key, outcome): claimResolved(key, outcome, now: now)
        case let .leaseRenewed(key, outcome): leaseRenewed(key, outcome, now: now)
        case let .lostLeasesFound(leases): lostLeasesFound(leases, now: now)
        case let .lostResolved(lease, outcome): lostResolved(lease, outcome, now: now)
        }
        // While stopping, only fleet renewals are left in the heap: they go on until the runs end.
        if lifecycle == .running || lifecycle == .stopping { fireDue(now: now) }
        compactTimersIfNeeded()
        nextWake = earliestTimer()
        if let w = nextWake { out.append(.wake(at: w)) }
        let result = out
        out = []
        return result
    }

    // MARK: - Queries (for `status` and tests)

    /// Whether `.shutdown` has completed (every run recorded).
    public var isStopped: Bool { lifecycle == .stopped }

    /// The next planned (unjittered) fire of a job, if it is armed.
    public func plannedFire(of job: JobID) -> Instant? {
        guard let s = slotOf[job], case let js = slots[s], js.occupied, !js.removed else { return nil }
        return js.next
    }

    /// Whether `job` is a wall-clock job held by `holdCalendar(true)` (it has no planned fire
    /// until the clock is synchronised).
    public func isHeld(_ job: JobID) -> Bool {
        guard calendarHeld, let s = slotOf[job], case let js = slots[s], js.occupied, !js.removed else { return false }
        return js.timing == .wall
    }

    /// The runs of a job that have not ended (waiting retries included), oldest first.
    public func activeRuns(of job: JobID) -> [RunID] {
        guard let s = slotOf[job], case let js = slots[s], js.occupied else { return [] }
        return js.active
    }

    /// How many runs are active across all jobs.
    public var activeRunCount: Int { runs.count }

    /// Entries in the wake-up heap, stale ones included (a diagnostic: it stays within a
    /// constant of the number of armed jobs and waiting retries).
    public var timerHeapCount: Int { timers.count }

    /// The latest consumed scheduled instant of a job (what the store persists as last fire).
    public func lastFire(of job: JobID) -> Instant? { lastFired[job] }

    // MARK: - Start and shutdown

    mutating func start(restored: RestoredState, reboot: Bool, now: Instant) {
        guard lifecycle == .idle else { return }
        lifecycle = .running
        anchor = now
        fleetReachableSince = now
        restoredLastSeen = restored.lastSeen
        pausedJobs.formUnion(restored.paused)
        for (job, instant) in restored.lastFired { lastFired[job] = instant }
        for record in restored.inFlight.sorted(by: { $0.id < $1.id }) {
            if let identity = restored.alive[record.id] {
                adopt(record, identity: identity, now: now)
            } else {
                restoreInterrupted(record, now: now)
            }
        }
        for slot in slots.indices {
            guard case let js = slots[slot], js.occupied, !js.removed, js.spec.enabled else { continue }
            switch js.timing {
            case .none: break
            case .reboot:
                if reboot || js.spec.reboot == .everyStart { decideFire(slot: slot, scheduledFor: now, trigger: .schedule, now: now) }
            case .monotonic: arm(slot: slot, after: now, now: now)
            case .wall: arm(slot: slot, after: catchupLowerBound(job: js.spec.id, lastSeen: restored.lastSeen) ?? now, now: now)
            }
        }
        if calendarHeld {
            heldOwed = restored.owed
        } else {
            restoreOwed(restored.owed, restoredLastSeen: restored.lastSeen, now: now)
        }
        armLostScan(now: now)
    }

    /// Whether a fire still waiting at a clean stop is owed to the next start: a calendar fire
    /// (on schedule or caught up) of a job whose `catchup` would run what a downtime missed. A
    /// manual trigger, a dependency's fire or an interval's (which restarts from the agent's
    /// start) is not: it is recorded skipped, as before.
    static func owes(_ js: JobState, _ p: PendingRun) -> Bool {
        js.timing == .wall && !js.removed && js.spec.catchup != .none && (p.trigger == .schedule || p.trigger == .catchup)
    }

    /// Runs the fires the previous agent's clean stop owed (``RestoredState/owed``) as the job's
    /// `catchup` says, as if they had been missed in the downtime, within `catchup_window`:
    /// `all` runs each one, before the downtime's own catch-ups (they are older; when the
    /// backlog reaches `maxCatchupRuns`, the downtime's oldest are the ones recorded missed),
    /// `latest` runs the newest one, unless the downtime missed a fire of its own, whose
    /// catch-up run covers it. The window applies to `latest` too: an owed fire of a
    /// `lock: fleet` job older than the fleet keeps its claims could otherwise run on a second
    /// box. What is not run is recorded missed, in one summary per job. Each job's owed fires
    /// are settled (durably, before anything launches) whatever becomes of them, so none can
    /// run twice.
    mutating func restoreOwed(_ owed: [JobID: [Instant]], restoredLastSeen: Instant?, now: Instant) {
        guard !owed.isEmpty else { return }
        for job in owed.keys.sorted() {
            persist(.owedSettled(job: job))
            guard let fires = owed[job]?.sorted(), let oldest = fires.first else { continue }
            guard let slot = slotOf[job], case let js = slots[slot], js.occupied, !js.removed, js.timing == .wall else {
                // Removed, or no longer on the calendar: recorded as missed all the same.
                skip(job: job, scheduledFor: oldest, reason: .missed, now: now, count: min(fires.count, options.missedCountCap))
                continue
            }
            let windowStart = now.unixMillis &- max(0, js.spec.catchupWindowMs)
            let inWindow = js.spec.enabled ? fires.filter { $0.unixMillis > windowStart && $0 <= now } : []
            var run: [Instant] = []
            switch js.spec.catchup {
            case .none: break
            case .latest:
                let from = catchupLowerBound(job: job, lastSeen: restoredLastSeen) ?? now
                let downtimeMissed = calculator.nextFire(of: js.spec, after: from, anchor: anchor).map { $0 <= now } ?? false
                if !downtimeMissed, let newest = inWindow.last { run = [newest] }
            case .all:
                run = Array(inWindow.suffix(options.maxCatchupRuns))
            }
            if fires.count > run.count {
                skip(job: job, scheduledFor: oldest, reason: .missed, now: now, count: min(fires.count - run.count, options.missedCountCap))
            }
            if run.isEmpty { continue }
            if js.spec.catchup == .all {
                enqueueBacklog(slot: slot, catchups: run, onTime: nil, now: now)
            } else {
                decideFire(slot: slot, scheduledFor: run[0], trigger: .catchup, now: now)
            }
        }
    }

    /// Holds or releases the wall-clock jobs (``SchedulerEvent/holdCalendar(_:)``). A release
    /// arms every wall-clock job that is not armed from where a start would have: what was
    /// missed since its last consumed instant follows its `catchup` (the fires did not run, and
    /// the clock that now says so is trusted).
    mutating func holdCalendar(_ held: Bool, now: Instant) {
        guard held != calendarHeld else { return }
        calendarHeld = held
        for slot in slots.indices {
            guard case let js = slots[slot], js.occupied, js.timing == .wall else { continue }
            if held {
                disarm(slot: slot)
            } else if js.timerSeq == nil, lifecycle == .running {
                arm(slot: slot, after: catchupLowerBound(job: js.spec.id, lastSeen: restoredLastSeen) ?? now, now: now)
            }
        }
        if !held, lifecycle == .running, !heldOwed.isEmpty {
            let owed = heldOwed
            heldOwed = [:]
            restoreOwed(owed, restoredLastSeen: restoredLastSeen, now: now)
        }
    }

    /// After downtime, fires after this instant (and up to now) are missed: after the job's
    /// last consumed instant, but not before the previous agent was last seen alive (minus the
    /// late tolerance, in case it died while handling a fire), so the weeks a job spent
    /// disabled or absent from the config are not "missed".
    func catchupLowerBound(job: JobID, lastSeen: Instant?) -> Instant? {
        let seen = lastSeen.map { Instant(unixMillis: $0.unixMillis &- options.lateToleranceMs) }
        switch (lastFired[job], seen) {
        case let (f?, s?): return max(f, s)
        case let (f?, nil): return f
        // No fire consumed yet (a job new to this box, or renamed): from the last sign of life
        // itself. With the tolerance, a job added while the agent was down caught up the minute
        // before the previous agent stopped, when it did not exist (a renamed one ran again
        // what its old name had run). The cost: a crash between an alive mark and such a job's
        // very first fire loses that fire (never run twice, but not run).
        case let (nil, s?): return lastSeen.map { max(s, $0) } ?? s
        case (nil, nil): return nil
        }
    }

    /// Records a run that was in flight when the previous agent died, and retries it when its
    /// job still exists and its policy has attempts left.
    mutating func restoreInterrupted(_ record: RunRecord, now: Instant) {
        let attempt = max(1, record.attempt)
        emit(
            Scheduler.runFinishedEvent(
                job: record.job, runID: record.id, attempt: attempt, outcome: .interrupted,
                durationMs: nil, at: now))
        persist(.attemptFinished(runID: record.id, attempt: attempt, outcome: .interrupted, at: now, durationMs: 0))
        guard let slot = slotOf[record.job], case let js = slots[slot], js.occupied, !js.removed, runs[record.id] == nil,
            js.spec.retry.shouldRetry(afterAttempt: attempt, outcome: .interrupted)
        else {
            persist(.runFinished(runID: record.id, outcome: .interrupted, at: now))
            return
        }
        runs[record.id] = RunState(
            id: record.id, job: record.job, slot: slot, spec: js.spec, trigger: record.trigger,
            scheduledFor: record.scheduledFor ?? record.startedAt, attempt: attempt,
            phase: .waitingRetry)
        slots[slot].active.append(record.id)
        scheduleRetry(record.id, now: now)
    }

    /// Takes over a run whose process outlived the previous agent (its identity checked by the
    /// runtime): it is an active run of its job, so `concurrency` holds across the restart
    /// (`forbid` skips, `queue` waits, `replace` stops it, `allow` runs beside it). Under
    /// `on_agent_restart: kill` it is stopped at once (SIGKILL to its process group) and ends
    /// `interrupted`. A job no longer configured keeps a removed slot until the run ends, as a
    /// reload would leave it (its policy is the default, `adopt`).
    mutating func adopt(_ record: RunRecord, identity: ProcessIdentity, now: Instant) {
        guard runs[record.id] == nil else { return }
        let slot: Int
        if let s = slotOf[record.job], slots[s].occupied {
            slot = s
        } else {
            var placeholder = JobState(spec: JobSpec(id: record.job, command: .argv([])))
            placeholder.timing = .none
            placeholder.removed = true
            if let free = freeSlots.popLast() {
                slot = free
                slots[slot] = placeholder
            } else {
                slot = slots.count
                slots.append(placeholder)
            }
            slotOf[record.job] = slot
        }
        let js = slots[slot]
        let kill = !js.removed && js.spec.onAgentRestart == .kill
        let attempt = max(1, record.attempt)
        var run = RunState(
            id: record.id, job: record.job, slot: slot, spec: js.spec, trigger: record.trigger,
            scheduledFor: record.scheduledFor ?? record.startedAt, attempt: attempt, phase: .running)
        run.pid = identity.pid
        run.adopted = true
        run.killedAtRestart = kill
        runs[record.id] = run
        slots[slot].active.append(record.id)
        emit(Scheduler.runAdoptedEvent(run, identity: identity, policy: kill ? .kill : .adopt, at: now))
        out.append(
            .watch(
                AdoptedRun(
                    runID: record.id, job: record.job, attempt: attempt, identity: identity,
                    startedAt: record.startedAt, timeoutMs: js.removed ? nil : js.spec.timeoutMs,
                    killGraceMs: js.spec.killGraceMs)))
        if kill { out.append(.terminate(runID: record.id, graceMs: 0, reason: .agentRestart)) }
    }

    mutating func shutdown(graceMs: Int64, now: Instant) {
        switch lifecycle {
        case .idle:
            lifecycle = .stopped
            out.append(.shutdownComplete)
            return
        case .stopping, .stopped: return
        case .running: break
        }
        lifecycle = .stopping
        timers = Heap()
        staleTimers = 0
        lostScanSeq = nil
        for slot in slots.indices {
            guard case var js = slots[slot], js.occupied else { continue }
            js.timerSeq = nil
            js.next = nil
            js.dueAt = nil
            let dropped = js.pending
            js.pending = []
            slots[slot] = js
            for p in dropped {
                skip(job: js.spec.id, scheduledFor: p.scheduledFor, reason: .shutdown, now: now)
                if Self.owes(js, p) { persist(.owed(job: js.spec.id, scheduledFor: p.scheduledFor)) }
            }
        }
        for id in runs.keys.sorted() {
            guard var run = runs[id] else { continue }
            switch run.phase {
            case .claiming:
                // Not started: nothing to stop. A claim still in flight that is won later is left
                // to expire, and the fleet's `on_lost` decides (as for a box that went away).
                dropClaiming(id, reason: .shutdown, now: now)
            case .waitingRetry:
                run.timerSeq = nil
                run.fleet?.timerSeq = nil
                runs[id] = run
                finishRun(id, outcome: run.lastOutcome, now: now)
            case .launching, .running:
                terminate(id, graceMs: max(0, graceMs), reason: .shutdown)
                // Its lease is still renewed while it stops (the heap was emptied above).
                if runs[id]?.fleet?.lease != nil {
                    runs[id]?.fleet?.timerSeq = nil
                    armFleetTimer(id, now: now)
                }
            }
        }
        completeShutdownIfDone()
    }

    mutating func completeShutdownIfDone() {
        guard lifecycle == .stopping, runs.isEmpty else { return }
        lifecycle = .stopped
        out.append(.shutdownComplete)
    }

    // MARK: - Manual trigger and clock steps

    mutating func trigger(_ job: JobID, now: Instant) {
        guard lifecycle == .running else {
            out.append(.triggerResult(job: job, .shuttingDown))
            return
        }
        guard let slot = slotOf[job], case let js = slots[slot], js.occupied, !js.removed else {
            out.append(.triggerResult(job: job, .unknownJob))
            return
        }
        let result = admit(slot: slot, PendingRun(scheduledFor: now, trigger: .manual), now: now)
        out.append(.triggerResult(job: job, result))
    }

    /// Intervals keep real elapsed time: `every` without `offset` and waiting retries move with
    /// the step; wall-clock fires stay where they are (see the type's documentation).
    mutating func clockStepped(byMs delta: Int64, now: Instant) {
        guard lifecycle == .running, delta != 0 else { return }
        anchor = Instant(unixMillis: anchor.unixMillis &+ delta)
        var rebuilt: [Timer] = []
        rebuilt.reserveCapacity(timers.count)
        for var t in timers.unordered {
            switch t.kind {
            case let .fire(slot):
                guard slot < slots.count, case var js = slots[slot], js.occupied, js.timerSeq == t.seq else { continue }
                if js.timing == .monotonic, let n = js.next, let d = js.dueAt {
                    let due = Instant(unixMillis: d.unixMillis &+ delta)
                    js.next = Instant(unixMillis: n.unixMillis &+ delta)
                    js.dueAt = due
                    t.at = due
                    slots[slot] = js
                }
            case let .retry(id):
                guard let run = runs[id], run.timerSeq == t.seq else { continue }
                t.at = Instant(unixMillis: t.at.unixMillis &+ delta)
            case let .fleet(id):
                // Renewals keep real elapsed time, like retries: a lease runs on the database's clock.
                guard let run = runs[id], run.fleet?.timerSeq == t.seq else { continue }
                t.at = Instant(unixMillis: t.at.unixMillis &+ delta)
            case .lostScan:
                guard lostScanSeq == t.seq else { continue }
            }
            rebuilt.append(t)
        }
        timers = Heap(rebuilt)
        staleTimers = 0
    }

    // MARK: - Output helpers

    mutating func emit(_ record: LogRecord) { out.append(.emit(record)) }
    mutating func persist(_ change: @autoclosure () -> StateChange) {
        if options.recordsState { out.append(.persist(change())) }
    }

    mutating func skip(job: JobID, scheduledFor: Instant, reason: SkipReason, now: Instant, count: Int? = nil) {
        emit(Scheduler.runSkippedEvent(job: job, scheduledFor: scheduledFor, reason: reason, count: count, at: now))
        persist(
            .planned(
                LedgerEntry(
                    job: job, scheduledFor: scheduledFor,
                    disposition: reason == .missed ? .missed : .skipped(reason), at: now)))
    }

    mutating func newRunID(now: Instant) -> RunID { RunID(time: now, random: &random) }
}
