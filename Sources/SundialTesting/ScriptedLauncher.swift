import SundialCore
import SundialRuntime
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A launcher for scenario tests: no processes; each attempt "runs" for a scripted duration
/// of virtual time and ends with a scripted outcome.
///
/// The script is per job, consumed one attempt at a time; when it runs out (or for jobs not in
/// it), attempts succeed instantly. Time comes from the harness's ``VirtualClock``.
public final class ScriptedLauncher: JobLauncher {
    public struct Step: Sendable, Hashable {
        public var outcome: RunOutcome
        public var durationMs: Int64
        public init(_ outcome: RunOutcome, durationMs: Int64 = 0) {
            self.outcome = outcome
            self.durationMs = durationMs
        }
    }

    /// One attempt as the launcher saw it.
    public struct Launch: Sendable, Hashable {
        public var job: JobID
        public var runID: RunID
        public var attempt: Int
        public var trigger: RunTrigger
        public var scheduledFor: Instant
        public var at: Instant
        /// The instant the agent asked the process not to start before (a fire decided ahead).
        public var notBefore: Instant?
    }

    struct Pending {
        var endAt: Instant
        var outcome: RunOutcome
        var startedAt: Instant
        var promise: Promise<RunCompletion>
        var pid: Int32
    }

    struct State {
        var script: [JobID: [Step]]
        var pending: [RunID: Pending] = [:]
        var launches: [Launch] = []
        var resolved: [RunID] = []
        /// When the agent asked each terminated attempt to stop.
        var terminated: [RunID: Instant] = [:]
        var nextPid: Int32 = 1000
        /// The thread each attempt's launch ran on.
        var threads: [RunID: pthread_t] = [:]
    }

    private let clock: VirtualClock
    private let state: Mutex<State>

    public init(clock: VirtualClock, script: [JobID: [Step]] = [:]) {
        self.clock = clock
        state = Mutex(State(script: script))
    }

    public func launch(_ order: LaunchOrder, workdir: String, notBefore: Instant?, onOutput: @escaping OutputHandler) async -> LaunchedAttempt {
        let now = clock.wallNow()
        let promise = Promise<RunCompletion>()
        let pid: Int32 = state.withLock { s in
            var steps = s.script[order.job.id] ?? []
            let step = steps.isEmpty ? Step(.success(exitCode: 0)) : steps.removeFirst()
            s.script[order.job.id] = steps
            s.nextPid += 1
            s.threads[order.runID] = pthread_self()
            s.pending[order.runID] = Pending(
                endAt: now + .milliseconds(step.durationMs), outcome: step.outcome,
                startedAt: now, promise: promise, pid: s.nextPid)
            s.launches.append(
                Launch(
                    job: order.job.id, runID: order.runID, attempt: order.attempt, trigger: order.trigger,
                    scheduledFor: order.scheduledFor, at: now, notBefore: notBefore))
            return s.nextPid
        }
        onOutput(OutputLine(runID: order.runID, stream: .stdout, text: "\(order.job.id) attempt \(order.attempt)"))
        return LaunchedAttempt(pid: pid, completion: { await promise.value() })
    }

    /// The thread the launch of run `id` ran on (tests check where the agent prepares launches).
    public func launchThread(of id: RunID) -> pthread_t? { state.withLock { $0.threads[id] } }

    /// Stops an attempt now, as the real runner does: the outcome becomes `interrupted`.
    public func terminate(_ runID: RunID, grace: Duration) {
        let now = clock.wallNow()
        state.withLock { s in
            if s.terminated[runID] == nil { s.terminated[runID] = now }
            guard var p = s.pending[runID] else { return }
            p.outcome = .interrupted
            p.endAt = now
            s.pending[runID] = p
        }
    }

    /// When the agent first asked run `id`'s attempt to stop (a timeout, a shutdown).
    public func terminatedAt(_ id: RunID) -> Instant? { state.withLock { $0.terminated[id] } }

    /// The earliest scripted end of a running attempt.
    public var nextEnd: Instant? { state.withLock { $0.pending.values.map(\.endAt).min() } }

    /// Ends every attempt whose end is due at `now`; returns their ids.
    @discardableResult
    public func completeDue(at now: Instant) -> [RunID] {
        let due: [(RunID, Pending)] = state.withLock { s in
            let d = s.pending.filter { $0.value.endAt <= now }
            for (id, _) in d {
                s.pending[id] = nil
                s.resolved.append(id)
            }
            return d.sorted { $0.value.endAt < $1.value.endAt }
        }
        for (id, p) in due {
            let code: Int32? = p.outcome.exitCode
            p.promise.fulfill(
                RunCompletion(
                    runID: id, pid: p.pid, outcome: p.outcome, exitCode: code,
                    signal: p.outcome.signalNumber, durationMs: (now - p.startedAt).milliseconds))
        }
        return due.map(\.0)
    }

    public var launches: [Launch] { state.withLock { $0.launches } }
    public var launchCount: Int { state.withLock { $0.launches.count } }
    public var resolvedCount: Int { state.withLock { $0.resolved.count } }
    public var runningCount: Int { state.withLock { $0.pending.count } }
    public var resolved: [RunID] { state.withLock { $0.resolved } }
}

/// A one-shot value that async code can await.
final class Promise<T: Sendable>: Sendable {
    private let state = Mutex<(value: T?, waiters: [CheckedContinuation<T, Never>])>((nil, []))

    func fulfill(_ v: T) {
        let waiters = state.withLock { s -> [CheckedContinuation<T, Never>] in
            guard s.value == nil else { return [] }
            s.value = v
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume(returning: v) }
    }

    func value() async -> T {
        await withCheckedContinuation { c in
            let ready: T? = state.withLock { s in
                if let v = s.value { return v }
                s.waiters.append(c)
                return nil
            }
            if let ready { c.resume(returning: ready) }
        }
    }
}

/// Records what the agent arms, instead of sleeping.
public final class RecordingAlarm: WakeAlarm {
    private let armed = Mutex<Instant?>(nil)
    public init() {}
    public func arm(at instant: Instant?) { armed.withLock { $0 = instant } }
    public var armedAt: Instant? { armed.withLock { $0 } }
}
