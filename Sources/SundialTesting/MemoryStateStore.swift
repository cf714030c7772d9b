import SundialCore
import Synchronization

/// A ``StateStore`` in memory, for scenario tests and `sundial simulate`. It commits every
/// change at once (the durability contract holds trivially) and otherwise behaves exactly as
/// `SQLiteStateStore`: the runtime tests run one suite against both.
public final class MemoryStateStore: StateStore {
    private struct State {
        var lastFired: [JobID: Instant] = [:]
        var runs: [RunID: RunSummary] = [:]
        /// The order runs were recorded in: SQLiteStateStore's row keys, which break ties
        /// between runs started in the same millisecond (the later recorded is newer).
        var recorded: [RunID: Int] = [:]
        var ledger: [LedgerKey: LedgerEntry] = [:]
        var lastSeen: Instant?
        var bootID: String?
        var paused: Set<JobID> = []
        /// Stored output by run, then attempt.
        var outputs: [RunID: [Int: RunOutputRecord]] = [:]
        /// The recorded process of each run's current attempt (``StateChange/processStarted(runID:attempt:identity:)``).
        var processes: [RunID: ProcessIdentity] = [:]
        /// Fires owed to the next start (``StateChange/owed(job:scheduledFor:)``), by job.
        var owed: [JobID: Set<Instant>] = [:]
    }

    private struct LedgerKey: Hashable {
        var job: JobID
        var scheduledFor: Instant
    }

    public let retention: StateRetention
    private let state = Mutex(State())

    public init(retention: StateRetention = .default) { self.retention = retention }

    /// How many changes were applied so far (tests assert on it).
    public var appliedCount: Int { applied.withLock { $0 } }
    private let applied = Mutex(0)

    /// How many `apply` calls carried a change that must be durable before it returns: each is
    /// one commit in `SQLiteStateStore`, so tests pin with it how the agent batches the marks
    /// of one instant's fires.
    public var durableApplyCount: Int { durableApplies.withLock { $0 } }
    private let durableApplies = Mutex(0)

    public func restore() throws -> RestoredState {
        state.withLock { s in
            let inFlight = s.runs.values.filter { $0.finishedAt == nil }
                .sorted { ($0.startedAt, $0.id) < ($1.startedAt, $1.id) }
                .map {
                    RunRecord(
                        id: $0.id, job: $0.job, trigger: $0.trigger, scheduledFor: $0.scheduledFor, startedAt: $0.startedAt,
                        attempt: max(1, $0.attempts), process: s.processes[$0.id])
                }
            return RestoredState(
                lastFired: s.lastFired, inFlight: inFlight, lastSeen: s.lastSeen, bootID: s.bootID, paused: s.paused,
                owed: s.owed.mapValues { $0.sorted() })
        }
    }

    /// While set, ``apply(_:)`` and ``flush()`` record nothing and throw this message, as
    /// `SQLiteStateStore` does on a full disk or a state file damaged under the agent; like it,
    /// the changes stay queued, in order, and are recorded by the first write that succeeds.
    public func failWrites(with message: String?) { failing.withLock { $0 = message } }
    private let failing = Mutex<String?>(nil)
    private let queued = Mutex<[StateChange]>([])

    /// The next ``apply(_:)`` of changes that need no durability records them and then throws
    /// `message`: `SQLiteStateStore` only queues those, and reports an earlier background
    /// commit's failure, once, to whichever `apply` comes next.
    public func reportOnNextQueuedApply(_ message: String) { earlierFailure.withLock { $0 = message } }
    private let earlierFailure = Mutex<String?>(nil)

    public struct WriteFailure: Error, CustomStringConvertible {
        public var description: String
    }

    public func apply(_ changes: [StateChange]) throws {
        if let message = failing.withLock({ $0 }) {
            queued.withLock { $0 += changes }
            throw WriteFailure(description: message)
        }
        let reported =
            changes.contains(where: \.isDurableOnApply)
            ? nil
            : earlierFailure.withLock { e in
                defer { e = nil }
                return e
            }
        let changes =
            queued.withLock { q in
                defer { q = [] }
                return q
            } + changes
        applied.withLock { $0 += changes.count }
        if changes.contains(where: \.isDurableOnApply) { durableApplies.withLock { $0 += 1 } }
        state.withLock { s in
            for change in changes {
                switch change {
                case let .fired(job, t):
                    s.lastFired[job] = max(s.lastFired[job] ?? t, t)
                case let .runStarted(r):
                    guard s.runs[r.id] == nil else { continue }
                    s.runs[r.id] = RunSummary(id: r.id, job: r.job, trigger: r.trigger, scheduledFor: r.scheduledFor, startedAt: r.startedAt)
                    s.recorded[r.id] = s.recorded.count
                case let .attemptStarted(id, attempt, pid, at):
                    guard var run = s.runs[id] else { continue }
                    run.attempts = max(run.attempts, attempt)
                    // As SQLite does (WriteSQL.runStartedAt): only a start 100 ms or more late.
                    if attempt == 1, pid != nil, abs(at.unixMillis - run.startedAt.unixMillis) >= 100 { run.startedAt = at }
                    s.runs[id] = run
                case let .attemptFinished(id, attempt, _, _, _):
                    guard var run = s.runs[id] else { continue }
                    run.attempts = max(run.attempts, attempt)
                    s.runs[id] = run
                    s.processes[id] = nil
                case let .processStarted(id, attempt, identity):
                    guard var run = s.runs[id] else { continue }
                    run.attempts = max(run.attempts, attempt)
                    s.runs[id] = run
                    s.processes[id] = identity
                case let .runFinished(id, outcome, at):
                    s.processes[id] = nil
                    guard var run = s.runs[id] else { continue }
                    run.finishedAt = at
                    run.outcome = outcome
                    s.runs[id] = run
                case let .planned(entry):
                    s.ledger[LedgerKey(job: entry.job, scheduledFor: entry.scheduledFor)] = entry
                case let .bootRecorded(bootID):
                    s.bootID = bootID
                case let .pauseChanged(job, paused):
                    if paused { s.paused.insert(job) } else { s.paused.remove(job) }
                case let .owed(job, t):
                    s.owed[job, default: []].insert(t)
                case let .owedSettled(job):
                    s.owed[job] = nil
                case let .outputStored(record):
                    guard let run = s.runs[record.runID] else { continue }
                    s.outputs[record.runID, default: [:]][record.attempt] = record
                    // Per job, output is kept for the newest runs only.
                    let kept = s.runs.values.filter { $0.job == run.job && s.outputs[$0.id] != nil }.sorted(by: Self.newestFirst(s.recorded))
                    for old in kept.dropFirst(retention.maxOutputRunsPerJob) { s.outputs[old.id] = nil }
                }
            }
        }
        if let reported { throw WriteFailure(description: reported) }
    }

