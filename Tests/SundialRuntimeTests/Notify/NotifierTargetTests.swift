import Foundation
import OrderedCollections
import SundialCore
import SundialTesting
import Synchronization
import Testing

@testable import SundialRuntime

/// Deliveries per target: a dead receiver delays only its own notifications, each target's go
/// one at a time and in order, and a full queue makes the target that holds the most give way.
@Suite("Notifier: one delivery per target at a time, several targets at once", .offPool)
struct NotifierTargetTests {
    static let t0 = Instant(unixMillis: 1_767_571_200_000)
    static let dead = "http://dead.invalid/h"
    static let alive = "http://alive.invalid/h"

    /// Receivers scripted by target: a `blocked` one waits on `gate` (a dead receiver, each
    /// attempt waiting for its timeout), a `flaky` one fails its first attempt, the others
    /// answer after `pauseUs`. Records each target's attempts in order and how many were in
    /// flight at once, per target and in all.
    final class TargetSender: NotificationSender {
        struct Seen {
            var order: [String: [String]] = [:]
            var inFlight: [String: Int] = [:]
            var maxPerTarget = 0
            var total = 0
            var maxTotal = 0
        }
        let gate = DispatchSemaphore(value: 0)
        let blockedStarted = DispatchSemaphore(value: 0)
        let blocked: Set<String>
        let flaky: Set<String>
        let pauseUs: UInt32
        let seen = Mutex(Seen())

        init(blocked: Set<String> = [], flaky: Set<String> = [], pauseUs: UInt32 = 0) {
            self.blocked = blocked
            self.flaky = flaky
            self.pauseUs = pauseUs
        }

        static func key(_ r: NotificationRequest) -> String {
            switch r.target {
            case let .webhook(spec): spec.url
            case let .command(argv): argv.joined(separator: " ")
            }
        }

        func send(_ r: NotificationRequest) -> DeliveryResult {
            let key = Self.key(r)
            let attempt = seen.withLock { s in
                s.order[key, default: []].append(r.facts.runID?.rawValue ?? "?")
                s.inFlight[key, default: 0] += 1
                s.maxPerTarget = max(s.maxPerTarget, s.inFlight[key] ?? 0)
                s.total += 1
                s.maxTotal = max(s.maxTotal, s.total)
                return s.order[key]?.count ?? 0
            }
            defer {
                seen.withLock { s in
                    s.inFlight[key, default: 1] -= 1
                    s.total -= 1
                }
            }
            if blocked.contains(key) {
                blockedStarted.signal()
                // Bounded: a notifier that never lets go (a serial one) fails the test, not hangs it.
                guard gate.wait(timeout: .now() + 30) == .success else { return .failed(reason: "timed out") }
                return .sent(detail: "late")
            }
            if flaky.contains(key), attempt == 1 { return .failed(reason: "HTTP 503") }
            if pauseUs > 0 { usleep(pauseUs) }
            return .sent(detail: "HTTP 204")
        }

        func order(_ key: String) -> [String] { seen.withLock { $0.order[key] ?? [] } }
    }

    static func jobs(_ targets: [JobID: NotifyTarget]) -> JobSet {
        var set: OrderedDictionary<JobID, JobSpec> = [:]
        for (id, target) in targets {
            var spec = JobSpec(id: id, command: .argv(["/bin/false"]))
            spec.notify = [NotifySpec(on: [.failure], target: target)]
            set[id] = spec
        }
        return JobSet(jobs: set)
    }

    static func webhook(_ url: String, headers: OrderedDictionary<String, String> = [:]) -> NotifyTarget {
        var spec = WebhookSpec(url: url, retries: 0)
        spec.headers = headers
        return .webhook(spec)
    }

