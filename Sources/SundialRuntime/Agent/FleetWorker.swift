import SundialCore
import Synchronization

/// Carries out the scheduler's fleet actions (`claim`, `renewLease`, `finishClaim`,
/// `scanLostLeases`, `resolveLost`) against a ``FleetCoordinator``, off the agent's actor, and
/// hands each answer back as a ``SchedulerEvent``.
///
/// Why a worker: coordinator calls block (a database round trip, a timeout when it is away),
/// and the scheduling path must never wait on them. One serial thread keeps the calls in the
/// order the scheduler asked (a renewal never overtakes its claim); it exists only while calls
/// are queued (``SerialWorker``), and the worker itself exists only when a fleet is configured,
/// so an agent without `--fleet` has no extra thread and no wake-up.
///
/// Bounded: at most ``maxQueued`` calls wait; beyond that a claim, renewal or takeover is
/// answered `unavailable` at once (the job's `fleet_unavailable` decides, and a renewal is
/// simply retried), and a scan is answered with nothing. A `finish` that does not get through
/// is retried with backoff (1 s doubling to 30 s) for ``finishRetryWindowMs``: until it does,
/// the instant's lease would expire and `on_lost` could run it again.
final class FleetWorker: Sendable {
    let coordinator: any FleetCoordinator
    let box: String
    let deliver: @Sendable (SchedulerEvent) -> Void
    let onFinishAbandoned: @Sendable (FleetLease, String) -> Void
    /// Where the agent picks the answers up (``Agent/makeFleetWorker(_:box:)``).
    let sink: FleetAnswerSink?
    let worker = SerialWorker(name: "sundial-fleet")
    let queued = Atomic<Int>(0)

    static let maxQueued = 4096
    static let finishRetryWindowMs: Int64 = 15 * 60_000

    /// - Parameters:
    ///   - deliver: how answers reach the agent (in order).
    ///   - onFinishAbandoned: a finish given up after ``finishRetryWindowMs`` (logged by the agent).
    init(
        coordinator: any FleetCoordinator, box: String, deliver: @escaping @Sendable (SchedulerEvent) -> Void,
        onFinishAbandoned: @escaping @Sendable (FleetLease, String) -> Void = { _, _ in }, sink: FleetAnswerSink? = nil
    ) {
        self.sink = sink
        self.coordinator = coordinator
        self.box = box
        self.deliver = deliver
        self.onFinishAbandoned = onFinishAbandoned
    }

    /// Whether `action` is the worker's to carry out.
    static func handles(_ action: SchedulerAction) -> Bool {
        switch action {
        case .claim, .renewLease, .finishClaim, .scanLostLeases, .resolveLost: true
        default: false
        }
    }

    /// Queues one fleet action; its answer comes back through `deliver`.
    func submit(_ action: SchedulerAction) {
        let coordinator = self.coordinator
        let box = self.box
        let deliver = self.deliver
        switch action {
        case let .claim(key, leaseMs, forbid):
            enqueue(refused: { deliver(.claimResolved(key, .unavailable(reason: "fleet worker queue full"))) }) {
                deliver(.claimResolved(key, coordinator.claim(key, box: box, leaseMs: leaseMs, forbidOverlap: forbid)))
            }
        case let .renewLease(lease, leaseMs):
            enqueue(refused: { deliver(.leaseRenewed(lease.key, .unavailable(reason: "fleet worker queue full"))) }) {
                deliver(.leaseRenewed(lease.key, coordinator.renew(lease, leaseMs: leaseMs)))
            }
        case let .finishClaim(lease, outcome):
            finish(lease, outcome: outcome, delayMs: 0, elapsedMs: 0)
        case let .scanLostLeases(jobs, limit):
            enqueue(refused: { deliver(.lostLeasesFound([])) }) {
                deliver(.lostLeasesFound(coordinator.expiredLeases(jobs: jobs, limit: limit)))
            }
        case let .resolveLost(lease, lostAction, leaseMs):
            enqueue(refused: { deliver(.lostResolved(lease, .unavailable(reason: "fleet worker queue full"))) }) {
                deliver(.lostResolved(lease, coordinator.resolveLost(lease, action: lostAction, box: box, leaseMs: leaseMs)))
            }
        default:
            break
        }
    }

    /// Waits, without holding a thread, until every call queued before it has been made and
    /// answered, or until `milliseconds` have passed: a coordinator that is away answers each
    /// queued call only at its own timeout, and a stopping agent must not wait for the sum of
    /// them. Returns whether the queue drained in time.
    func drained(withinMilliseconds milliseconds: Int64) async -> Bool {
        await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
            let once = ResumeOnce(c)
            // The deadline first: whatever becomes of the worker's closure (a thread the kernel
            // refuses, a call that never returns), the stop goes on when it expires.
            if !deadlines.asyncAfter(milliseconds: milliseconds, { once.resume(false) }) { once.resume(false) }
            worker.async { once.resume(true) }
        }
    }

    /// The deadline of ``drained(withinMilliseconds:)``: a thread only while one is pending.
    private let deadlines = SerialWorker(name: "sundial-fleet-stop")

    private func enqueue(refused: @Sendable () -> Void, _ work: @escaping @Sendable () -> Void) {
        let n = queued.add(1, ordering: .relaxed).newValue
        guard n <= Self.maxQueued else {
            queued.subtract(1, ordering: .relaxed)
            refused()
            return
        }
        worker.async { [self] in
            work()
            queued.subtract(1, ordering: .relaxed)
        }
    }

    private func finish(_ lease: FleetLease, outcome: String, delayMs: Int64, elapsedMs: Int64) {
        let attempt: @Sendable () -> Void = { [self] in
            if coordinator.finish(lease, outcome: outcome) { return }
            let next = min(30_000, max(1000, delayMs * 2))
            if elapsedMs + next > Self.finishRetryWindowMs {
                onFinishAbandoned(lease, outcome)
            } else {
                finish(lease, outcome: outcome, delayMs: next, elapsedMs: elapsedMs + next)
            }
        }
        if delayMs == 0 {
            enqueue(refused: { [self] in finish(lease, outcome: outcome, delayMs: 1000, elapsedMs: 1000) }, attempt)
        } else if !worker.asyncAfter(milliseconds: delayMs, attempt) {
            onFinishAbandoned(lease, outcome)
        }
    }
}

/// A continuation that two racing closures may resume: the first wins, the second is ignored.
private final class ResumeOnce: Sendable {
    private let continuation: Mutex<CheckedContinuation<Bool, Never>?>
    init(_ c: CheckedContinuation<Bool, Never>) { continuation = Mutex(c) }
    func resume(_ value: Bool) { continuation.withLock { $0.take() }?.resume(returning: value) }
}
