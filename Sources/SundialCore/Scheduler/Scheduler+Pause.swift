import OrderedCollections

/// Pausing a job (`sundial pause` / `sundial resume`, issue 17).
///
/// A paused job stays armed: its fires keep coming and each one is recorded (`run.skipped`
/// with reason `paused`, and a ledger entry `sundial why` shows), so an operator can see what
/// the pause cost, and resuming needs no re-planning. This differs from `enabled: false`, which
/// is configuration and plans nothing. The paused set is scheduler state, not configuration: a
/// reload keeps it, and the driver persists it (``pausedJobs``) and hands it back at start
/// (``RestoredState/paused``).
extension Scheduler {
    /// Whether `job` is paused.
    public func isPaused(_ job: JobID) -> Bool { !pausedJobs.isEmpty && pausedJobs.contains(job) }

    /// Pauses or resumes a configured job; logs `job.paused` / `job.resumed` only on a change, so
    /// `pause --all` twice logs each job once.
    mutating func setPaused(_ job: JobID, _ paused: Bool, now: Instant) {
        if paused {
            guard let s = slotOf[job], slots[s].occupied, !slots[s].removed else { return }
            guard pausedJobs.insert(job).inserted else { return }
        } else {
            // Resuming works for an id no longer configured too, so a stale entry can be cleared.
            guard pausedJobs.remove(job) != nil else { return }
        }
        persist(.pauseChanged(job: job, paused: paused))
        emit(paused ? .jobPaused(job: job, at: now) : .jobResumed(job: job, at: now))
        // What was waiting to start (a catch-up backlog, a fire queued behind a running one)
        // is paused too: recorded as such, as the fires that come during the pause are. A
        // manual trigger waiting its turn stays (an explicit request runs a paused job).
        if paused, let s = slotOf[job], slots[s].pending.contains(where: { $0.trigger != .manual }) {
            let waiting = slots[s].pending
            slots[s].pending = waiting.filter { $0.trigger == .manual }
            for p in waiting where p.trigger != .manual { skip(job: job, scheduledFor: p.scheduledFor, reason: .paused, now: now) }
        }
    }
}
