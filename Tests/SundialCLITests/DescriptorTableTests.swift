import Foundation
import SundialRuntime
import SundialTesting
import Testing

/// The agent grows its descriptor table before its first thread starts (AgentSignals.prepareProcess):
/// grown later, while threads share it, each growth waits for an RCU grace period with every
/// thread that opens a descriptor asleep, which stalled a fresh agent's first burst of 100 jobs
/// by 7 to 13 ms.
@Suite("Agent descriptor table", .offPool)
struct DescriptorTableTests {
    /// `FDSize` of /proc/PID/status: the table's slots.
    static func tableSize(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        return status.split(separator: "\n").first { $0.hasPrefix("FDSize:") }
            .flatMap { Int($0.dropFirst("FDSize:".count).trimmingCharacters(in: .whitespaces)) }
    }

    @Test func theAgentStartsWithATableForBursts() async throws {
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let conf = root.appendingPathComponent("conf")
        try FileManager.default.createDirectory(at: conf, withIntermediateDirectories: true)
        try "version: 1\njobs:\n  a:\n    schedule: \"0 0 1 1 *\"\n    command: [/bin/true]\n"
            .write(to: conf.appendingPathComponent("jobs.yaml"), atomically: true, encoding: .utf8)
        let agent = try await AgentProcess(root: root, config: [conf.path], lifetime: 30)
        defer { agent.kill() }
        // The agent inherits this process's soft limit, which bounds the table.
        var limit = rlimit()
        try #require(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0)
        let expected = min(AgentSignals.descriptorTableSlots, Int(clamping: limit.rlim_cur))
        let size = try #require(Self.tableSize(agent.pid))
        #expect(size >= expected, "FDSize \(size), expected at least \(expected)")
        _ = await agent.stop()
    }
}
