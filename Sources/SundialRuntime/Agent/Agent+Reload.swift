import CSundialShim
import OrderedCollections
import SundialConfig
import SundialCore

/// What a reload did (`sundial reload`).
public enum ReloadOutcome: Sendable, Hashable {
    /// A new valid set is running: its revision and what changed against the previous one.
    case loaded(revision: String, added: [JobID], removed: [JobID], changed: [JobID])
    /// The files describe the set already running.
    case unchanged(revision: String)
    /// The new set is invalid; the last good set keeps running. One `file:line:column: message`
    /// per error (at most 1,000).
    case rejected(errors: [String], runningRevision: String)
    /// The agent is not running (starting or stopping).
    case notRunning
}

extension Agent {
    /// Reloads now and waits for the outcome: the same path as SIGHUP and file changes (one load
    /// at a time; a request during a load waits for the next one, which sees its files).
    public func reloadNow(reason: String) async -> ReloadOutcome {
        // All in the continuation's body, which runs on the actor with nothing in between: a
        // phase checked before the `await` could be stale by then (a stop in between would
        // already have resumed the waiters), as in ``waitUntilStopped()``.
        await withCheckedContinuation { c in
            guard phase == .running else { return c.resume(returning: .notRunning) }
            reloadWaiters.append((reloadsStarted + 1, c))
            beginReload(reason: reason)
        }
    }

    /// Resumes the `reloadNow` callers waiting for load number `upTo` or an earlier one.
    func resumeReloadWaiters(upTo load: Int, with outcome: ReloadOutcome) {
        guard !reloadWaiters.isEmpty else { return }
        var waiting: [(target: Int, continuation: CheckedContinuation<ReloadOutcome, Never>)] = []
        for w in reloadWaiters {
            if w.target <= load { w.continuation.resume(returning: outcome) } else { waiting.append(w) }
        }
        reloadWaiters = waiting
    }

    /// Starts a reload unless one is running; a request during a reload runs one more after it,
    /// so the last change is never missed and a burst of requests is at most two loads.
    func beginReload(reason: String) {
        guard phase == .running else { return }
        let nowMono = clock.monotonicNow()
        if reloadInFlight {
            guard nowMono - reloadStartedMono > settings.reloadDeadlineMs else {
                reloadPending = true
                return
            }
            // Stuck: give up on it (its result, should it ever come, is dropped) and load again.
            let abandoned = reloadsStarted
            emit(
                .configReloadAbandoned(
                    reason: reason, runningMs: nowMono - reloadStartedMono,
                    runningRevision: jobSet.revision, at: clock.wallNow()))
            resumeReloadWaiters(
                upTo: abandoned,
                with: .rejected(
                    errors: ["the load did not finish within \(settings.reloadDeadlineMs / 1000) s and was abandoned"],
                    runningRevision: jobSet.revision))
            reloadPending = false
        }
        reloadInFlight = true
        reloadsStarted += 1
        reloadStartedMono = nowMono
        let token = reloadsStarted
        for o in reloadObservers { o() }
        let load = loadConfiguration
        // Loading (a child process that reads, parses, validates) happens off the actor: a large
        // set must not delay a due fire. On a thread of its own rather than the task pool: it
        // blocks until the child answers or its deadline passes.
        let deliver: @Sendable (ConfigLoadResult) -> Void = { result in
            let handed = LoadAnswer(result)
            Task { await self.finishReload(handed, reason: reason, token: token) }
        }
        let started = DetachedThread.run("sundial-load") { deliver(load()) }
        if !started { Task.detached { deliver(load()) } }
    }

    func finishReload(_ answer: LoadAnswer, reason: String, token: Int) {
        // The answer of a load abandoned meanwhile: a newer one is in flight or done. Its pages
        // go back all the same.
        if token == reloadsStarted, let result = answer.take() {
            apply(result, reason: reason)
        }
        answer.drop()
        // The answer's parse (freed on the load thread), the result (a rejected set's
        // diagnostics can be tens of MB: just dropped, not held by the task that brought it)
        // and the replaced set (freed when `apply` returned) are garbage now: give their pages
        // back, so that the agent's memory after a reload is what the running set needs, not the
        // high-water mark of the largest set it ever held.
        _ = sundial_trim_heap()
    }

