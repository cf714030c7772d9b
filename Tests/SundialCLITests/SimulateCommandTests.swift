import Foundation
import SundialTesting
import Testing

@Suite("sundial simulate and sundial next JOB (built binary)", .serialized, .offPool)
struct SimulateCommandTests {
    func lines(_ s: String) -> [[String: Any]] {
        s.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    @Test func simulatesTheBackupDAGOverADSTNight() async throws {
        let r = try await CLI.run(["simulate", "examples/backup.yaml", "--from", "2026-03-28T12:00:00Z", "--to", "2026-03-30T12:00:00Z"])
        #expect(r.status == 0, "\(r.stderr)")
        let events = lines(r.stdout)
        let started = events.filter { $0["event"] as? String == "run.started" }
        let dumps = started.filter { $0["job"] as? String == "dump-db" }.compactMap { $0["scheduled_for"] as? String }
        // 02:30 Europe/Berlin: CET on the 29th's eve... the 29th's 02:30 does not exist (R2: 03:00 CEST).
        #expect(dumps == ["2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"])
        // Each dump is followed by upload and verify, then report (fan-in).
        let order = started.map { $0["job"] as? String ?? "" }
        #expect(order.filter { $0 == "report" }.count == 2)
        if let firstReport = order.firstIndex(of: "report"), let firstVerify = order.firstIndex(of: "verify"),
            let firstUpload = order.firstIndex(of: "upload")
        {
            #expect(firstReport > firstVerify && firstReport > firstUpload)
        } else {
            Issue.record("missing runs: \(order)")
        }
    }

    @Test func scriptedOutcomesDriveRetries() async throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let outcomes = dir.appendingPathComponent("outcomes.yaml")
        try Data(
            "cert-renew:\n  - { outcome: failure, exit_code: 1, duration: 30s }\n  - { outcome: timeout, duration: 15m }\n  - { outcome: success, duration: 1m }\n"
                .utf8
        ).write(to: outcomes)
        let r = try await CLI.run([
            "simulate", "examples/cert-renewal.yaml", "--from", "2026-05-31T23:00:00Z",
            "--to", "2026-06-01T06:00:00Z", "--outcomes", outcomes.path, "--seed", "7",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let events = lines(r.stdout)
        let finished = events.filter { $0["event"] as? String == "run.finished" && $0["job"] as? String == "cert-renew" }
        #expect(finished.compactMap { $0["outcome"] as? String } == ["failure", "timeout", "success"])
        #expect(events.filter { $0["event"] as? String == "run.retry_scheduled" }.count == 2)
        #expect(events.contains { $0["event"] as? String == "run.started" && $0["job"] as? String == "reload-nginx" })
        // Same seed, same output.
        let again = try await CLI.run([
            "simulate", "examples/cert-renewal.yaml", "--from", "2026-05-31T23:00:00Z",
            "--to", "2026-06-01T06:00:00Z", "--outcomes", outcomes.path, "--seed", "7",
        ])
        #expect(again.stdout == r.stdout)
    }

    @Test func badOutcomesFileIsPositioned() async throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let outcomes = dir.appendingPathComponent("o.yaml")
        try Data("heartbeat:\n  - { outcome: exploded }\n".utf8).write(to: outcomes)
        let r = try await CLI.run([
            "simulate", "examples/heartbeat.yaml", "--from", "2026-06-01T00:00:00Z",
            "--to", "2026-06-01T01:00:00Z", "--outcomes", outcomes.path,
        ])
        #expect(r.status == 1)
        #expect(r.stderr.contains("o.yaml:2:16: error: unknown outcome `exploded`"))
    }

    @Test func nextOfAConfiguredJobUsesItsZone() async throws {
        let r = try await CLI.run(["next", "dump-db", "examples/", "--count", "3", "--after", "2026-03-28T00:00:00Z"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "2026-03-28T02:30:00+01:00\n2026-03-29T03:00:00+02:00\n2026-03-30T02:30:00+02:00\n")
        let manual = try await CLI.run(["next", "upload", "examples/"])
        #expect(manual.status == 1)
        #expect(manual.stderr.contains("has no schedule"))
        let unknown = try await CLI.run(["next", "dump-dbb", "examples/"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("did you mean `dump-db`?"))
    }
}
