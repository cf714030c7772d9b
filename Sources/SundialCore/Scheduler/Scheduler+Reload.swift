import OrderedCollections

extension Scheduler {
    /// Installs a job set: at init, or on reload (`configReplaced`).
    ///
    /// Reload rules (design §2): running runs are never killed; a removed job's active runs
    /// finish and are recorded (without further retries), its timer and pending fires are
    /// dropped; a job whose timing (`schedule`, `timezone`, `dst`, `jitter`, `enabled`) changed
    /// is re-planned from now (never re-firing an instant already consumed); any other job
    /// keeps its armed fire exactly, jitter included. `every` is counted from the agent's
    /// start, so an interval keeps its phase across reloads.
    mutating func installJobSet(_ set: JobSet, now: Instant) {
        guard lifecycle == .idle || lifecycle == .running else { return }
        jobSet = set
        let planning = lifecycle == .running
        // The slots of the new set's jobs, so that the removed ones are found without a lookup
        // of every slot's id in the set. Slots are read in place, and a job state copied only
        // when it changes: a reload that changes 100 jobs of 1,000 copied all 1,000 three times
        // (issue 15's reload figure).
        var inSet = [Bool](repeating: false, count: slots.count)
        for (id, spec) in set.jobs {
            if let slot = slotOf[id], slots[slot].occupied {
                inSet[slot] = true
                let wasRemoved = slots[slot].removed
                if !wasRemoved, slots[slot].spec == spec { continue }
                var js = slots[slot]
                let retime = wasRemoved || !Scheduler.sameTiming(js.spec, spec)
                js.needMet = spec.needs.map { need in
                    js.spec.needs.firstIndex(of: need).map { js.needMet[$0] } ?? false
                }
                js.spec = spec
                js.timing = Timing(spec.schedule)
                js.removed = false
                if !spec.enabled { js.pending.removeAll { $0.trigger != .manual } }
                slots[slot] = js
                for run in js.active { runs[run]?.spec = js.spec }
                if retime, planning { plan(slot: slot, now: now) }
            } else {
                let slot: Int
                if let free = freeSlots.popLast() {
                    slot = free
                    slots[slot] = JobState(spec: spec)
                } else {
                    slot = slots.count
                    slots.append(JobState(spec: spec))
                }
                slotOf[id] = slot
                if slot < inSet.count { inSet[slot] = true }
                if planning { plan(slot: slot, now: now) }
            }
        }
        // Slots appended above hold jobs of the set: only the earlier ones can be removed.
        for slot in inSet.indices where !inSet[slot] && slots[slot].occupied && !slots[slot].removed {
            var js = slots[slot]
            if js.timerSeq != nil { staleTimers += 1 }
            disarm(&js)
            js.removed = true
            js.pending = []
            slots[slot] = js
            if js.active.isEmpty { freeSlot(slot) }
        }
        dependents = [:]
        for slot in slots.indices where slots[slot].occupied && !slots[slot].removed {
            for need in slots[slot].spec.needs where dependents[need.job]?.last != slot {
                dependents[need.job, default: []].append(slot)
            }
        }
        // Remember last fires of removed jobs (a re-added job must not repeat an instant),
        // but not without bound.
        if lastFired.count > 2 * set.jobs.count + 10_000 {
            lastFired = lastFired.filter { set.jobs[$0.key] != nil }
        }
        refreshFleetJobs(now: now)
    }

    /// Arms a job that was added or re-timed while the agent runs: no catch-up (its fires were
    /// not missed, they did not exist), and never an instant already consumed.
    mutating func plan(slot: Int, now: Instant) {
        guard case let js = slots[slot], js.occupied else { return }
        switch js.timing {
        case .none, .reboot: disarm(slot: slot)
        case .monotonic: arm(slot: slot, after: now, now: now)
        case .wall: arm(slot: slot, after: max(now, lastFired[js.spec.id] ?? now), now: now)
        }
    }

    mutating func freeSlot(_ slot: Int) {
        guard slots[slot].occupied else { return }
        if slots[slot].timerSeq != nil { staleTimers += 1 }
        slotOf[slots[slot].spec.id] = nil
        slots[slot].occupied = false
        slots[slot].timerSeq = nil
        slots[slot].next = nil
        slots[slot].dueAt = nil
        slots[slot].active = []
        slots[slot].pending = []
        freeSlots.append(slot)
    }

    static func sameTiming(_ a: JobSpec, _ b: JobSpec) -> Bool {
        a.schedule == b.schedule && a.timezone == b.timezone && a.dst == b.dst && a.jitterMs == b.jitterMs
            && a.enabled == b.enabled
    }
}