    public func flush() throws {
        if let message = failing.withLock({ $0 }) { throw WriteFailure(description: message) }
        if queued.withLock({ !$0.isEmpty }) { try apply([]) }
    }

    public func history(job: JobID, limit: Int) throws -> [RunSummary] {
        guard limit > 0 else { return [] }
        return state.withLock { s in
            Array(s.runs.values.filter { $0.job == job }.sorted(by: Self.newestFirst(s.recorded)).prefix(limit))
        }
    }

    public func latestRuns() throws -> [JobID: RunSummary] {
        state.withLock { s in
            Dictionary(grouping: s.runs.values, by: \.job).compactMapValues { $0.sorted(by: Self.newestFirst(s.recorded)).first }
        }
    }

    public func ledger(job: JobID, since: Instant) throws -> [LedgerEntry] {
        state.withLock { s in
            s.ledger.values.filter { $0.job == job && $0.scheduledFor >= since }.sorted { $0.scheduledFor < $1.scheduledFor }
        }
    }

    public func prune(now: Instant) throws {
        let cutoff = now - retention.maxAge
        state.withLock { s in
            s.runs = s.runs.filter { $0.value.finishedAt == nil || $0.value.startedAt >= cutoff }
            for (_, runs) in Dictionary(grouping: s.runs.values, by: \.job) {
                for run in runs.sorted(by: Self.newestFirst(s.recorded)).dropFirst(retention.maxRunsPerJob) where run.finishedAt != nil {
                    s.runs[run.id] = nil
                }
            }
            s.outputs = s.outputs.filter { s.runs[$0.key] != nil }
            // All output together within the byte budget: the oldest runs' go first.
            var total = s.outputs.values.reduce(0) { $0 + $1.values.reduce(0) { $0 + $1.text.utf8.count } }
            for run in s.runs.values.filter({ s.outputs[$0.id] != nil }).sorted(by: Self.newestFirst(s.recorded)).reversed()
            where total > retention.maxOutputBytes {
                total -= s.outputs[run.id]?.values.reduce(0) { $0 + $1.text.utf8.count } ?? 0
                s.outputs[run.id] = nil
            }
            s.ledger = s.ledger.filter { $0.key.scheduledFor >= cutoff }
            for (_, keys) in Dictionary(grouping: s.ledger.keys, by: \.job) {
                for key in keys.sorted(by: { $0.scheduledFor > $1.scheduledFor }).dropFirst(retention.maxLedgerEntriesPerJob) {
                    s.ledger[key] = nil
                }
            }
        }
    }

    public func markAlive(now: Instant) throws { state.withLock { $0.lastSeen = now } }

    public func output(run id: RunID) throws -> [RunOutputRecord] {
        state.withLock { s in (s.outputs[id] ?? [:]).values.sorted { $0.attempt < $1.attempt } }
    }

    // MARK: Notification deliveries

    private struct Notifications {
        var rows: [Int64: StoredNotification] = [:]
        var nextID: Int64 = 1
    }
    private let notifications = Mutex(Notifications())

    public func enqueueNotification(payload: String, at: Instant, capacity: Int) throws -> Int64? {
        notifications.withLock { n in
            guard n.rows.count < capacity else { return nil }
            let id = n.nextID
            n.nextID += 1
            n.rows[id] = StoredNotification(id: id, payload: payload, enqueuedAt: at)
            return id
        }
    }

    public func pendingNotifications(after: Int64, limit: Int) throws -> [StoredNotification] {
        guard limit > 0 else { return [] }
        return notifications.withLock { n in Array(n.rows.values.filter { $0.id > after }.sorted { $0.id < $1.id }.prefix(limit)) }
    }

    public func deleteNotification(id: Int64) throws { notifications.withLock { _ = $0.rows.removeValue(forKey: id) } }

    private static func newestFirst(_ recorded: [RunID: Int]) -> (RunSummary, RunSummary) -> Bool {
        { a, b in (a.startedAt, recorded[a.id] ?? 0) > (b.startedAt, recorded[b.id] ?? 0) }
    }
}
