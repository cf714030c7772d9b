import SundialCore
import Synchronization

/// Who follows which run (`trigger --wait`, `trigger --follow`, `logs -f`), and the fan-out of
/// that run's output and end to their ``ControlStream``s.
///
/// Fed from three places: output lines from the runner's threads (``output(_:job:attempt:)``),
/// the agent's events on its actor (``observe(_:)``: attempts starting), and the scheduler's
/// final record of a run (``runEnded(_:outcome:at:)``; an attempt's `run.finished` is not the end
/// when a retry follows). With no follower, each call is one atomic load: following costs
/// nothing when nobody follows.
///
/// Bounded: at most ``maxFollowers`` followers at once; a follower whose client left or fell
/// behind is forgotten the next time anything is published. When all are taken, a newcomer
/// makes room by dropping the oldest `logs -f` still waiting for a run to start (64 of them,
/// kept alive by keepalives, locked out every `trigger --wait`); only when none waits is the
/// newcomer refused. A follower may
/// wait for a run that is not yet started (``subscribe(job:runID:excluding:startedAt:output:stream:)``
/// with no run id): it takes the first run of its job that starts, among those not excluded.
public final class RunWatchHub: Sendable {
    /// Far above what operators run at once; low enough that fan-out stays a short loop.
    public static let maxFollowers = 64

    private struct Follower {
        let stream: ControlStream
        let job: JobID
        var runID: RunID?
        let excluded: Set<RunID>
        var startedAt: Instant?
        let output: Bool
        /// A `logs -f` that found no run to follow: it may be dropped for a newcomer while it
        /// still waits.
        let yields: Bool
        var attempts: Int = 0
        var announced: Int = 0
    }

    private struct State {
        var followers: [UInt64: Follower] = [:]
        var next: UInt64 = 0
    }

    private let state = Mutex(State())
    private let count = Atomic<Int>(0)

    public init() {}

    /// Followers now (closed ones not yet forgotten included).
    public var followerCount: Int { count.load(ordering: .acquiring) }

    /// Adds a follower of run `runID` of `job`, or of the next run of `job` not in `excluding`
    /// when `runID` is nil. Returns a token for ``bind(_:to:startedAt:)`` and ``cancel(_:)``,
    /// or nil when ``maxFollowers`` are following already.
    ///
    /// - Parameter yields: whether this follower, while it waits for a run to start, may be
    ///   dropped to make room for a newcomer (`logs -f` with no run to follow yet).
    public func subscribe(
        job: JobID, runID: RunID?, excluding: Set<RunID> = [], startedAt: Instant? = nil, output: Bool,
        stream: ControlStream, yields: Bool = false
    ) -> UInt64? {
        let (token, dropped) = state.withLock { s -> (UInt64?, ControlStream?) in
            s.followers = s.followers.filter { $0.value.stream.isOpen }
            var dropped: ControlStream?
            if s.followers.count >= Self.maxFollowers {
                let waiting = s.followers.filter { $0.value.yields && $0.value.runID == nil }.keys.min()
                guard let waiting else {
                    count.store(s.followers.count, ordering: .releasing)
                    return (nil, nil)
                }
                dropped = s.followers.removeValue(forKey: waiting)?.stream
            }
            s.next &+= 1
            s.followers[s.next] = Follower(
                stream: stream, job: job, runID: runID, excluded: excluding, startedAt: startedAt,
                output: output, yields: yields)
            count.store(s.followers.count, ordering: .releasing)
            return (s.next, dropped)
        }
        dropped?.finish(
            with: .dropped(
                reason:
                    "too many clients are following runs (at most \(Self.maxFollowers)); this one waited longest for a run to start and made room for another"
            ))
        return token
    }

    /// Ties a waiting follower to a run (a trigger learned its run's id).
    public func bind(_ token: UInt64, to runID: RunID, startedAt: Instant?) {
        state.withLock { s in
            guard var f = s.followers[token] else { return }
            f.runID = runID
            if f.startedAt == nil { f.startedAt = startedAt }
            s.followers[token] = f
        }
    }

