import SundialCore
import SundialTesting
import Synchronization
import Testing

@testable import SundialRuntime

#if canImport(Glibc)
import Glibc
#endif

/// The agent on an event loop, as `sundial run` has it (issue 16): its launches are prepared on
/// the loop's thread, except those whose preparation may wait on the outside world (password
/// and group lookups through NSS, an `env_file` read), which must not stall the loop.
@Suite("The agent on its event loop", .offPool)
struct AgentOnLoopTests {
    static let yaml = """
        version: 1
        jobs:
          plain: { every: 1h, command: [x] }
          as-user: { every: 1h, command: [x], user: nobody }
          with-env: { every: 1h, command: [x], env_file: /etc/sundial/x.env }

        """

    @Test func launchesRunOnTheLoopUnlessTheirPreparationMayBlock() async throws {
        let loop = try EventLoop(name: "test-agent-loop")
        defer { loop.stop() }
        let start = try RFC3339.parse("2026-06-01T00:00:00Z").instant
        let h = try AgentHarness(yaml: Self.yaml, start: start, zones: SystemTimeZones(), loop: loop)
        try await h.start()
        await h.advance(by: .seconds(3600))
        let end = ContinuousClock.now + .seconds(10)
        while h.launcher.launches.count < 3, ContinuousClock.now < end { try await Task.sleep(for: .milliseconds(2)) }
        let launches = h.launcher.launches
        try #require(Set(launches.map(\.job)) == ["plain", "as-user", "with-env"], "\(launches)")
        let loopThread = try #require(loop.thread)
        var onLoop: [JobID: Bool] = [:]
        for l in launches {
            let t = try #require(h.launcher.launchThread(of: l.runID))
            onLoop[l.job] = pthread_equal(t, loopThread) != 0
        }
        #expect(onLoop == ["plain": true, "as-user": false, "with-env": false])
    }

    /// A task without the loop as its task executor (as `sundial run`'s main task) is put back
    /// in the loop's queue at the hop into `withCheckedContinuation`, after the agent's state
    /// was checked. A stop queued behind it then ran first, and the waiter was added after the
    /// stop had resumed the waiters: under valgrind, `sundial run` hung after `agent.stopped` in
    /// three of 21 stops. The loop is held so that the order is always that one (optimized
    /// builds only: in debug builds the hop does not requeue, so .ci/run also runs this suite
    /// built with optimization).
    @Test(arguments: ["waitUntilStopped", "reloadNow"])
    func aStopQueuedBehindAWaiterStillEndsItsWait(call: String) async throws {
        let loop = try EventLoop(name: "test-stop-race")
        defer { loop.stop() }
        let start = try RFC3339.parse("2026-06-01T00:00:00Z").instant
        let h = try AgentHarness(yaml: "version: 1\njobs:\n  a: { every: 1h, command: [x] }\n", start: start, zones: SystemTimeZones(), loop: loop)
        try await h.start()
        // Hold the loop's thread (bounded: a failing test must not keep it forever).
        let held = Mutex((running: false, released: false))
        defer { held.withLock { $0.released = true } }  // before the loop's stop, which joins it
        Task(executorPreference: loop) {
            held.withLock { $0.running = true }
            let end = ContinuousClock.now + .seconds(20)
            while !held.withLock({ $0.released }), ContinuousClock.now < end { usleep(1000) }
        }
        try await Self.waitFor { held.withLock { $0.running } }
        // The caller's first turn on the loop, then the stop, queued in that order.
        let agent = h.agent
        let waiter = Task.detached { () -> String in
            call == "waitUntilStopped" ? "\(await agent.waitUntilStopped())" : "\(await agent.reloadNow(reason: "test"))"
        }
        try await Self.waitFor { loop.queuedJobs == 1 }
        Task(executorPreference: loop) { await agent.deliver(.shutdown(signal: "SIGTERM")) }
        try await Self.waitFor { loop.queuedJobs == 2 }
        held.withLock { $0.released = true }
        let outcome = try await withDeadline(10) { await waiter.value }
        #expect(outcome == (call == "waitUntilStopped" ? "0" : "notRunning"))
    }

    /// Polls `condition` every millisecond for at most 10 s.
    static func waitFor(_ condition: () -> Bool) async throws {
        let end = ContinuousClock.now + .seconds(10)
        while !condition() {
            try #require(ContinuousClock.now < end, "condition not reached within 10 s")
            try await Task.sleep(for: .milliseconds(1))
        }
    }
}
