import OrderedCollections
import SundialCore

extension Agent {
    /// What the status page needs from the actor, copied in one short call: the specs in file
    /// order with their next fires and holds, the runs in flight, and the hold on calendar jobs.
    /// Everything else (history, the ledger) is read from the store off the actor, as for the
    /// control socket, so a page view never delays a due fire by more than this copy.
    struct StatusPageSnapshot: Sendable {
        var status: StatusSnapshot
        var calendarHeld: Bool
    }

    /// - Parameter withJobs: false for pages that show one job or none: the copy of every spec
    ///   and next fire (about a millisecond for 1,000 jobs) is then skipped.
    func statusPageSnapshot(withJobs: Bool = true) -> StatusPageSnapshot {
        if withJobs { return StatusPageSnapshot(status: statusSnapshot(), calendarHeld: calendarHeld) }
        let status = StatusSnapshot(revision: jobSet.revision, startedAt: startedAt ?? clock.wallNow(), jobs: [], active: [])
        return StatusPageSnapshot(status: status, calendarHeld: calendarHeld)
    }

    /// The spec of `job` and its next fire, if it is in the running set.
    func statusPageJob(_ job: JobID) -> (spec: JobSpec, next: Instant?, held: Bool, paused: Bool, running: Bool)? {
        guard let spec = jobSet.jobs[job] else { return nil }
        return (
            spec, scheduler.plannedFire(of: job), scheduler.isHeld(job), scheduler.pausedJobs.contains(job),
            activeRuns.values.contains { $0.job == job }
        )
    }
}