    /// Forgets a follower (its trigger did not start a run).
    public func cancel(_ token: UInt64) {
        state.withLock { s in
            s.followers[token] = nil
            count.store(s.followers.count, ordering: .releasing)
        }
    }

    /// A line a run printed (any thread). `mask` hides secrets as the event log does.
    public func output(_ line: OutputLine, job: JobID, attempt: Int, mask: (String) -> String = { $0 }) {
        guard count.load(ordering: .acquiring) > 0 else { return }
        var masked: String?
        publish { f in
            guard claim(&f, job: job, runID: line.runID) else { return nil }
            var out: [ControlStreamMessage] = []
            if attempt > f.announced {
                f.announced = attempt
                f.attempts = max(f.attempts, attempt)
                out.append(.started(runID: line.runID, attempt: attempt))
            }
            if f.output {
                if masked == nil { masked = mask(line.text) }
                out.append(
                    .output(
                        runID: line.runID, attempt: attempt, stream: line.stream.rawValue, line: masked!,
                        truncated: line.truncated))
            }
            return out
        }
    }

    /// A record of the agent (on its actor): `run.started` announces an attempt and dates the run.
    public func observe(_ record: LogRecord) {
        guard count.load(ordering: .acquiring) > 0, case let .runStarted(r) = record else { return }
        let runID = r.runID
        publish { f in
            guard claim(&f, job: r.job, runID: runID) else { return nil }
            if r.attempt == 1, f.startedAt == nil { f.startedAt = r.at }
            f.attempts = max(f.attempts, r.attempt)
            guard r.attempt > f.announced else { return [] }
            f.announced = r.attempt
            return [.started(runID: runID, attempt: r.attempt)]
        }
    }

    /// The run is over (its final outcome, recorded by the scheduler): each of its followers gets
    /// its last message and is forgotten.
    public func runEnded(_ runID: RunID, outcome: RunOutcome, at: Instant) {
        guard count.load(ordering: .acquiring) > 0 else { return }
        let ended: [Follower] = state.withLock { s in
            let hits = s.followers.filter { $0.value.runID == runID }
            for key in hits.keys { s.followers[key] = nil }
            count.store(s.followers.count, ordering: .releasing)
            return Array(hits.values)
        }
        for f in ended {
            let duration = f.startedAt.map { max(0, at.unixMillis - $0.unixMillis) }
            f.stream.finish(
                with: .ended(
                    .init(
                        runID: runID, job: f.job, outcome: outcome, attempts: max(1, f.attempts),
                        durationMs: duration)))
        }
    }

    /// Whether a run belongs to follower `f`, binding a waiting follower to it.
    private func claim(_ f: inout Follower, job: JobID, runID: RunID) -> Bool {
        if let bound = f.runID { return bound == runID }
        guard f.job == job, !f.excluded.contains(runID) else { return false }
        f.runID = runID
        return true
    }

    /// Runs `body` on every follower under the lock (it may update the follower and returns what
    /// to send), then sends outside the lock; forgets followers that stopped taking messages.
    private func publish(_ body: (inout Follower) -> [ControlStreamMessage]?) {
        let sends: [(ControlStream, [ControlStreamMessage])] = state.withLock { s in
            var out: [(ControlStream, [ControlStreamMessage])] = []
            for key in Array(s.followers.keys) {
                guard var f = s.followers[key] else { continue }
                guard f.stream.isOpen else {
                    s.followers[key] = nil
                    continue
                }
                if let messages = body(&f) {
                    s.followers[key] = f
                    if !messages.isEmpty { out.append((f.stream, messages)) }
                }
            }
            count.store(s.followers.count, ordering: .releasing)
            return out
        }
        for (stream, messages) in sends {
            for m in messages { stream.send(m) }
        }
    }
}
