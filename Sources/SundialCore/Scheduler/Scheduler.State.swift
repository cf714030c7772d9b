extension Scheduler {
    /// How a job's own fires are computed, derived from its ``ScheduleSpec``.
    enum Timing: Hashable, Sendable {
        /// No fires of its own: manual, or started by its `needs`.
        case none
        /// `@reboot`: at a start that the agent says is a new boot.
        case reboot
        /// Instants on the wall clock (`schedule`, `at`, `every` with `offset`): never fired
        /// twice, caught up after downtime, left in place by a clock step.
        case wall
        /// `every` without `offset`: counted from the agent's start in real elapsed time, so a
        /// clock step shifts it by the step.
        case monotonic

        init(_ schedule: ScheduleSpec) {
            switch schedule {
            case .manual: self = .none
            case .reboot: self = .reboot
            case .cron, .at: self = .wall
            case let .every(_, offset): self = offset == nil ? .monotonic : .wall
            }
        }
    }

    /// A fire accepted but not yet started: the `queue` slot, a `replace` waiting for the
    /// active run to end, or a `catchup: all` backlog entry.
    struct PendingRun: Hashable, Sendable {
        var scheduledFor: Instant
        var trigger: RunTrigger
        var isCatchup: Bool { trigger == .catchup }
    }

    /// Everything the scheduler knows about one configured job (or a removed one whose runs
    /// are still active).
    ///
    /// The armed fire is stored without optionals' tag bytes (``unset``): with the flags last,
    /// a job's state is 64 bytes instead of 88, in a table of one per job.
    struct JobState: Sendable {
        var spec: JobSpec
        private var nextRaw = Instant.unset
        private var dueAtRaw = Instant.unset
        private var timerSeqRaw = UInt64.max
        /// Runs not yet finished, waiting retries included (`concurrency` applies to runs).
        var active: [RunID] = []
        /// Bounded: at most `maxCatchupRuns` catch-ups plus one queued/replacing fire.
        var pending: [PendingRun] = []
        /// Parallel to `spec.needs`: whether that need's latest run since this job last started
        /// ended with the required outcome.
        var needMet: [Bool]
        var timing: Timing
        /// Removed by a reload; kept only until its active runs have ended.
        var removed = false
        /// False once the slot is freed (the job is gone and has no active run).
        var occupied = true

        /// The armed fire: its scheduled instant (unconsumed), its due time (with jitter) and
        /// the sequence number of its heap entry (`nil`: not armed).
        var next: Instant? {
            get { nextRaw == .unset ? nil : nextRaw }
            set { nextRaw = newValue ?? .unset }
        }
        var dueAt: Instant? {
            get { dueAtRaw == .unset ? nil : dueAtRaw }
            set { dueAtRaw = newValue ?? .unset }
        }
        /// Sequence numbers count up from 0 and never reach `UInt64.max`.
        var timerSeq: UInt64? {
            get { timerSeqRaw == .max ? nil : timerSeqRaw }
            set { timerSeqRaw = newValue ?? .max }
        }

        init(spec: JobSpec) {
            self.spec = spec
            self.timing = Timing(spec.schedule)
            self.needMet = Array(repeating: false, count: spec.needs.count)
        }

        var allNeedsMet: Bool { !needMet.contains(false) }
    }

    /// One run (all its attempts) from its start to its final outcome.
    struct RunState: Sendable {
        /// `claiming`: a fleet-locked fire waiting for its claim's answer (or, under
        /// `fleet_unavailable: wait`, for its next claim); nothing is recorded or launched yet.
        enum Phase: Hashable, Sendable { case claiming, launching, running, waitingRetry }
        let id: RunID
        let job: JobID
        /// The job's slot: stable while the job has active runs (a removed job's slot is freed
        /// only when its last run ends; a re-added job takes its slot back).
        let slot: Int
        /// The job's definition; updated by a reload that changes the job, so retries use it.
        var spec: JobSpec
        let trigger: RunTrigger
        let scheduledFor: Instant
        var attempt: Int
        var phase: Phase
        var pid: Int32?
        /// A `terminate` was sent: no retry, whatever the outcome.
        var terminating = false
        /// A `terminate` sent while the attempt was still `launching`: the runner may not know
        /// the run yet (its start is still being prepared off the actor) and ignores a stop for
        /// an unknown run, so the stop is sent again when the attempt reports it was launched.
        var terminateOnLaunch: (graceMs: Int64, reason: TerminationReason)?
        /// The heap entry of a waiting retry.
        var timerSeq: UInt64?
        /// The outcome of the latest finished attempt: the run's outcome if no attempt follows.
        var lastOutcome: RunOutcome = .interrupted
        /// Its process outlived the previous agent and is watched, not supervised: its end is
        /// reported without an exit status (``RunOutcome/unknown``).
        var adopted = false
        /// Adopted only to be killed (`on_agent_restart: kill`): it ends `interrupted`, and is
        /// retried like any run the agent's death interrupted.
        var killedAtRestart = false
        /// `lock: fleet` (see Scheduler+Fleet): the fleet-side state of this run.
        var fleet: FleetRun?
    }

    /// A fleet-locked run's claim, lease and renewal.
    struct FleetRun: Sendable {
        var key: FleetClaimKey
        /// The lease, once the claim is won (`nil` while claiming, after the lease was lost, or
        /// for a run started locally because the fleet was unavailable).
        var lease: FleetLease?
        /// A claim or renewal was sent and not answered yet.
        var inFlight = false
        /// When (this box's clock) the pending claim or renewal was sent.
        var sentAt: Instant
        /// Claims of this instant made so far (`fleet_unavailable: wait`).
        var claims = 1
        /// This box's own bound on the lease: when the last answered request was sent, plus the
        /// lease, minus a margin. Past it without a renewal, the run stops itself (a box cut off
        /// from the database must not run on once another box may have taken over).
        var localEnd: Instant?
        /// The heap entry of the renewal (or claim retry) timer.
        var timerSeq: UInt64?
        /// A takeover of a lost lease (`on_lost: rerun`): the superseded token.
        var rerunOf: Int64?
    }

    /// An entry of the wake-up heap: a job's next fire or a run's next attempt.
    ///
    /// Entries are never removed from the middle of the heap: re-arming bumps the owner's
    /// `timerSeq`, and stale entries are dropped when they surface (or in a compaction).
    struct Timer: Comparable, Sendable {
        /// `fleet`: a fleet run's claim retry or lease renewal; `lostScan`: the look for expired leases.
        enum Kind: Sendable {
            case fire(slot: Int)
            case retry(RunID)
            case fleet(RunID)
            case lostScan
        }
        var at: Instant
        var seq: UInt64
        var kind: Kind
        static func < (a: Timer, b: Timer) -> Bool { a.at != b.at ? a.at < b.at : a.seq < b.seq }
        static func == (a: Timer, b: Timer) -> Bool { a.at == b.at && a.seq == b.seq }
    }

    enum Lifecycle: Hashable, Sendable { case idle, running, stopping, stopped }
}

extension Instant {
    /// "Not armed" in ``Scheduler/JobState``: no fire is computed this far back (the calculators
    /// search forward from the present, and one-shot instants are years 0001 to 9999).
    fileprivate static let unset = Instant(unixMillis: .min)
}
