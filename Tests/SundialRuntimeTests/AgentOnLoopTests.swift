import SundialCore
import SundialTesting
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
}
