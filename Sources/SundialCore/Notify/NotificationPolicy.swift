/// Decides which run ends produce which notifications: pure, so every rule is tested on
/// hand-made facts and instants, with no agent, clock or network.
///
/// The rules, per fact:
/// - an attempt stopped by its `timeout` is a `timeout` (whether or not it is retried);
/// - a failed attempt that will be retried is a `retry`;
/// - a run's final attempt is a `success` or a `failure` (failure, signal, timeout,
///   launch_failed: retries are exhausted); a success after a final failure is also
///   `recovered`. `interrupted` (the agent stopped) and `unknown` (an adopted run's exit could
///   not be seen) are neither, and leave the job's failing state as it was;
/// - a `missed` summary is a `missed`.
///
/// Each `notify:` entry gets at most one request per fact: the most specific of the fact's
/// events it subscribes to (recovered, failure, timeout, retry, success, missed, in that order),
/// so `on: [failure, timeout]` says `failure` once for a run whose last attempt timed out.
public struct NotificationPolicy: Sendable {
    /// Jobs whose last finished run failed: their next success is `recovered`. Bounded by the
    /// number of jobs (``retain(_:)`` drops removed ones).
    public private(set) var failing: Set<JobID>

    static let precedence: [NotifyEvent] = [.recovered, .failure, .timeout, .retry, .success, .missed]

    /// - Parameter lastOutcomes: each job's last final outcome (from the state store), so that a
    ///   recovery after an agent restart is still `recovered`.
    public init(lastOutcomes: [JobID: RunOutcome] = [:]) {
        failing = Set(lastOutcomes.filter { Self.isFailure($0.value) }.keys)
    }

    /// Whether a final outcome is a `failure` notification.
    public static func isFailure(_ outcome: RunOutcome) -> Bool {
        switch outcome {
        case .failure, .signal, .timeout, .launchFailed: true
        case .success, .interrupted, .unknown: false
        }
    }

    /// The events `fact` stands for, updating the job's failing state.
    public mutating func events(for fact: RunFact) -> Set<NotifyEvent> {
        switch fact.kind {
        case let .missed(count, _):
            return count > 0 ? [.missed] : []
        case let .attemptEnded(willRetry):
            guard let outcome = fact.outcome else { return [] }
            var events: Set<NotifyEvent> = []
            if outcome == .timeout { events.insert(.timeout) }
            if willRetry { return events.union([.retry]) }
            if outcome.isSuccess {
                events.insert(.success)
                if failing.remove(fact.job) != nil { events.insert(.recovered) }
            } else if Self.isFailure(outcome) {
                events.insert(.failure)
                failing.insert(fact.job)
            }
            return events
        }
    }

    /// The deliveries `fact` asks for, one per matching `notify:` entry of `job` in entry order.
    /// `job` is the job's current spec (`nil` when it is gone: the state still updates).
    public mutating func decide(_ fact: RunFact, job: JobSpec?, box: String) -> [NotificationRequest] {
        let events = events(for: fact)
        guard let job, !events.isEmpty else { return [] }
        var requests: [NotificationRequest] = []
        for (index, entry) in job.notify.enumerated() {
            guard let event = Self.precedence.first(where: { events.contains($0) && entry.on.contains($0) }) else { continue }
            requests.append(
                NotificationRequest(
                    event: event, target: entry.target, job: job.id, entry: index,
                    envFile: job.envFile, facts: NotificationFacts(event: event, fact: fact, box: box)))
        }
        return requests
    }

    /// Forgets jobs not in `jobs` (after a reload removed them).
    public mutating func retain(_ jobs: some Collection<JobID>) {
        let keep = Set(jobs)
        failing = failing.filter { keep.contains($0) }
    }
}

/// One delivery to carry out: typed, so the runtime never re-parses event names.
public struct NotificationRequest: Hashable, Sendable {
    public var event: NotifyEvent
    public var target: NotifyTarget
    public var job: JobID
    /// The entry's index in the job's `notify:` (`notify[1]` in logs).
    public var entry: Int
    /// Where a webhook's `secret_env` is read, at delivery time.
    public var envFile: String?
    public var facts: NotificationFacts

    public init(event: NotifyEvent, target: NotifyTarget, job: JobID, entry: Int, envFile: String?, facts: NotificationFacts) {
        self.event = event
        self.target = target
        self.job = job
        self.entry = entry
        self.envFile = envFile
        self.facts = facts
    }
}
