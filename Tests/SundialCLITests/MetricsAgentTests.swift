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

    /// `--metrics-listen` with port 0: the port the kernel chose is logged, and serves.
    @Test func theListenerLogsTheAddressItBound() async throws {
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let conf = root.appendingPathComponent("conf").path
        try FileManager.default.createDirectory(atPath: conf, withIntermediateDirectories: true)
        try JobFiles.writeInPlace(JobFiles.file(JobFiles.job("hourly", every: "1h")), to: conf + "/a.yaml")
        let agent = try await AgentProcess(root: root, config: [conf], extraArgs: ["--metrics-listen", "127.0.0.1:0"])
        defer { agent.kill() }
        let event = try await agent.waitFor("metrics.listening") { $0.name == "metrics.listening" }
        let address = try #require(event["address"]?.stringValue)
        #expect(address.hasPrefix("127.0.0.1:"))
        let port = try #require(UInt16(address.dropFirst("127.0.0.1:".count)))
        #expect(port != 0)
        let answer = await offPool { Self.get(port: port, "/metrics") }
        #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(answer.prefix(200))")
        _ = await agent.stop()
    }

    /// One blocking `GET` over loopback with a 5 s timeout (IdleFootprintTests' scrape); the
    /// response, or "" on failure.
    static func get(port: UInt16, _ path: String) -> String {
        (try? IdleFootprintTests.scrape(port: port, request: "GET \(path) HTTP/1.1\r\n\r\n")) ?? ""
    }
}
