import Foundation
import OrderedCollections
import SundialCore
import SundialTesting
import Synchronization
import Testing

@testable import SundialRuntime

/// The notifier without processes or sockets: a scripted sender, virtual time for the backoff,
/// the bounded queue, and the log lines.
@Suite("Notifier: queue, worker, backoff, log", .offPool)
struct NotifierTests {
    final class ScriptedSender: NotificationSender {
        let results: Mutex<[DeliveryResult]>
        let seen = Mutex<[NotificationRequest]>([])
        init(_ results: [DeliveryResult]) { self.results = Mutex(results) }
        func send(_ request: NotificationRequest) -> DeliveryResult {
            seen.withLock { $0.append(request) }
            return results.withLock { r in r.count > 1 ? r.removeFirst() : (r.first ?? .sent(detail: "ok")) }
        }
    }

    static let t0 = Instant(unixMillis: 1_767_571_200_000)

    func jobs(retries: Int) -> JobSet {
        var spec = JobSpec(id: "backup", command: .argv(["/bin/false"]))
        spec.notify = [NotifySpec(on: [.failure], target: .webhook(WebhookSpec(url: "http://127.0.0.1:9/h", retries: retries)))]
        return JobSet(jobs: ["backup": spec])
    }

    func failedStep(_ run: String = "R1") -> [LogRecord] {
        [
            .runFinished(
                .init(
                    job: "backup", runID: RunID(rawValue: run), attempt: 1, outcome: .failure(exitCode: 2), exitCode: 2, signal: nil,
                    durationMs: 10, at: Self.t0))
        ]
    }

    func lines(_ sink: MemoryEventSink, _ name: String) -> [JSONValue] {
        sink.lines.compactMap { try? JSONParser.parse(Array($0.utf8.dropLast())) }.filter { $0["event"]?.stringValue == name }
    }

    func waitFor(_ sink: MemoryEventSink, _ name: String, count: Int = 1) async throws -> [JSONValue] {
        let deadline = ContinuousClock.now + .seconds(10)
        while lines(sink, name).count < count, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        return lines(sink, name)
    }

    @Test("a failing webhook is retried after 1 s, 2 s on the injected timer, then logged failed with the reason")
    func backoffThenFailure() async throws {
        let sink = MemoryEventSink()
        let clock = VirtualClock(wall: Self.t0)
        let log = EventLog(sink: sink, clock: clock)
        let sender = ScriptedSender([.failed(reason: "HTTP 500"), .failed(reason: "HTTP 502"), .failed(reason: "connect: refused")])
        let delays = Mutex<[Int64]>([])
        // Virtual time: the wait is recorded and the clock advanced by it, then the attempt runs.
        let notifier = Notifier(
            sender: sender, log: log, clock: clock, box: "b",
            delay: { ms, work in
                delays.withLock { $0.append(ms) }
                clock.advance(by: .milliseconds(ms))
                work()
                return true
            })
        notifier.observe(step: failedStep(), jobs: jobs(retries: 2))
        let failed = try await waitFor(sink, "notify.failed")
        #expect(delays.withLock { $0 } == [1000, 2000])
        #expect(failed.count == 1)
        #expect(failed.first?["reason"] == "connect: refused" && failed.first?["attempts"] == 3)
        #expect(failed.first?["entry"] == "notify[0]" && failed.first?["run_id"] == "R1" && failed.first?["on"] == "failure")
        #expect(lines(sink, "notify.retrying").map { $0["delay_ms"] } == [1000, 2000])
        #expect(sender.seen.withLock { $0.count } == 3)
    }

    @Test("a delivery that succeeds after a retry is one notify.sent with its attempts")
    func sentAfterRetry() async throws {
        let sink = MemoryEventSink()
        let clock = VirtualClock(wall: Self.t0)
        let sender = ScriptedSender([.failed(reason: "HTTP 503"), .sent(detail: "HTTP 204")])
        let notifier = Notifier(
            sender: sender, log: EventLog(sink: sink, clock: clock), clock: clock, box: "b",
            delay: { ms, work in
                clock.advance(by: .milliseconds(ms))
                work()
                return true
            })
        notifier.observe(step: failedStep(), jobs: jobs(retries: 3))
        let sent = try await waitFor(sink, "notify.sent")
        #expect(sent.first?["attempts"] == 2 && sent.first?["detail"] == "HTTP 204")
        #expect(lines(sink, "notify.failed").isEmpty)
    }

    @Test("a full queue drops the delivery and says so; observing never blocks on a slow sender")
    func boundedQueue() async throws {
        let sink = MemoryEventSink()
        let clock = VirtualClock(wall: Self.t0)
        let gate = DispatchSemaphore(value: 0)
        final class SlowSender: NotificationSender {
            let gate: DispatchSemaphore
            init(_ g: DispatchSemaphore) { gate = g }
            func send(_ request: NotificationRequest) -> DeliveryResult {
                gate.wait()
                return .sent(detail: "ok")
            }
        }
        let queue = MemoryNotificationQueue(capacity: 2)
        let notifier = Notifier(queue: queue, sender: SlowSender(gate), log: EventLog(sink: sink, clock: clock), clock: clock, box: "b")
        let started = ContinuousClock.now
        for i in 0..<5 { notifier.observe(step: failedStep("R\(i)"), jobs: jobs(retries: 0)) }
        #expect(ContinuousClock.now - started < .seconds(1))
        let dropped = try await waitFor(sink, "notify.failed", count: 3)
        #expect(dropped.count == 3)
        #expect(dropped.allSatisfy { $0["reason"]?.stringValue?.hasPrefix("queue full") == true })
        for _ in 0..<2 { gate.signal() }
        let sent = try await waitFor(sink, "notify.sent", count: 2)
        #expect(sent.count == 2)
        #expect(queue.count == 0)
    }

    @Test("the queue: bounded, oldest first, one at a time per target, room again after done")
    func memoryQueue() {
        let q = MemoryNotificationQueue(capacity: 2)
        let facts = NotificationFacts(
            event: .failure,
            fact: RunFact(
                kind: .attemptEnded(willRetry: false), job: "a",
                outcome: .failure(exitCode: 1), at: Self.t0), box: "b")
        let r = NotificationRequest(event: .failure, target: .command(["x"]), job: "a", entry: 0, envFile: nil, facts: facts)
        #expect(q.push(r) == .queued && q.push(r) == .queued)
        #expect(q.push(r) == .refused)
        let first = q.take()
        #expect(first?.id == 1 && q.take() == nil)  // one target: the second waits for the first
        #expect(q.push(r) == .refused)  // taken but not done still counts
        q.done(1)
        #expect(q.take()?.id == 2)
        #expect(q.push(r) == .queued)
        q.done(2)
        #expect(q.take()?.id == 3 && q.take() == nil)
    }
}
