import Foundation
import Glibc
import SundialCore
import SundialTesting
import Testing

/// The real agent's `--metrics-file`: final outcomes and next fires reach the file through the
/// agent's step ends (AgentHost wiring), not only through unit-tested parts.
@Suite(.serialized, .timeLimit(.minutes(2)), .offPool) struct MetricsAgentTests {
    @Test func theFileShowsFinalFailuresAndNextFires() async throws {
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let conf = root.appendingPathComponent("conf").path
        try FileManager.default.createDirectory(atPath: conf, withIntermediateDirectories: true)
        try JobFiles.writeInPlace(
            JobFiles.file(
                JobFiles.job("broken", every: "1s", command: "[/bin/false]"),
                JobFiles.job("hourly", every: "1h")), to: conf + "/a.yaml")
        let prom = root.appendingPathComponent("sundial.prom").path
        let agent = try await AgentProcess(root: root, config: [conf], extraArgs: ["--metrics-file", prom])
        defer { agent.kill() }
        // The file is rewritten every 10 s when something changed.
        let deadline = ContinuousClock.now + .seconds(30)
        var text = ""
        while ContinuousClock.now < deadline {
            text = (try? String(contentsOfFile: prom, encoding: .utf8)) ?? ""
            if text.contains("sundial_job_last_failure_timestamp_seconds{job_name=\"broken\"}"),
                text.contains("sundial_job_next_fire_timestamp_seconds{job_name=\"hourly\"}")
            {
                break
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(text.contains("sundial_job_last_failure_timestamp_seconds{job_name=\"broken\"}"), "\(text)")
        #expect(text.contains("sundial_job_next_fire_timestamp_seconds{job_name=\"hourly\"}"))
        #expect(!text.contains("sundial_runs_finished_total{job_name=\"broken\",outcome=\"failure\"} 0\n"))
        #expect(text.contains("sundial_agent_start_timestamp_seconds "))
        #expect(!text.contains("{job="))
        _ = await agent.stop()
    }
}
