import SundialCore
import SundialTesting
import Synchronization
import Testing

@testable import SundialRuntime

/// The agent's hook on virtual time: each scheduler step reaches the notifier whole, so a
/// failed attempt followed by its retry is `retry`, the last one `failure`, the next success
/// `recovered`.
@Suite("Agent: notifications from real scheduler steps", .offPool)
struct AgentNotifyTests {
    final class Recorder: NotificationSender {
        let seen = Mutex<[NotificationRequest]>([])
        func send(_ request: NotificationRequest) -> DeliveryResult {
            seen.withLock { $0.append(request) }
            return .sent(detail: "ok")
        }
    }

    @Test func retryThenFailureThenRecovered() async throws {
        let start = try RFC3339.parse("2026-06-01T00:00:30Z").instant
        let h = try AgentHarness(
            yaml: """
                version: 1
                jobs:
                  backup:
                    schedule: "0 * * * *"
                    timezone: UTC
                    command: [x]
                    retry: { attempts: 2, backoff: fixed, delay: 1m }
                    notify: [{ on: [failure, retry, recovered], command: [notify-me] }]
                """, start: start, script: ["backup": [.init(.failure(exitCode: 2), durationMs: 1000), .init(.timeout, durationMs: 5000)]],
            zones: SystemTimeZones())
        let recorder = Recorder()
        let notifier = Notifier(sender: recorder, log: EventLog(sink: MemoryEventSink(), clock: h.clock), clock: h.clock, box: "b")
        await h.agent.setNotifier(notifier)
        try await h.start()
        await h.advance(to: try RFC3339.parse("2026-06-01T02:00:30Z").instant)
        #expect(notifier.waitForDeliveries(upToMs: 5000) == 0)
        let seen = recorder.seen.withLock { $0 }
        #expect(seen.map(\.event) == [.retry, .failure, .recovered])
        #expect(seen.map { $0.facts.attempt } == [1, 2, 1])
        #expect(seen.map { $0.facts.outcome } == ["failure", "timeout", "success"])
        #expect(seen[0].facts.runID == seen[1].facts.runID && seen[1].facts.runID != seen[2].facts.runID)
    }
}
