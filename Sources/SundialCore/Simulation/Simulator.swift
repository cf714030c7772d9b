import HeapModule

/// One scripted attempt for the ``Simulator``: how it ends and how long it runs.
public struct SimulatedAttempt: Sendable, Hashable {
    public var outcome: RunOutcome
    public var durationMs: Int64
    public init(_ outcome: RunOutcome, durationMs: Int64 = 0) {
        self.outcome = outcome
        self.durationMs = durationMs
    }
    /// Exit 0 at once: what every attempt does unless scripted otherwise.
    public static let instantSuccess = SimulatedAttempt(.success(exitCode: 0))
}

/// Something that happens to the simulated agent at a virtual wall-clock instant.
public struct SimulatedInput: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// An event for the scheduler (trigger, reload, shutdown…).
        case event(SchedulerEvent)
        /// The wall clock steps by this many milliseconds (negative: backward), as NTP would;
        /// running processes keep their real durations.
        case stepClock(byMs: Int64)
    }
    public var at: Instant
    public var kind: Kind
    public init(at: Instant, _ kind: Kind) {
        self.at = at
        self.kind = kind
    }
}

/// Drives a ``Scheduler`` on virtual time, with scripted job outcomes instead of processes.
///
/// It is the agent with the processes and the clock replaced: the same scheduler, the same
/// actions, so what it reports is what the agent would log (`ts` = virtual time). It powers
/// `sundial simulate`, the scenario tests and the `simulate` benchmark.
///
/// The script gives, per job, the attempts in the order they happen; the last entry repeats
/// (so `[failure]` means "always fails"); unscripted jobs succeed instantly. An attempt longer
/// than the job's `timeout` ends as `timeout` at the timeout. A `terminate` ends the attempt at
/// once with signal 15 (SIGTERM obeyed). Launch failures are reported without a launch.
public struct Simulator: Sendable {
    public private(set) var scheduler: Scheduler
    public var script: [JobID: [SimulatedAttempt]]
    public private(set) var now: Instant

    private var inputs: [SimulatedInput]
    private var nextInput = 0
    private var scriptCursor: [JobID: Int] = [:]
    private var processes = Heap<ProcessEnd>()
    /// The live process of each running attempt (its `ProcessEnd.seq`), for `terminate`.
    private var live: [RunID: UInt64] = [:]
    private var seq: UInt64 = 0
    private var nextPid: Int32 = 1000
    private var inbox: [SchedulerEvent] = []

    private struct ProcessEnd: Comparable, Sendable {
        var at: Instant
        var seq: UInt64
        var runID: RunID
        var attempt: Int
        var outcome: RunOutcome
        var durationMs: Int64
        static func < (a: ProcessEnd, b: ProcessEnd) -> Bool { a.at != b.at ? a.at < b.at : a.seq < b.seq }
        static func == (a: ProcessEnd, b: ProcessEnd) -> Bool { a.seq == b.seq }
    }

