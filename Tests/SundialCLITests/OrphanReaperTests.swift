import Foundation
import Glibc
import SundialCore
import SundialRuntime
import SundialTesting
import Testing

/// `sundial run` is a child subreaper: a job's daemonised grandchild re-parents to the agent,
/// and the agent's orphan reaper collects it when it exits (not left a zombie). Only the real
/// agent process does this, so it is tested through the built binary; the test process itself
/// is no subreaper (its runners reap only their own children).
@Suite(.timeLimit(.minutes(2)), .offPool) struct OrphanReaperTests {
    /// A field of /proc/PID/status ("State", "PPid"), `nil` once the process is gone.
    static func status(_ pid: Int32, _ key: String) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
            return line.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces)
        }
        return nil
    }

    @Test func aDoubleForkedGrandchildIsReapedByTheAgent() async throws {
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let conf = root.appendingPathComponent("conf").path
        try FileManager.default.createDirectory(atPath: conf, withIntermediateDirectories: true)
        let pidFile = root.appendingPathComponent("daemon.pid").path
        let script = root.appendingPathComponent("daemonize.sh").path
        // The daemon leaves the job's session and group and outlives the job by 3 s.
        try "setsid sh -c 'exec sleep 3' </dev/null >/dev/null 2>&1 &\necho $! >> '\(pidFile)'\n"
            .write(toFile: script, atomically: true, encoding: .utf8)
        try JobFiles.writeInPlace(
            "version: 1\njobs:\n  daemonize:\n    schedule: \"@reboot\"\n    command: [/bin/sh, '\(script)']\n",
            to: conf + "/a.yaml")
        // Without cgroups: with them, the run's end kills the daemon at once (everything left in
        // its cgroup), before it can be seen alive under the agent.
        let agent = try await AgentProcess(root: root, config: [conf], environment: ["SUNDIAL_CGROUPS": "off"])
        defer { agent.kill() }

        // The first daemon's pid, once the job has written it.
        var daemon: Int32?
        let deadline = ContinuousClock.now + .seconds(20)
        while daemon == nil, ContinuousClock.now < deadline {
            daemon = (try? String(contentsOfFile: pidFile, encoding: .utf8))?.split(separator: "\n").first.flatMap { Int32($0) }
            if daemon == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        let pid = try #require(daemon, "the job never wrote the daemon's pid")
        // Re-parented to the agent once the job's shell has exited (the daemon lives 3 s).
        var sawReparent = false
        var gone = false
        let end = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < end {
            guard let ppid = Self.status(pid, "PPid") else {
                gone = true
                break
            }
            if ppid == String(agent.pid) { sawReparent = true }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(sawReparent, "daemon \(pid) never re-parented to the agent \(agent.pid)")
        #expect(gone, "daemon \(pid) still exists after it ended: \(Self.status(pid, "State") ?? "-") (not reaped)")
        let completion = await agent.stop()
        #expect(completion.exitCode == 0)
    }
}
