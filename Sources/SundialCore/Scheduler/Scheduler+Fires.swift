import HeapModule

extension Scheduler {
    // MARK: - Arming

    /// Arms a job's timer at its first fire strictly after `after` (disarming any previous one).
    /// Jitter in `[0, jitter)` is drawn only for a fire still in the future: an overdue fire is
    /// handled at once.
    mutating func arm(slot: Int, after: Instant, now: Instant) {
        guard slots[slot].occupied else { return }
        let spec = slots[slot].spec
        let timing = slots[slot].timing
        let armable = (timing == .wall && !calendarHeld) || timing == .monotonic
        arm(slot: slot, fire: armable ? calculator.nextFire(of: spec, after: after, anchor: anchor) : nil, now: now)
    }

    /// Arms a job's timer at `fire`, already computed (so a fire is computed once, not twice).
    mutating func arm(slot: Int, fire: Instant?, now: Instant) {
        guard slots[slot].occupied else { return }
        if slots[slot].timerSeq != nil { staleTimers += 1 }
        slots[slot].next = nil
        slots[slot].dueAt = nil
        slots[slot].timerSeq = nil
        let spec = slots[slot].spec
        let timing = slots[slot].timing
        guard lifecycle == .running, spec.enabled, !slots[slot].removed,
            (timing == .wall && !calendarHeld) || timing == .monotonic, let fire
        else { return }
        var due = fire
        if spec.jitterMs > 0, fire > now {
            due = Instant(unixMillis: fire.unixMillis &+ Int64(random.nextUnit() * Double(spec.jitterMs)))
        }
        seq &+= 1
        slots[slot].next = fire
        slots[slot].dueAt = due
        slots[slot].timerSeq = seq
        timers.insert(Timer(at: due, seq: seq, kind: .fire(slot: slot)))
    }

    func disarm(_ js: inout JobState) {
        js.next = nil
        js.dueAt = nil
        js.timerSeq = nil
    }

    mutating func disarm(slot: Int) {
        guard case var js = slots[slot], js.occupied else { return }
        if js.timerSeq != nil { staleTimers += 1 }
        disarm(&js)
        slots[slot] = js
    }

    func earliestTimer() -> Instant? { timers.min?.at }

    /// Drops stale heap entries when they outnumber live ones, so reload churn cannot grow the
    /// heap without bound.
    mutating func compactTimersIfNeeded() {
        // Pop stale entries off the top so `nextWake` is exact.
        while let t = timers.min, !isLive(t) {
            _ = timers.removeMin()
            staleTimers = max(0, staleTimers - 1)
        }
        guard staleTimers > 1024, staleTimers * 2 > timers.count else { return }
        timers = Heap(timers.unordered.filter { isLive($0) })
        staleTimers = 0
    }

    func isLive(_ t: Timer) -> Bool {
        switch t.kind {
        case let .fire(slot): return slot < slots.count && slots[slot].timerSeq == t.seq
        case let .retry(id): return runs[id]?.timerSeq == t.seq
        case let .fleet(id): return runs[id]?.fleet?.timerSeq == t.seq
        case .lostScan: return lostScanSeq == t.seq
        }
    }

    // MARK: - Due timers

    /// Handles every timer due at `now`, earliest first (equal times in arming order), so
    /// 1,000 jobs due in the same second all start in one call.
    mutating func fireDue(now: Instant) {
        while lifecycle == .running || lifecycle == .stopping, let t = timers.min, t.at <= now {
            _ = timers.removeMin()
            switch t.kind {
            case let .fire(slot):
                guard slot < slots.count, slots[slot].timerSeq == t.seq else {
                    staleTimers = max(0, staleTimers - 1)
                    continue
                }
                slots[slot].timerSeq = nil
                fireJob(slot: slot, now: now)
            case let .retry(id):
                guard let i = runs.index(forKey: id), runs.values[i].timerSeq == t.seq else {
                    staleTimers = max(0, staleTimers - 1)
                    continue
                }
                runs.values[i].timerSeq = nil
                launchRetry(id, now: now)
            case let .fleet(id):
                guard let i = runs.index(forKey: id), runs.values[i].fleet?.timerSeq == t.seq else {
                    staleTimers = max(0, staleTimers - 1)
                    continue
                }
                runs.values[i].fleet?.timerSeq = nil
                fleetTimerDue(id, now: now)
            case .lostScan:
                guard lostScanSeq == t.seq else {
                    staleTimers = max(0, staleTimers - 1)
                    continue
                }
                lostScanSeq = nil
                lostScanDue(now: now)
            }
        }
    }