    /// - Parameters:
    ///   - jobs: the configuration to simulate.
    ///   - calculator: fire calculation (`CalendarFireCalculator` for real schedules).
    ///   - script: scripted attempts per job (see the type's documentation).
    ///   - inputs: timed inputs (clock steps, triggers, reloads, shutdown), in time order.
    ///   - seed: the seed of the jitter and run-id randomness: same seed, same output.
    ///   - options: the scheduler's options; by default without `persist` actions (there is
    ///     no state store to feed), pass `recordsState: true` to observe them.
    public init(
        jobs: JobSet, calculator: any FireCalculating, script: [JobID: [SimulatedAttempt]] = [:],
        inputs: [SimulatedInput] = [], seed: UInt64 = 0x5EED,
        options: SchedulerOptions = SchedulerOptions(recordsState: false)
    ) {
        scheduler = Scheduler(jobs: jobs, calculator: calculator, random: SeededRandom(seed: seed), options: options)
        self.script = script
        self.inputs = inputs.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }.map(\.element)
        now = Instant(unixMillis: 0)
    }

    /// Starts the agent at `from` and runs until nothing more happens at or before `to`.
    /// Every action is passed to `observe` with the virtual instant it happened at.
    ///
    /// - Parameters:
    ///   - restored: what the state store would hand the agent on start.
    ///   - reboot: whether `@reboot` jobs fire at `from`.
    public mutating func run(
        from: Instant, to: Instant, restored: RestoredState = RestoredState(), reboot: Bool = true,
        observe: (Instant, SchedulerAction) -> Void
    ) {
        now = from
        deliver(.start(restored: restored, reboot: reboot), observe)
        while true {
            var t = scheduler.nextWake
            if let p = processes.min?.at { t = t.map { min($0, p) } ?? p }
            if nextInput < inputs.count { t = t.map { min($0, inputs[nextInput].at) } ?? inputs[nextInput].at }
            guard let next = t, next <= to else { break }
            now = max(now, next)
            while let p = processes.min, p.at <= now {
                _ = processes.removeMin()
                guard live[p.runID] == p.seq else { continue }
                live[p.runID] = nil
                deliver(.attemptFinished(runID: p.runID, attempt: p.attempt, outcome: p.outcome, durationMs: p.durationMs), observe)
            }
            while nextInput < inputs.count, inputs[nextInput].at <= now {
                let input = inputs[nextInput]
                nextInput += 1
                switch input.kind {
                case let .event(e): deliver(e, observe)
                case let .stepClock(delta): stepClock(byMs: delta, observe)
                }
            }
            if let w = scheduler.nextWake, w <= now { deliver(.tick, observe) }
            if scheduler.isStopped { break }
        }
        now = max(now, to)
    }

    /// The events the agent would log between `from` and `to`.
    public mutating func events(
        from: Instant, to: Instant, restored: RestoredState = RestoredState(),
        reboot: Bool = true
    ) -> [Event] {
        var events: [Event] = []
        run(from: from, to: to, restored: restored, reboot: reboot) { _, action in
            if case let .emit(r) = action { events.append(r.event) }
        }
        return events
    }

    private mutating func stepClock(byMs delta: Int64, _ observe: (Instant, SchedulerAction) -> Void) {
        let from = now
        now = Instant(unixMillis: now.unixMillis &+ delta)
        // Processes run in real time: their ends move with the wall clock.
        processes = Heap(
            processes.unordered.map {
                var p = $0
                p.at = Instant(unixMillis: p.at.unixMillis &+ delta)
                return p
            })
        deliver(.clockStepped(fromWall: from, toWall: now), observe)
    }

    /// Hands an event to the scheduler and carries out its actions, including the events
    /// they cause at once (launches, launch failures), until nothing is left.
    private mutating func deliver(_ event: SchedulerEvent, _ observe: (Instant, SchedulerAction) -> Void) {
        inbox.append(event)
        var i = 0
        while i < inbox.count {
            let actions = scheduler.handle(inbox[i], at: now)
            i += 1
            for action in actions {
                observe(now, action)
                perform(action)
            }
        }
        inbox.removeAll(keepingCapacity: true)
    }

    private mutating func perform(_ action: SchedulerAction) {
        switch action {
        case let .launch(order):
            let step = nextAttempt(of: order.job.id)
            if case .launchFailed = step.outcome {
                inbox.append(.attemptFinished(runID: order.runID, attempt: order.attempt, outcome: step.outcome, durationMs: 0))
                return
            }
            nextPid = nextPid == Int32.max ? 1000 : nextPid + 1
            inbox.append(.attemptLaunched(runID: order.runID, attempt: order.attempt, pid: nextPid))
            var duration = max(0, step.durationMs)
            var outcome = step.outcome
            if let limit = order.job.timeoutMs, duration > limit {
                duration = limit
                outcome = .timeout
            }
            seq &+= 1
            live[order.runID] = seq
            processes.insert(
                ProcessEnd(
                    at: Instant(unixMillis: now.unixMillis &+ duration), seq: seq, runID: order.runID,
                    attempt: order.attempt, outcome: outcome, durationMs: duration))
        case let .terminate(id, _, _):
            guard live[id] != nil else { return }
            // SIGTERM is obeyed at once; the old end is superseded by this one.
            let started = processes.unordered.first { $0.seq == live[id] }
            seq &+= 1
            live[id] = seq
            let ran = started.map { max(0, $0.durationMs - ($0.at.unixMillis - now.unixMillis)) } ?? 0
            processes.insert(
                ProcessEnd(
                    at: now, seq: seq, runID: id, attempt: started?.attempt ?? 1,
                    outcome: .signal(15), durationMs: ran))
        default:
            break
        }
    }

    private mutating func nextAttempt(of job: JobID) -> SimulatedAttempt {
        guard let steps = script[job], !steps.isEmpty else { return .instantSuccess }
        let i = scriptCursor[job, default: 0]
        scriptCursor[job] = i + 1
        return steps[min(i, steps.count - 1)]
    }
}
