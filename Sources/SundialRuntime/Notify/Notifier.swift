import CSundialShim
import OrderedCollections
import SundialCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Turns each scheduler step's events into notifications and delivers them on threads of its
/// own.
///
/// The agent calls ``observe(step:jobs:)`` on its actor once per step; that does the pure
/// decision (``NotificationPolicy``) and pushes typed requests on a bounded ``NotificationQueue``,
/// nothing more, so a slow receiver can never delay scheduling.
///
/// ## Workers, one delivery per target at a time
/// Up to `workers` threads (`sundial-notify`, 4 by default) take deliveries from the queue and
/// send them; each exists only while there is work. The queue hands out only a delivery whose
/// target (``DeliveryTarget``: the webhook's URL, the command's argv) has none in flight, so a
/// target's deliveries go one at a time and in order, while a dead or slow receiver (each
/// attempt waits its timeout) holds one worker and delays only its own notifications. A failed
/// webhook attempt waits for its backoff on a timer (`sundial-backoff`, alive only while a
/// backoff is pending), holding no worker: when due it goes back to the workers ahead of new
/// deliveries, its target still in flight meanwhile so that the target's order holds.
/// Every delivery ends in one line: `notify.sent`, or `notify.failed` with the reason.
public final class Notifier: Sendable {
    /// Runs `work` after `delayMs` milliseconds; `false` when it cannot (no thread).
    public typealias Delay = @Sendable (_ delayMs: Int64, _ work: @escaping @Sendable () -> Void) -> Bool

    /// Deliveries in flight at once, at most, by default: enough that a few dead receivers
    /// leave the others a worker, few enough to stay a handful of short-lived threads.
    public static let defaultWorkers = 4

    private struct Workers {
        /// Worker threads running.
        var running = 0
        /// Bumped by every ``kick(_:)``: a worker that found nothing to take ends only if no
        /// kick came since it started looking (a push or a due retry it may have missed).
        var kicks: UInt64 = 0
        /// Deliveries whose backoff has passed, taken before the queue's.
        var due: [(item: QueuedNotification, attempts: DeliveryAttempts)] = []
    }

    let queue: any NotificationQueue
    let sender: any NotificationSender
    let log: EventLog
    let clock: any SundialClock
    let box: String
    let policy: Mutex<NotificationPolicy>
    let maxWorkers: Int
    private let workers = Mutex(Workers())
    let delay: Delay
    /// Deliveries queued and not yet ended (sent or failed for good), for ``waitForDeliveries(upToMs:)``.
    let pending = Atomic<Int>(0)

    /// - Parameters:
    ///   - lastOutcomes: each job's last final outcome, from the state store, so that the first
    ///     success after a failure before a restart is still `recovered`.
    ///   - workers: deliveries in flight at once, at most (never two for one target).
    ///   - delay: the backoff timer; a ``SerialWorker`` of its own by default (tests inject
    ///     virtual time).
    public init(
        queue: any NotificationQueue = MemoryNotificationQueue(), sender: any NotificationSender = SystemNotificationSender(),
        log: EventLog, clock: any SundialClock, box: String = Notifier.hostName(),
        lastOutcomes: [JobID: RunOutcome] = [:], workers: Int = Notifier.defaultWorkers, delay: Delay? = nil
    ) {
        self.queue = queue
        self.sender = sender
        self.log = log
        self.clock = clock
        self.box = box
        self.policy = Mutex(NotificationPolicy(lastOutcomes: lastOutcomes))
        self.maxWorkers = max(1, workers)
        let timer = SerialWorker(name: "sundial-backoff")
        self.delay = delay ?? { ms, work in timer.asyncAfter(milliseconds: ms, work) }
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
        var queued = false
        for r in requests {
            pending.add(1, ordering: .sequentiallyConsistent)
            switch queue.push(r) {
            case .queued:
                queued = true
            case let .queuedDropping(dropped):
                queued = true
                logEnd(dropped, attempts: 0, result: .failed(reason: Self.droppedReason))
            case .refused:
                logEnd(r, attempts: 0, result: .failed(reason: "queue full: too many deliveries waiting for this target; this one is dropped"))
            }
        }
        // A worker per target at most: more would find nothing to take.
        if queued { kick(Set(requests.map(\.deliveryTarget)).count) }
    }

    /// The reason of a delivery dropped to make room for another target's (``TargetQueues``).
    static let droppedReason =
        "queue full: dropped to make room for another target's delivery (this target holds the most waiting: is its receiver down?)"

    /// Starts delivering what the queue already holds: with a ``StateStoreNotificationQueue``,
    /// the deliveries a previous agent left pending (at least once: see that type). Call once,
    /// before the agent starts. Returns how many there are.
    @discardableResult
    public func resumePending() -> Int {
        let n = queue.count
        guard n > 0 else { return 0 }
        pending.add(n, ordering: .sequentiallyConsistent)
        kick(n)
        return n
    }

    /// Starts up to `workers` more worker threads (within ``maxWorkers``), and makes every
    /// running worker look again before it ends. A thread the kernel refuses is not retried
    /// here: the deliveries stay queued for the next kick (the next step that notifies).
    private func kick(_ workers: Int = 1) {
        for _ in 0..<max(1, min(workers, maxWorkers)) {
            let start = self.workers.withLock { w -> Bool in
                w.kicks &+= 1
                guard w.running < maxWorkers else { return false }
                w.running += 1
                return true
            }
            guard start else { return }
            guard DetachedThread.run("sundial-notify", { [self] in work() }) else {
                self.workers.withLock { $0.running -= 1 }
                return
            }
        }
    }

    /// A worker thread: sends deliveries until there is none it may take, then ends.
    private func work() {
        while true {
            let seen = workers.withLock { $0.kicks }
            while let (item, attempts) = next() { attempt(item, attempts) }
            let end = workers.withLock { w -> Bool in
                guard w.kicks == seen else { return false }
                w.running -= 1
                return true
            }
            if end { return }
        }
    }

    /// Worker threads running now (tests: they end once there is nothing to take).
    var runningWorkers: Int { workers.withLock { $0.running } }

    /// A delivery whose backoff has passed, else the queue's next one whose target is free.
    private func next() -> (QueuedNotification, DeliveryAttempts)? {
        if let due = workers.withLock({ w in w.due.isEmpty ? nil : w.due.removeFirst() }) { return due }
        guard let item = queue.take() else { return nil }
        return (item, DeliveryAttempts(retries: retries(of: item.request), now: clock.wallNow()))
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
                // The timer only hands it back: the attempt runs on a worker.
                let due: @Sendable () -> Void = { [self] in
                    workers.withLock { $0.due.append((item, next)) }
                    kick()
                }
                if delay(wait, due) { return }
            }
        }
        // The row goes first: a stop waits only until `pending` is 0, and a row left behind by
        // a delivery that ended would be sent again after the restart.
        queue.done(item.id)
        logEnd(item.request, attempts: attempts.made, result: result)
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
}
