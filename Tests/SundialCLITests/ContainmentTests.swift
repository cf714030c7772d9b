import Foundation
import SundialCore
import SundialRuntime
import SundialTesting
import Testing

/// A real agent's runs are contained: SIGTERM to the agent leaves none of a run's processes,
/// `setsid` and double-forked ones included. The agent under test is itself started through the
/// test's runner, so its own cgroup is a run's (`.../runs/run-X`): it moves itself into
/// `run-X/agent` and puts its runs in `run-X/runs` — the layout of a systemd service.
@Suite(.offPool) struct ContainmentTests {
    static let hasCgroups = (try? TestRunner.shared().cgroupTree.runsDirectory) != nil

    @Test(.enabled(if: hasCgroups))
    func agentShutdownKillsEveryProcessOfARun() async throws {
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let m1 = "299.\(getpid())01"
        let m2 = "299.\(getpid())02"
        let conf = root.appendingPathComponent("jobs.yaml")
        try """
        version: 1
        jobs:
          escaper:
            schedule: "@reboot"
            shell: "trap '' TERM; setsid sleep \(m1) </dev/null >/dev/null 2>&1 & sh -c 'sleep \(m2) </dev/null >/dev/null 2>&1 &'; echo started; sleep 60"
        """.write(to: conf, atomically: true, encoding: .utf8)
        let agent = try await AgentProcess(
            root: root, config: [conf.path], extraArgs: ["--shutdown-grace", "500ms"], lifetime: 30,
            contained: true)
        defer { agent.kill() }
        let agentCgroup = try #require(agent.handle.cgroupPath)
        _ = try await agent.waitFor("the job's output", timeout: 10) { $0.name == "run.output" }
        #expect(await eventually(10) { !pids(withArgument: m1).isEmpty && !pids(withArgument: m2).isEmpty })
        // The agent moved itself out of its cgroup, and the run is below `runs`.
        #expect(try String(contentsOfFile: "/proc/\(agent.pid)/cgroup", encoding: .utf8).hasSuffix("/agent\n"))
        let runs = try FileManager.default.contentsOfDirectory(atPath: agentCgroup + "/runs").filter { $0.hasPrefix("run-") }
        #expect(runs.count == 1, "\(runs)")

        let status = await agent.stop()
        #expect(status.outcome == .success(exitCode: 0), "\(status.outcome)")
        #expect(
            pids(withArgument: m1).isEmpty && pids(withArgument: m2).isEmpty,
            "left: \(pids(withArgument: m1)) \(pids(withArgument: m2))")
        let finished = agent.events().filter { $0.name == "run.finished" }
        #expect(finished.count == 1)
        #expect(!FileManager.default.fileExists(atPath: agentCgroup + "/runs/" + runs[0]), "the run's cgroup is removed")
        for p in pids(withArgument: m1) + pids(withArgument: m2) { kill(p, SIGKILL) }
    }
}

/// Pids whose command line has the argument `marker`.
func pids(withArgument marker: String) -> [Int32] {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    return entries.compactMap { e in
        guard let pid = Int32(e), let data = FileManager.default.contents(atPath: "/proc/\(e)/cmdline") else { return nil }
        return data.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == marker } ? pid : nil
    }
}

/// Polls `condition` every 20 ms for up to `seconds`.
func eventually(_ seconds: Double, _ condition: () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}
