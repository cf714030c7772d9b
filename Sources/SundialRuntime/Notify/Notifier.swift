import CSundialShim
import OrderedCollections
import SundialCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Turns each scheduler step's events into notifications and delivers them on its own thread.
///
/// The agent calls ``observe(step:jobs:)`` on its actor once per step; that does the pure
/// decision (``NotificationPolicy``) and pushes typed requests on a bounded ``NotificationQueue``,
/// nothing more, so a slow receiver can never delay scheduling. A ``SerialWorker`` thread (alive
/// only while there is work) takes them one at a time and sends them; a failed webhook attempt
/// waits for its backoff as a delayed closure of that worker (other deliveries go on meanwhile).
/// Every delivery ends in one line: `notify.sent`, or `notify.failed` with the reason.
public final class Notifier: Sendable {
    /// Runs `work` after `delayMs` milliseconds; `false` when it cannot (no thread).
    public typealias Delay = @Sendable (_ delayMs: Int64, _ work: @escaping @Sendable () -> Void) -> Bool

    let queue: any NotificationQueue
    let sender: any NotificationSender
    let log: EventLog
    let clock: any SundialClock
    let box: String
    let policy: Mutex<NotificationPolicy>
    let worker: SerialWorker
    let delay: Delay
    /// Deliveries queued and not yet ended (sent or failed for good), for ``waitForDeliveries(upToMs:)``.
    let pending = Atomic<Int>(0)

    /// - Parameters:
    ///   - lastOutcomes: each job's last final outcome, from the state store, so that the first
    ///     success after a failure before a restart is still `recovered`.
    ///   - delay: the backoff timer; the worker's own by default (tests inject virtual time).
    public init(
        queue: any NotificationQueue = MemoryNotificationQueue(), sender: any NotificationSender = SystemNotificationSender(),
        log: EventLog, clock: any SundialClock, box: String = Notifier.hostName(),
        lastOutcomes: [JobID: RunOutcome] = [:], delay: Delay? = nil
    ) {
        self.queue = queue
        self.sender = sender
        self.log = log
        self.clock = clock
        self.box = box
        self.policy = Mutex(NotificationPolicy(lastOutcomes: lastOutcomes))
        let worker = SerialWorker(name: "sundial-notify")
        self.worker = worker
        self.delay = delay ?? { ms, work in worker.asyncAfter(milliseconds: ms, work) }
    }

    /// The host name (`uname -n`), the `box` of every notification.
    public static func hostName() -> String {
        var u = utsname()
        guard uname(&u) == 0 else { return "localhost" }
        return withUnsafeBytes(of: &u.nodename) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// Decides and queues the notifications of one scheduler step. Called on the agent's actor:
    /// no I/O beyond a log line when the queue is full.
    public func observe(step records: [LogRecord], jobs: JobSet) {
        let facts = RunFact.facts(fromStep: records)
        guard !facts.isEmpty else { return }
        let requests = policy.withLock { p in
            let r = facts.flatMap { p.decide($0, job: jobs.jobs[$0.job], box: box) }
            // Jobs removed by a reload: forgotten here, so the set stays bounded by the jobs.
            if p.failing.count > jobs.jobs.count { p.retain(jobs.jobs.keys) }
            return r
        }
        guard !requests.isEmpty else { return }
        for r in requests {
            pending.add(1, ordering: .sequentiallyConsistent)
            if !queue.push(r) {
                logEnd(r, attempts: 0, result: .failed(reason: "queue full: too many deliveries waiting; this one is dropped"))
            }
        }
        kick()
    }

    /// Starts delivering what the queue already holds: with a ``StateStoreNotificationQueue``,
    /// the deliveries a previous agent left pending (at least once: see that type). Call once,
    /// before the agent starts. Returns how many there are.
    @discardableResult
    public func resumePending() -> Int {
        let n = queue.count
        guard n > 0 else { return 0 }
        pending.add(n, ordering: .sequentiallyConsistent)
        kick()
        return n
    }

    /// One drain per step that queued something: a drain takes until the queue is empty, so
    /// a drain finding nothing (an earlier one took it) costs only a lock.
    private func kick() { worker.async { [self] in drain() } }

    private func drain() {
        while let item = queue.take() {
            attempt(item, DeliveryAttempts(retries: retries(of: item.request), now: clock.wallNow()))
        }
    }

    private func retries(of request: NotificationRequest) -> Int {
        if case let .webhook(spec) = request.target { return spec.retries }
        // A command is the operator's own script: it does its own retrying (mail queues do).
        return 0
    }

    private func attempt(_ item: QueuedNotification, _ attempts: DeliveryAttempts) {
        var attempts = attempts
        let result = sender.send(item.request)
        switch result {
        case .sent:
            attempts.succeeded()
        case let .failed(reason):
            let now = clock.wallNow()
            if let next = attempts.failed(reason: reason, now: now) {
                let wait = max(0, next.unixMillis - now.unixMillis)
                log.log(
                    LogRecord.notifyRetrying(
                        delivery(item.request, attempts: attempts.made, at: now), reason: reason,
                        delayMs: wait))
                let next = attempts
                if delay(wait, { [self] in attempt(item, next) }) { return }
            }
        }
        logEnd(item.request, attempts: attempts.made, result: result)
        queue.done(item.id)
    }

    /// Waits (bounded) until every queued delivery has ended: at a stop, so that the failure
    /// that came right before it still goes out now rather than after the restart. Returns how
    /// many were still pending (kept by a durable queue, lost by a memory one).
    public func waitForDeliveries(upToMs limit: Int64) -> Int {
        // The real monotonic clock: this waits for real threads, whatever clock was injected.
        let deadline = sundial_monotonic_ms() + limit
        while pending.load(ordering: .sequentiallyConsistent) > 0, sundial_monotonic_ms() < deadline {
            usleep(10_000)
        }
        return pending.load(ordering: .sequentiallyConsistent)
    }

    private func logEnd(_ r: NotificationRequest, attempts: Int, result: DeliveryResult) {
        defer { pending.subtract(1, ordering: .sequentiallyConsistent) }
        switch result {
        case let .sent(detail):
            log.log(LogRecord.notifySent(delivery(r, attempts: attempts, at: clock.wallNow()), detail: detail))
        case let .failed(reason):
            log.log(LogRecord.notifyFailed(delivery(r, attempts: attempts, at: clock.wallNow()), reason: reason))
        }
    }

    /// `job`, `on` (the run end reported), `entry` (`notify[0]`), `target` (`command` with its program, or
    /// `webhook` with host and port only: a URL's path often holds a token).
    private func delivery(_ r: NotificationRequest, attempts: Int, at: Instant) -> LogRecord.NotifyDelivery {
        let target =
            switch r.target {
            case let .command(argv): "command \(argv.first ?? "")"
            case let .webhook(spec): "webhook " + ((try? WebhookURL.parse(spec.url))?.hostHeader ?? "?")
            }
        return .init(job: r.job, on: r.event, entry: r.entry, target: target, runID: r.facts.runID, attempts: attempts, at: at)
    }

    /// Waits until every queued delivery has had its first attempt (tests, shutdown).
    func waitUntilIdle() { worker.sync() }
}
