import OrderedCollections
import SundialCore
import Synchronization

/// `lock: fleet` in the agent: the fleet worker's wiring and the warning of a missing fleet.
extension Agent {
    /// The worker's answers come back through one stream consumed by one task, so the agent
    /// sees them in the order they were made (separate tasks would not guarantee that). The
    /// stream is not bounded by itself: the worker bounds the calls in flight.
    static func makeFleetWorker(_ coordinator: any FleetCoordinator, box: String) -> FleetWorker {
        let (stream, continuation) = AsyncStream<SchedulerEvent>.makeStream()
        let sink = FleetAnswerSink(stream: stream)
        return FleetWorker(
            coordinator: coordinator, box: box, deliver: { continuation.yield($0) },
            onFinishAbandoned: { lease, outcome in sink.abandoned(lease, outcome) }, sink: sink)
    }

    /// Starts feeding the worker's answers to the agent (at ``start(restored:)``).
    func startFleetAnswers() {
        guard let sink = fleetWorker?.sink else { return }
        sink.start { [weak self] event in
            await self?.deliver(.fleet(event))
        } log: { [weak self] event in
            await self?.emitStamped(event)
        }
    }

    /// Logs a fleet record made off the actor, at the agent's clock.
    func emitStamped(_ record: LogRecord.Fleet) {
        var r = record
        r.at = clock.wallNow()
        emit(.fleet(r))
    }

    /// Fleet-locked jobs on a box without `--fleet` cannot be claimed: said once at start (and
    /// after a reload that brings some), then each fire follows its `fleet_unavailable`.
    func warnIfFleetMissing(at now: Instant) {
        guard fleetWorker == nil else { return }
        let jobs = jobSet.jobs.values.filter { $0.lock == .fleet && $0.enabled }.map(\.id)
        guard !jobs.isEmpty else { return }
        emit(
            .fleet(
                .init(
                    .notConfigured, at: now, level: .warn,
                    [
                        "jobs": .array(jobs.prefix(50).map { .string($0) }), "count": .int(Int64(jobs.count)),
                        "message": .string(
                            "jobs with `lock: fleet` but no fleet (sundial run --fleet URL): each fire follows its fleet_unavailable (default skip)"),
                    ])))
    }
}

/// Where the fleet worker's answers wait for the agent's task (created before the agent is).
final class FleetAnswerSink: Sendable {
    let stream: AsyncStream<SchedulerEvent>
    init(stream: AsyncStream<SchedulerEvent>) { self.stream = stream }

    private let logContinuation = Mutex<AsyncStream<LogRecord.Fleet>.Continuation?>(nil)

    func start(_ deliver: @escaping @Sendable (SchedulerEvent) async -> Void, log: @escaping @Sendable (LogRecord.Fleet) async -> Void) {
        let stream = self.stream
        Task { for await e in stream { await deliver(e) } }
        let (logs, c) = AsyncStream<LogRecord.Fleet>.makeStream(bufferingPolicy: .bufferingNewest(256))
        logContinuation.withLock { $0 = c }
        Task { for await e in logs { await log(e) } }
    }

    /// A finish the worker gave up on: the lease will expire and the fleet's `on_lost` decide.
    func abandoned(_ lease: FleetLease, _ outcome: String) {
        let e = LogRecord.Fleet(
            .finishAbandoned, at: lease.expiresAt, level: .error,
            [
                "job": .string(lease.key.job), "scheduled_for": .string(lease.key.scheduledFor.description),
                "fleet_token": .int(lease.token), "outcome": .string(outcome),
            ])
        _ = logContinuation.withLock { $0?.yield(e) }
    }
}
