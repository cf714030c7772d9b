import Foundation
import SundialCore
import SundialRuntime
import SundialTesting
import Testing

/// A run's output in the event log reads in the order it was written, after `run.started`: the
/// agent holds the first lines until it has logged the start, and past what it holds it counts
/// them (`log.dropped`) rather than logging them ahead (a probe saw lines 1001–20000 of a run
/// logged before its `run.started`, then lines 1–1000).
@Suite(.offPool) struct OutputOrderTests {
    @Test func aRunsOutputIsLoggedInOrderAfterItsStart() async throws {
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let conf = root.appendingPathComponent("jobs.yaml")
        try """
        version: 1
        jobs:
          burst: { schedule: "@reboot", command: [seq, "1", "20000"] }
        """.write(to: conf, atomically: true, encoding: .utf8)
        let agent = try await AgentProcess(root: root, config: [conf.path], lifetime: 60)
        defer { agent.kill() }
        _ = try await agent.waitFor("the run's end", timeout: 30) { $0.name == "run.finished" }
        let status = await agent.stop()
        #expect(status.outcome == .success(exitCode: 0), "\(status.outcome)")
        let events = agent.events()
        let started = try #require(events.firstIndex { $0.name == "run.started" })
        let outputs = events.indices.filter { events[$0].name == "run.output" }
        #expect(outputs.allSatisfy { $0 > started }, "output logged before run.started")
        let numbers = outputs.compactMap { events[$0]["line"]?.stringValue.flatMap { Int($0) } }
        #expect(numbers == numbers.sorted(), "output logged out of order")
        let dropped = events.filter { $0.name == "log.dropped" }.compactMap { $0["lines"]?.int }.reduce(0, +)
        #expect(numbers.count + Int(dropped) == 20_000)
    }
}