    private func apply(_ result: ConfigLoadResult, reason: String) {
        reloadInFlight = false
        defer {
            if reloadPending {
                reloadPending = false
                beginReload(reason: "changed during reload")
            }
        }
        let load = reloadsStarted
        guard phase == .running else { return resumeReloadWaiters(upTo: load, with: .notRunning) }
        let now = schedulerNow
        guard result.isValid, let set = result.jobSet else {
            // Design §2: an invalid set changes nothing; the last good set keeps running.
            let errors = result.diagnostics.filter { $0.severity == .error }.prefix(1000).map { d in
                LogRecord.ConfigRejected.Problem(
                    file: d.location.file, line: d.location.line, column: d.location.column,
                    message: d.fullMessage)
            }
            emit(.configRejected(.init(reason: reason, errors: errors, runningRevision: jobSet.revision, at: now)))
            // The reply is printed on the terminal of whoever ran `sundial reload`.
            let lines = result.diagnostics.filter { $0.severity == .error }.prefix(1000).map { d in
                TerminalText.escaped("\(d.location.file):\(d.location.line):\(d.location.column): \(d.fullMessage)")
            }
            return resumeReloadWaiters(upTo: load, with: .rejected(errors: lines, runningRevision: jobSet.revision))
        }
        guard set.revision != jobSet.revision || set != jobSet else {
            emit(.configUnchanged(reason: reason, revision: set.revision, at: now))
            forgetSecretsOfRemovedJobs()
            return resumeReloadWaiters(upTo: load, with: .unchanged(revision: set.revision))
        }
        let old = jobSet
        jobSet = set
        let d = Self.difference(old: old, new: set)
        emit(configLoadedEvent(new: set, difference: d, at: now, reason: reason))
        perform(scheduler.handle(.configReplaced(set), at: now))
        forgetSecretsOfRemovedJobs()
        resumeReloadWaiters(upTo: load, with: .loaded(revision: set.revision, added: d.added, removed: d.removed, changed: d.changed))
    }

    /// A removed job's secret values stay masked while a run of it may still print them; after
    /// that they are dropped, so that jobs renamed over an agent's life do not grow the masker
    /// (and the cost of masking each logged line) without bound. A removed job with a run still
    /// going keeps them until a later reload (changed or not) finds it without one.
    func forgetSecretsOfRemovedJobs() {
        let running = Set(activeRuns.values.map(\.job))
        let jobs = jobSet.jobs
        log.masker.keepOwners { jobs[$0] != nil || running.contains($0) }
    }

    /// What a reload changed: the jobs of `new` that `old` lacks, those `old` had and `new`
    /// lacks, and those in both that differ.
    typealias Difference = (added: [JobID], removed: [JobID], changed: [JobID])

    /// The ``Difference`` of two sets. A reload usually keeps the jobs in their places (the same
    /// files, read in the same order), so each job is first compared with the one at its own
    /// index in `old`, and looked up by id only when that is another job: with 1,000 jobs, two
    /// hashed lookups a job were most of this function's 1.5 M instructions a reload.
    static func difference(old: JobSet?, new: JobSet) -> Difference {
        guard let old else { return (Array(new.jobs.keys), [], []) }
        var added: [JobID] = []
        var removed: [JobID] = []
        var changed: [JobID] = []
        let (oldKeys, oldJobs) = (old.jobs.keys, old.jobs.values)
        var matched = 0
        for (i, (id, job)) in new.jobs.enumerated() {
            let before: JobSpec
            if i < oldKeys.count, oldKeys[i] == id {
                before = oldJobs[i]
            } else if let j = old.jobs.index(forKey: id) {
                before = oldJobs[j]
            } else {
                added.append(id)
                continue
            }
            matched += 1
            if before != job { changed.append(id) }
        }
        // Each job of `new` matched a different one of `old` (ids are unique in both), so when
        // every job of `old` was matched none was removed.
        if matched < oldKeys.count {
            for id in oldKeys where new.jobs.index(forKey: id) == nil { removed.append(id) }
        }
        return (added, removed, changed)
    }

    /// `config.loaded` (design §3): the revision and what changed against the running set.
    func configLoadedEvent(new: JobSet, difference d: Difference, at now: Instant, reason: String? = nil) -> LogRecord {
        .configLoaded(
            .init(
                revision: new.revision, files: new.files.count, jobs: new.jobs.count, added: d.added,
                removed: d.removed, changed: d.changed, reason: reason, at: now))
    }
}

/// A load's result on its way from the load thread to the agent. The task that carries it keeps
/// this box alive until the task ends, after the agent's heap trim; the box lets the agent drop
/// the result itself before trimming, so a large rejected set's diagnostics are given back with
/// the rest (seen: RssAnon +10-28 MiB after the hostile-input suite when the last answer
/// outlived the trim).
final class LoadAnswer: @unchecked Sendable {
    // Touched by the load thread (init) and then only by the agent's actor.
    private var result: ConfigLoadResult?
    init(_ result: ConfigLoadResult) { self.result = result }
    func take() -> ConfigLoadResult? {
        defer { result = nil }
        return result
    }
    func drop() { result = nil }
}