    /// One step in which each of `jobs` ended its run `job-run` with a final failure.
    static func failed(_ jobs: [JobID], run: String) -> [LogRecord] {
        jobs.map { job in
            .runFinished(
                .init(
                    job: job, runID: RunID(rawValue: "\(job)-\(run)"), attempt: 1, outcome: .failure(exitCode: 2),
                    exitCode: 2, signal: nil, durationMs: 10, at: t0))
        }
    }

    let t = NotifierTests()

    func runIDs(_ lines: [JSONValue]) -> [String] { lines.compactMap { $0["run_id"]?.stringValue } }

    @Test("a dead receiver delays only its own notifications: another target's is sent while it hangs")
    func deadTargetDoesNotDelayOthers() async throws {
        let sink = MemoryEventSink()
        let clock = VirtualClock(wall: Self.t0)
        let sender = TargetSender(blocked: [Self.dead])
        let notifier = Notifier(sender: sender, log: EventLog(sink: sink, clock: clock), clock: clock, box: "b")
        let jobs = Self.jobs(["a": Self.webhook(Self.dead), "b": Self.webhook(Self.alive)])
        notifier.observe(step: Self.failed(["a"], run: "1"), jobs: jobs)
        #expect(sender.blockedStarted.wait(timeout: .now() + 10) == .success)
        notifier.observe(step: Self.failed(["a", "b"], run: "2"), jobs: jobs)
        // The dead receiver still holds a-1 (and a-2 waits behind it): b-2 goes anyway.
        let sent = try await t.waitFor(sink, "notify.sent")
        #expect(runIDs(sent) == ["b-2"])
        #expect(sender.order(Self.dead) == ["a-1"])
        sender.gate.signal()
        sender.gate.signal()
        #expect(notifier.waitForDeliveries(upToMs: 20_000) == 0)
        #expect(sender.order(Self.dead) == ["a-1", "a-2"])
        #expect(Set(runIDs(t.lines(sink, "notify.sent"))) == ["a-1", "a-2", "b-2"])
    }

    @Test("each target's deliveries go in order and one at a time (a URL is one target), several targets at once")
    func perTargetOrderAndOneInFlight() async throws {
        let sink = MemoryEventSink()
        let clock = VirtualClock(wall: Self.t0)
        let sender = TargetSender(pauseUs: 1_000)
        let notifier = Notifier(sender: sender, log: EventLog(sink: sink, clock: clock), clock: clock, box: "b")
        let one = "http://one.invalid/h"
        let two = "http://two.invalid/h"
        let command = ["/usr/local/bin/page-ops", "--now"]
        // j1 and j2: the same URL with different headers, so one target.
        let jobs = Self.jobs([
            "j1": Self.webhook(one), "j2": Self.webhook(one, headers: ["X-Team": "db"]), "j3": Self.webhook(two),
            "j4": .command(command),
        ])
        for i in 0..<8 { notifier.observe(step: Self.failed(["j1", "j2", "j3", "j4"], run: "\(i)"), jobs: jobs) }
        #expect(notifier.waitForDeliveries(upToMs: 30_000) == 0)
        #expect(sender.order(one) == (0..<8).flatMap { ["j1-\($0)", "j2-\($0)"] })
        #expect(sender.order(two) == (0..<8).map { "j3-\($0)" })
        #expect(sender.order(command.joined(separator: " ")) == (0..<8).map { "j4-\($0)" })
        let seen = sender.seen.withLock { $0 }
        #expect(seen.maxPerTarget == 1)
        #expect(seen.maxTotal <= Notifier.defaultWorkers)
        #expect(t.lines(sink, "notify.sent").count == 32)
        // The workers end once there is nothing left (bounded wait: they are finishing).
        let deadline = ContinuousClock.now + .seconds(10)
        while notifier.runningWorkers > 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(notifier.runningWorkers == 0)
    }

