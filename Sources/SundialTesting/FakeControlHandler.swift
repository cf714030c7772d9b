import SundialCore
import SundialRuntime
import Synchronization

/// A ``ControlHandler`` with canned replies, recording what it was asked, for tests of the
/// control socket and the client commands. The agent's real handler lives with the agent.
public final class FakeControlHandler: ControlHandler {
    private let replies: Mutex<[String: ControlResponse]>
    private let received = Mutex<[ControlRequest]>([])
    /// How long each answer takes (to test timeouts).
    public let delay: Duration

    /// - Parameter replies: the reply per op (`status`, `trigger`...); others get a failure.
    public init(replies: [String: ControlResponse] = [:], delay: Duration = .zero) {
        self.replies = Mutex(replies)
        self.delay = delay
    }

    public func handle(_ request: ControlRequest) async -> ControlResponse {
        received.withLock { $0.append(request) }
        concurrency.withLock { c in
            c.now += 1
            c.most[request.op] = max(c.most[request.op] ?? 0, c.now)
        }
        defer { concurrency.withLock { $0.now -= 1 } }
        if delay > .zero { try? await Task.sleep(for: delay) }
        return replies.withLock { $0[request.op] } ?? .failure("no reply scripted for \(request.op)")
    }

    public func setReply(_ op: String, _ response: ControlResponse) { replies.withLock { $0[op] = response } }

    private let concurrency = Mutex<(now: Int, most: [String: Int])>((0, [:]))

    /// The most requests being handled at once while one of `op` was (tests of the server's
    /// gates).
    public func mostAtOnce(_ op: String) -> Int { concurrency.withLock { $0.most[op] ?? 0 } }

    /// Every request handled so far, in order.
    public var requests: [ControlRequest] { received.withLock { $0 } }

    /// A plausible reply for every op, for tests that only need an agent that answers.
    public static func sample(now: Instant = Instant(unixSeconds: 1_780_000_000)) -> FakeControlHandler {
        let run = RunSummary(
            id: RunID(rawValue: "01JAAAAAAAAAAAAAAAAAAAAAAA"), job: "backup", trigger: .schedule, scheduledFor: now,
            startedAt: now, finishedAt: now + .seconds(12), outcome: .success(exitCode: 0), attempts: 1)
        let status = StatusReport(
            version: "0.1.0", pid: 4242, revision: "rev-abc", startedAt: now - .seconds(3600),
            jobs: [
                .init(id: "backup", description: "Nightly dump", schedule: "30 2 * * *", next: now + .seconds(86_400), last: run),
                .init(id: "heartbeat", schedule: "every 30s", enabled: false),
            ],
            active: [.init(job: "heartbeat", runID: RunID(rawValue: "01JBBBBBBBBBBBBBBBBBBBBBBB"), attempt: 2, startedAt: now, pid: 777)],
            now: now + .seconds(72))
        let why = WhyReport(
            job: "backup", since: now - .seconds(86_400),
            entries: [
                LedgerEntry(job: "backup", scheduledFor: now - .seconds(60), disposition: .skipped(.overlap), at: now - .seconds(60)),
                LedgerEntry(job: "backup", scheduledFor: now, disposition: .ran(run.id), at: now),
            ],
            next: now + .seconds(86_400))
        return FakeControlHandler(replies: [
            "status": .success(status.json),
            "trigger": .success(TriggerReport(job: "backup", result: .started, runID: RunID(rawValue: "01JCCCCCCCCCCCCCCCCCCCCCCC")).json),
            "history": .success(HistoryReport(job: "backup", runs: [run]).json),
            "why": .success(why.json),
            "reload": .success(ReloadReport(revision: "rev-def", added: ["new"], removed: [], changed: ["backup"]).json),
        ])
    }
}