    /// A job's armed fire is due: run it, or (late, or several due at once) apply `catchup`.
    mutating func fireJob(slot: Int, now: Instant) {
        guard slots[slot].occupied, let f0 = slots[slot].next, let d0 = slots[slot].dueAt else { return }
        let spec = slots[slot].spec
        let tolerance = options.lateToleranceMs
        let f1 = calculator.nextFire(of: spec, after: f0, anchor: anchor)
        if (f1 == nil || f1! > now) && now.unixMillis &- d0.unixMillis <= tolerance {
            consume(job: spec.id, f0)
            decideFire(slot: slot, scheduledFor: f0, trigger: .schedule, now: now)
            arm(slot: slot, fire: f1, now: now)
            return
        }
        // Late beyond the tolerance, or more than one fire due: coalesce, never burst.
        let keep = spec.catchup == .all ? options.maxCatchupRuns + 1 : 1
        let scan = scanFires(spec, after: f0, through: now, keepNewest: keep)
        let newest = scan.newest.last ?? f0
        let lateness = newest == f0 ? now.unixMillis &- d0.unixMillis : now.unixMillis &- newest.unixMillis
        let onTime: Instant? = lateness <= tolerance ? newest : nil
        let missedCount = 1 + scan.count - (onTime == nil ? 0 : 1)
        consume(job: spec.id, newest)

        var catchups: [Instant] = []
        switch spec.catchup {
        case .none: break
        case .latest: if onTime == nil { catchups = [newest] }
        case .all:
            let all = scan.complete && scan.count < keep ? [f0] + scan.newest : scan.newest
            let windowStart = now.unixMillis &- max(0, spec.catchupWindowMs)
            let inWindow = all.filter { $0 != onTime && $0.unixMillis > windowStart }
            catchups = Array(inWindow.suffix(options.maxCatchupRuns))
        }
        let skipped = missedCount - catchups.count
        if skipped > 0 {
            skip(job: spec.id, scheduledFor: f0, reason: .missed, now: now, count: min(skipped, options.missedCountCap))
        }
        if spec.catchup == .all, !catchups.isEmpty {
            enqueueBacklog(slot: slot, catchups: catchups, onTime: onTime, now: now)
        } else {
            for f in catchups { decideFire(slot: slot, scheduledFor: f, trigger: .catchup, now: now) }
            if let f = onTime { decideFire(slot: slot, scheduledFor: f, trigger: .schedule, now: now) }
        }
        arm(slot: slot, after: newest, now: now)
    }

    /// Records that `instant` (and every earlier one) of `job` is consumed.
    mutating func consume(job: JobID, _ instant: Instant) {
        lastFired[job] = instant
        persist(.fired(job: job, scheduledFor: instant))
    }

    // MARK: - Scanning missed fires (bounded)

    struct FireScan {
        /// How many fires lie in the range, counted up to `missedCountCap`.
        var count: Int
        /// Whether `count` is exact (the walk reached the end of the range).
        var complete: Bool
        /// The newest fires of the range, oldest first, at most `keepNewest`.
        var newest: [Instant]
    }

    /// The fires of `spec` in `(lo, hi]`: counted up to the cap, and the newest `keepNewest`.
    ///
    /// Bounded whatever the schedule and however long the downtime: the forward walk stops at
    /// `missedCountCap`; then the newest fires are found by walking windows that end at `hi`
    /// and double in length (1 min, 2 min, …) until one holds enough fires.
    func scanFires(_ spec: JobSpec, after lo: Instant, through hi: Instant, keepNewest: Int) -> FireScan {
        var ring = NewestRing(capacity: keepNewest)
        var count = 0
        var cursor = lo
        while let f = calculator.nextFire(of: spec, after: cursor, anchor: anchor), f <= hi {
            count += 1
            ring.push(f)
            cursor = f
            if count >= options.missedCountCap {
                let tail = newestFires(spec, after: cursor, through: hi, keep: keepNewest)
                for f in tail { ring.push(f) }
                return FireScan(count: count, complete: tail.isEmpty, newest: ring.elements)
            }
        }
        return FireScan(count: count, complete: true, newest: ring.elements)
    }

    func newestFires(_ spec: JobSpec, after lo: Instant, through hi: Instant, keep: Int) -> [Instant] {
        let stepBudget = 200_000
        var span: Int64 = 60_000
        while true {
            let start = max(lo, Instant(unixMillis: hi.unixMillis &- span))
            var ring = NewestRing(capacity: keep)
            var cursor = start
            var steps = 0
            while steps < stepBudget, let f = calculator.nextFire(of: spec, after: cursor, anchor: anchor), f <= hi {
                ring.push(f)
                cursor = f
                steps += 1
            }
            if ring.count >= keep || start == lo { return ring.elements }
            span = span > Int64.max / 4 ? hi.unixMillis &- lo.unixMillis : span * 2
        }
    }
}

/// The newest `capacity` values pushed, oldest first (a ring buffer).
struct NewestRing {
    let capacity: Int
    private var storage: [Instant] = []
    private var head = 0

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        storage.reserveCapacity(min(self.capacity, 128))
    }

    var count: Int { storage.count }

    mutating func push(_ x: Instant) {
        if storage.count < capacity {
            storage.append(x)
        } else {
            storage[head] = x
            head = (head + 1) % capacity
        }
    }

    var elements: [Instant] { Array(storage[head...] + storage[..<head]) }
}