    @Test("a full queue: the dead target's newest waiting delivery gives way to another target's; its own new ones are refused")
    func fullQueueProtectsOtherTargets() async throws {
        let sink = MemoryEventSink()
        let clock = VirtualClock(wall: Self.t0)
        let sender = TargetSender(blocked: [Self.dead])
        let queue = MemoryNotificationQueue(capacity: 4)
        let notifier = Notifier(queue: queue, sender: sender, log: EventLog(sink: sink, clock: clock), clock: clock, box: "b")
        let jobs = Self.jobs(["a": Self.webhook(Self.dead), "b": Self.webhook(Self.alive)])
        notifier.observe(step: Self.failed(["a"], run: "0"), jobs: jobs)
        #expect(sender.blockedStarted.wait(timeout: .now() + 10) == .success)
        // a-0 in flight, a-1...a-3 waiting: full. a-4 and a-5 are refused (a holds the most).
        for i in 1...5 { notifier.observe(step: Self.failed(["a"], run: "\(i)"), jobs: jobs) }
        // b-0 finds the queue full of a's: a's newest waiting one (a-3) makes room.
        notifier.observe(step: Self.failed(["b"], run: "0"), jobs: jobs)
        let sent = try await t.waitFor(sink, "notify.sent")
        #expect(runIDs(sent) == ["b-0"])
        let failed = t.lines(sink, "notify.failed")
        #expect(runIDs(failed) == ["a-4", "a-5", "a-3"])
        #expect(failed.prefix(2).allSatisfy { $0["reason"]?.stringValue?.hasPrefix("queue full: too many deliveries waiting for this target") == true })
        #expect(failed.last?["reason"]?.stringValue == Notifier.droppedReason)
        for _ in 0..<3 { sender.gate.signal() }
        #expect(notifier.waitForDeliveries(upToMs: 20_000) == 0)
        #expect(sender.order(Self.dead) == ["a-0", "a-1", "a-2"])
        #expect(queue.count == 0)
    }

    @Test("a backoff holds no worker: with one worker, another target is sent while a retry waits")
    func backoffHoldsNoWorker() async throws {
        let sink = MemoryEventSink()
        let clock = VirtualClock(wall: Self.t0)
        let sender = TargetSender(flaky: [Self.dead])
        let timers = Mutex<[@Sendable () -> Void]>([])
        let notifier = Notifier(
            sender: sender, log: EventLog(sink: sink, clock: clock), clock: clock, box: "b", workers: 1,
            delay: { _, work in
                timers.withLock { $0.append(work) }
                return true
            })
        var flaky = WebhookSpec(url: Self.dead, retries: 1)
        flaky.timeoutMs = 1_000
        let jobs = Self.jobs(["a": .webhook(flaky), "b": Self.webhook(Self.alive)])
        notifier.observe(step: Self.failed(["a"], run: "1"), jobs: jobs)
        _ = try await t.waitFor(sink, "notify.retrying")
        notifier.observe(step: Self.failed(["b"], run: "1"), jobs: jobs)
        #expect(runIDs(try await t.waitFor(sink, "notify.sent")) == ["b-1"])
        let due = timers.withLock { $0 }
        #expect(due.count == 1)
        for work in due { work() }
        #expect(notifier.waitForDeliveries(upToMs: 10_000) == 0)
        let a = t.lines(sink, "notify.sent").first { $0["run_id"] == "a-1" }
        #expect(a?["attempts"] == 2)
    }

    static func request(_ run: String, url: String) -> NotificationRequest {
        var facts = NotificationFacts(
            event: .failure, fact: RunFact(kind: .attemptEnded(willRetry: false), job: "j", outcome: .failure(exitCode: 2), at: t0),
            box: "b")
        facts.runID = RunID(rawValue: run)
        return NotificationRequest(event: .failure, target: webhook(url), job: "j", entry: 0, envFile: nil, facts: facts)
    }

