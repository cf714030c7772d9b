import CSundialShim
import Foundation
import SundialRuntime
import SundialTesting
import Testing

/// Before its first thread starts (AgentSignals.prepareProcess) the agent raises its soft
/// open-files limit (jobs get the original back) and grows its descriptor table: grown later,
/// while threads share it, each growth waits for an RCU grace period with every thread that
/// opens a descriptor asleep, which stalled a fresh agent's first burst of 100 jobs by 7 to 13 ms.
@Suite("Agent descriptor table and open-files limit", .offPool)
struct DescriptorTableTests {
    /// `FDSize` of /proc/PID/status: the table's slots.
    static func tableSize(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        return status.split(separator: "\n").first { $0.hasPrefix("FDSize:") }
            .flatMap { Int($0.dropFirst("FDSize:".count).trimmingCharacters(in: .whitespaces)) }
    }

    /// This process's open-files limits (soft, hard).
    static func openFilesLimit() throws -> (soft: Int, hard: Int) {
        var limit = rlimit()
        try #require(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0)
        return (Int(clamping: limit.rlim_cur), Int(clamping: limit.rlim_max))
    }

    /// The "Max open files" soft limit of /proc/PID/limits.
    static func softOpenFiles(_ pid: Int32) -> Int? {
        guard let limits = try? String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8),
            let line = limits.split(separator: "\n").first(where: { $0.hasPrefix("Max open files") })
        else { return nil }
        return line.dropFirst("Max open files".count).split(separator: " ").first.flatMap { Int($0) }
    }

    @Test func theAgentStartsWithATableForBursts() async throws {
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let conf = root.appendingPathComponent("conf")
        try FileManager.default.createDirectory(at: conf, withIntermediateDirectories: true)
        try TestFile.write(
            "version: 1\njobs:\n  a:\n    schedule: \"0 0 1 1 *\"\n    command: [/bin/true]\n", to: conf.appendingPathComponent("jobs.yaml").path)
        let agent = try await AgentProcess(root: root, config: [conf.path], lifetime: 30)
        defer { agent.kill() }
        // The table is bounded by the agent's soft limit: the hard one where it raises its own
        // to that, elsewhere this process's soft limit, which it inherits.
        let (soft, hard) = try Self.openFilesLimit()
        let expected = min(AgentSignals.descriptorTableSlots, AgentSignals.raisesOpenFilesLimit ? hard : soft)
        let size = try #require(Self.tableSize(agent.pid))
        #expect(size >= expected, "FDSize \(size), expected at least \(expected)")
        _ = await agent.stop()
    }

    /// Started with a soft limit of 512 (a shell's is often 1,024: about 330 runs at once), the
    /// agent raises its own to the hard limit, and a job still sees 512: with a cgroup (the
    /// clone3 path jobs with cgroups always take) and without (which posix_spawn took before).
    @Test(.enabled(if: ((try? Self.openFilesLimit().hard) ?? 0) > 512, "a hard limit over 512"), arguments: [true, false])
    func theAgentRaisesItsOpenFilesLimitAndJobsGetTheOriginalBack(cgroups: Bool) async throws {
        let (_, hard) = try Self.openFilesLimit()
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let conf = root.appendingPathComponent("conf")
        try FileManager.default.createDirectory(at: conf, withIntermediateDirectories: true)
        let seen = root.appendingPathComponent("job-limit").path
        try TestFile.write(
            """
            version: 1
            jobs:
              limit:
                schedule: "* * * * * *"
                shell: "ulimit -Sn > \(seen).tmp && mv \(seen).tmp \(seen)"

            """, to: conf.appendingPathComponent("jobs.yaml").path)
        let agent = try await AgentProcess(
            root: root, config: [conf.path], lifetime: 30, environment: cgroups ? [:] : ["SUNDIAL_CGROUPS": "off"], softOpenFiles: 512)
        defer { agent.kill() }
        // Raised where jobs are spawned by the vfork-like clone3 (x86-64, Linux 5.11 and later),
        // kept where they may be started by posix_spawn.
        let raised = AgentSignals.raisesOpenFilesLimit
        #expect(Self.softOpenFiles(agent.pid) == (raised ? hard : 512), "the agent's own soft limit (raised: \(raised))")
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline, !FileManager.default.fileExists(atPath: seen) {
            try await Task.sleep(for: .milliseconds(50))
        }
        let text = try String(contentsOfFile: seen, encoding: .utf8)
        #expect(text.trimmingCharacters(in: .whitespacesAndNewlines) == "512", "the job's soft limit")
        _ = await agent.stop()
    }
}
