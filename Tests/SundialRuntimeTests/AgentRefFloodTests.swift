import Foundation
import SundialCore
import SundialTesting
import Synchronization
import Testing

@testable import SundialRuntime

/// Issue 16, lossless inputs: the threads' inputs (wake-ups, clock changes, reloads, shutdown)
/// reach the agent through ``AgentRef`` without an unbounded queue and without dropping
/// anything that matters. The stream it replaced (`.bufferingNewest(4096)`) dropped the oldest
/// inputs under a flood, which could be the shutdown.
@Suite(.timeLimit(.minutes(1)), .offPool) struct AgentRefFloodTests {
    static let start = Instant(unixMillis: 1_767_225_600_000)
    static let yaml = """
        version: 1
        jobs:
          work: { command: [x], concurrency: allow }
        """

    /// Runs `body(thread)` on `threads` real threads at once; returns when all are done (bounded
    /// by `timeout`).
    static func onThreads(
        _ threads: Int, timeout: Duration = .seconds(20), _ body: @escaping @Sendable (Int) -> Void
    ) async throws {
        let done = Atomic<Int>(0)
        for t in 0..<threads {
            Thread.detachNewThread {
                body(t)
                done.add(1, ordering: .releasing)
            }
        }
        try await poll("\(threads) threads done", timeout: timeout) { done.load(ordering: .acquiring) == threads }
    }

    static func poll(_ what: String, timeout: Duration = .seconds(20), _ condition: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !(await condition()) {
            guard ContinuousClock.now < deadline else { throw Timeout(what: what) }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    struct Timeout: Error, CustomStringConvertible {
        var what: String
        var description: String { "timed out waiting for \(what)" }
    }

    /// The shutdown sent first, then 10,000 wake-ups from four threads before anyone reads:
    /// the old stream kept only the newest 4,096 and lost the shutdown; the inbox keeps it (and
    /// one wake-up, which stands for all the others).
    @Test func aShutdownBuriedUnderAFloodOfWakeUpsStillArrives() async throws {
        let h = try AgentHarness(yaml: Self.yaml, start: Self.start, zones: SystemTimeZones())
        try await h.start()
        let ref = AgentRef()
        defer { ref.close() }
        ref.deliver(.shutdown(signal: "SIGTERM"))
        try await Self.onThreads(4) { _ in for _ in 0..<2500 { ref.deliver(.wake) } }
        #expect(ref.coalescedCount == 9_999)
        ref.set(h.agent)
        try await Self.poll("the agent to stop") { await h.agent.exitCode != nil }
        #expect(await h.agent.exitCode == 0)
        let stopping = h.records.compactMap { if case let .agentStopping(s) = $0 { s } else { nil } }
        #expect(stopping.map(\.cause) == [.signal("SIGTERM")])
    }

    /// Thousands of triggers from four tasks and a flood of wake-ups, reloads and clock changes
    /// from four threads, then SIGTERM in the middle of the flood: every run that started
    /// ends, the agent stops, and the inbox never held more than one input of each kind.
    @Test func everyRunEndAndTheShutdownArriveUnderAFlood() async throws {
        let h = try AgentHarness(yaml: Self.yaml, start: Self.start, zones: SystemTimeZones())
        try await h.start()
        let ref = AgentRef()
        defer { ref.close() }
        ref.set(h.agent)
        let stopFlood = Atomic<Bool>(false)
        // The flood lasts until the agent has stopped (below, up to a minute on a loaded
        // machine), so its own wait is bounded by the test's time limit, not by 20 s.
        let flood = Task.detached {
            try await Self.onThreads(4, timeout: .seconds(58)) { t in
                var i = 0
                while !stopFlood.load(ordering: .relaxed), i < 200_000 {
                    switch (t + i) % 3 {
                    case 0: ref.deliver(.wake)
                    case 1: ref.deliver(.clockChanged)
                    default: ref.deliver(.reload(reason: "flood"))
                    }
                    i += 1
                }
            }
        }
        // Run ends come back as the launcher completes attempts (the agent's own launch tasks
        // deliver them): complete whatever is due until the agent has stopped.
        let completer = Task.detached {
            while await h.agent.exitCode == nil {
                h.launcher.completeDue(at: h.clock.wallNow())
                try await Task.sleep(for: .milliseconds(1))
            }
        }
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask { for _ in 0..<500 { _ = await h.agent.trigger("work") } }
            }
        }
        // The shutdown goes in the middle of the flood: once the flood threads are seen to
        // coalesce (they may start late on a loaded machine; seen: all triggers done first).
        try await Self.poll("the flood to be under way", timeout: .seconds(20)) { ref.coalescedCount > 0 }
        ref.deliver(.shutdown(signal: "SIGTERM"))
        try await Self.poll("the agent to stop", timeout: .seconds(40)) { await h.agent.exitCode != nil }
        stopFlood.store(true, ordering: .relaxed)
        try await flood.value
        try await completer.value
        #expect(await h.agent.exitCode == 0)
        let started = Set(h.records.compactMap { if case let .runStarted(r) = $0 { r.runID } else { nil } })
        let finished = h.records.compactMap { if case let .runFinished(r) = $0 { r.runID } else { nil } }
        #expect(started.count == h.launcher.launchCount)
        #expect(started.count >= 100, "only \(started.count) runs started")
        #expect(Set(finished) == started)
        #expect(finished.count == started.count)
        #expect(h.records.filter { if case .agentStopping = $0 { true } else { false } }.count == 1)
        #expect(ref.coalescedCount > 0)
    }
}