    @Test("the memory queue: takes the oldest whose target is free; when full, the target that holds the most gives way")
    func memoryQueuePerTarget() throws {
        let q = MemoryNotificationQueue(capacity: 4)
        let r = { (run: String) in Self.request(run, url: run.hasPrefix("a") ? Self.dead : Self.alive) }
        #expect([q.push(r("a1")), q.push(r("a2")), q.push(r("a3")), q.push(r("b1"))] == [.queued, .queued, .queued, .queued])
        let a1 = try #require(q.take())
        let b1 = try #require(q.take())
        #expect(a1.request == r("a1") && b1.request == r("b1"))
        #expect(q.take() == nil)  // a2 waits for a1, b has none waiting
        #expect(q.push(r("b2")) == .queuedDropping(r("a3")))  // a holds 3, b would hold 2
        #expect(q.push(r("a4")) == .refused)  // a would hold 3, b holds 2
        #expect(q.push(r("b3")) == .refused)  // now b would hold the most
        q.done(b1.id)
        #expect(q.take()?.request == r("b2") && q.take() == nil)
        q.done(a1.id)
        #expect(q.take()?.request == r("a2"))
        #expect(q.count == 2)
    }

    @Test("targets take turns: with more dead targets than workers, a healthy target's new delivery waits for one attempt each, not for their backlog")
    func targetsTakeTurns() throws {
        let q = MemoryNotificationQueue(capacity: 100)
        let dead = (1...5).map { "http://dead\($0).invalid/h" }
        // An outage's backlog: three deliveries for each dead target, older than the healthy one.
        for round in 1...3 {
            for (i, url) in dead.enumerated() { #expect(q.push(Self.request("d\(i)-\(round)", url: url)) == .queued) }
        }
        #expect(q.push(Self.request("ok", url: Self.alive)) == .queued)
        // Four workers take the first four dead targets' first deliveries.
        var flying = try (0..<4).map { _ in try #require(q.take()) }
        // Each freed worker takes the next target in turn: dead5 and the healthy one have not
        // been served yet, so they come before any dead target's second delivery.
        var next: [String] = []
        for _ in 0..<2 {
            let ended = flying.removeFirst()
            q.done(ended.id)
            let item = try #require(q.take())
            next.append(item.request.facts.runID?.rawValue ?? "")
            flying.append(item)
        }
        #expect(next == ["d4-1", "ok"])
    }

    @Test("the durable queue: a dropped delivery's row is deleted; after a restart each target resumes in order, one at a time")
    func durableQueuePerTargetAcrossRestart() throws {
        let store = MemoryStateStore()
        let clock = VirtualClock(wall: Self.t0)
        let q = StateStoreNotificationQueue(store: store, clock: clock, capacity: 3)
        let d = { (run: String) in Self.request(run, url: Self.dead) }
        let o = Self.request("o1", url: Self.alive)
        #expect(q.push(d("d1")) == .queued && q.push(d("d2")) == .queued)
        #expect(q.take()?.request == d("d1"))
        #expect(q.push(d("d3")) == .queued)
        #expect(q.push(o) == .queuedDropping(d("d3")))
        #expect(q.take()?.request == o)
        #expect(q.take() == nil)
        q.flush()
        let rows = try store.pendingNotifications(after: 0, limit: 10)
        let runs = rows.compactMap { (try? JSONParser.parse($0.payload)).flatMap(NotificationRequest.init(json:))?.facts.runID?.rawValue }
        #expect(runs == ["d1", "d2", "o1"])

        // The agent died with d1 and o1 in flight: both are offered again, d2 still after d1.
        let restarted = StateStoreNotificationQueue(store: store, clock: clock, capacity: 3)
        #expect(restarted.count == 3)
        let again1 = try #require(restarted.take())
        let again2 = try #require(restarted.take())
        #expect(again1.request == d("d1") && again2.request == o)
        #expect(restarted.take() == nil)
        restarted.done(again1.id)
        let d2 = try #require(restarted.take())
        #expect(d2.request == d("d2"))
        restarted.done(d2.id)
        restarted.done(again2.id)
        #expect(try store.pendingNotifications(after: 0, limit: 10) == [])
    }
}
