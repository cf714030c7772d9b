import Foundation
import SundialCore
import SundialRuntime
import SundialTesting
import Testing

/// `sundial logs JOB [--run ID]` (each run's stored output) and `history`, `why`, `logs`, `status`
/// answering from `state.db` once the agent has stopped (issue 17), through the real binary.
@Suite("Stored output and state without the agent, end to end", .serialized, .offPool)
struct StoredStateCommandTests {
    static let config = """
        version: 1
        jobs:
          printer:
            command: [/bin/sh, -c, "echo line one; echo token is $TOKEN; echo run $SUNDIAL_RUN_ID"]
            env: { TOKEN: s3cr3t-value-42 }
            secrets: [TOKEN]
          flaky:
            command: [/bin/sh, -c, "echo try $SUNDIAL_ATTEMPT; exit 1"]
            retry: { attempts: 2, delay: 10ms }
          chatty:
            command: [/bin/sh, -c, "i=0; while [ $i -lt 40 ]; do echo line-$i; i=$((i+1)); done"]
            output: { keep_bytes: 64 }
          beat: { every: 1s, command: [/bin/true] }
          quiet: { command: [/bin/true] }
        """

    /// The note every command prints on stderr when it answers from the database.
    static func note(_ state: String) -> String {
        "sundial: no agent is answering on \(state)/sundial.sock (No such file or directory); showing \(state)/state.db as of its last commit\n"
    }

    @Test func logsPrintsStoredOutputAndEveryReaderAnswersFromTheDatabaseAfterTheAgentStops() async throws {
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let configPath = root.appendingPathComponent("jobs.yaml").path
        try Self.config.write(toFile: configPath, atomically: true, encoding: .utf8)
        let state = root.appendingPathComponent("state").path
        let agent = try await AgentProcess(root: root, config: [configPath], lifetime: 60)
        defer { agent.kill() }
        func sundial(_ args: String...) async throws -> CLI.Result { try await CLI.run(args + ["--state", state]) }
        func runID(_ trigger: CLI.Result) -> String { trigger.stdout.split(separator: " ").last.map { String($0.dropLast(2)) } ?? "" }

        let first = runID(try await sundial("trigger", "printer", "--wait"))
        let second = runID(try await sundial("trigger", "printer", "--wait"))
        let flaky = try await sundial("trigger", "flaky", "--wait")
        #expect(flaky.status == 1)
        #expect(try await sundial("trigger", "chatty", "--wait").status == 0)
        #expect(try await sundial("trigger", "quiet", "--wait").status == 0)
        try await agent.waitFor("a beat") { $0.name == "run.finished" && $0["job"]?.stringValue == "beat" }

        // With the agent: the last run's output, its secret masked, which run it was on stderr.
        let logs = try await sundial("logs", "printer")
        #expect(logs.status == 0, "\(logs.stderr)")
        #expect(logs.stdout == "line one\ntoken is ***\nrun \(second)\n", "\(logs.stdout)")
        #expect(logs.stderr.hasPrefix("printer: run \(second), success, finished "), "\(logs.stderr)")
        #expect(!logs.stdout.contains("s3cr3t") && !logs.stderr.contains("s3cr3t"))
        let older = try await sundial("logs", "printer", "--run", first)
        #expect(older.status == 0 && older.stdout.hasSuffix("run \(first)\n"), "\(older.stdout) \(older.stderr)")
        // Every attempt, with a header each; a note where earlier bytes were not kept.
        let attempts = try await sundial("logs", "flaky")
        #expect(attempts.stdout == "== attempt 1 ==\ntry 1\n== attempt 2 ==\ntry 2\n", "\(attempts.stdout)")
        #expect(attempts.stderr.contains("failure (exit 1)") && attempts.stderr.hasSuffix(", 2 attempts\n"), "\(attempts.stderr)")
        let chatty = try await sundial("logs", "chatty")
        #expect(chatty.stdout.hasPrefix("== ") && chatty.stdout.contains("earlier bytes of this attempt's output were not kept ==\n"))
        #expect(chatty.stdout.hasSuffix("line-39\n") && !chatty.stdout.contains("line-0\n"), "\(chatty.stdout)")
        let quiet = try await sundial("logs", "quiet")
        #expect(quiet.status == 0 && quiet.stdout == "" && quiet.stderr.contains("no output stored for this run"), "\(quiet.stderr)")
        let json = try await sundial("logs", "printer", "--format", "json")
        let report = try LogsReport(json: try ControlResponse(line: Array(json.stdout.utf8.dropLast())).body)
        #expect(report.run?.id.rawValue == second && report.attempts.map(\.attempt) == [1])
        // Errors: another job's run, a typo.
        let wrongJob = try await sundial("logs", "flaky", "--run", first)
        #expect(wrongJob.status == 1 && wrongJob.stderr.contains("is not a recorded run of flaky"), "\(wrongJob.stderr)")
        let typo = try await sundial("logs", "printr")
        #expect(typo.status == 1 && typo.stderr == "sundial: unknown job printr; did you mean `printer`?\n", "\(typo.stderr)")

        #expect(await agent.stop().exitCode == 0)

        // Without the agent: the same answers from state.db, with one line saying so.
        let note = Self.note(state)
        let offLogs = try await sundial("logs", "printer")
        #expect(offLogs.status == 0 && offLogs.stdout == logs.stdout, "\(offLogs.stdout)")
        #expect(offLogs.stderr.hasPrefix(note + "printer: run \(second), success, finished "), "\(offLogs.stderr)")
        let offAttempts = try await sundial("logs", "flaky")
        #expect(offAttempts.stdout == attempts.stdout)
        let offOlder = try await sundial("logs", "printer", "--run", first)
        #expect(offOlder.stdout == older.stdout)

        let history = try await sundial("history", "printer")
        #expect(history.status == 0 && history.stderr == note, "\(history.stderr)")
        let rows = history.stdout.split(separator: "\n")
        #expect(rows.count == 3 && rows[1].contains(second) && rows[2].contains(first), "\(history.stdout)")

        let why = try await sundial("why", "beat")
        #expect(why.status == 0 && why.stderr == note, "\(why.stderr)")
        #expect(why.stdout.contains("ran (run ") && why.stdout.contains("next fire: not known without the agent"), "\(why.stdout)")

        let status = try await sundial("status")
        #expect(status.status == 0 && status.stderr == note, "\(status.stderr)")
        #expect(status.stdout.hasPrefix("no agent running: last seen "), "\(status.stdout)")
        let lines = status.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("printer ") && $0.contains("success in ") && $0.hasSuffix(second) }, "\(status.stdout)")
        #expect(lines.contains { $0.hasPrefix("flaky ") && $0.contains("failure (exit 1)") }, "\(status.stdout)")
        let statusJSON = try await sundial("status", "--format", "json")
        #expect(statusJSON.stdout.hasPrefix(#"{"v":1,"ok":true,"offline":true,"#), "\(statusJSON.stdout)")

        // An unknown job offline: the database's nearest id.
        let offTypo = try await sundial("history", "printr")
        #expect(
            offTypo.status == 1 && offTypo.stderr.hasSuffix("unknown job printr (the state database has no record of it); did you mean `printer`?\n"),
            "\(offTypo.stderr)")
        // Commands that need the agent still exit 3.
        let trigger = try await sundial("trigger", "printer")
        #expect(trigger.status == 3)
        let follow = try await sundial("logs", "printer", "-f")
        #expect(follow.status == 3)
    }

    @Test(arguments: ["status", "history", "why", "logs"])
    func noAgentAndNoDatabaseExitsThreeNamingBoth(command: String) async throws {
        let dir = FileManager.default.temporaryDirectory.path + "/cli-nostate-\(UUID().uuidString.prefix(8))"
        let r = try await CLI.run([command] + (command == "status" ? [] : ["backup"]) + ["--state", dir])
        #expect(r.status == 3)
        #expect(r.stdout == "")
        #expect(
            r.stderr == "sundial: no agent is answering on \(dir)/sundial.sock (No such file or directory); "
                + "and the state database cannot be read either: state \(dir)/state.db: cannot read the state database: No such file or directory\n",
            "\(r.stderr)")
    }

    @Test func theStateDirectoryComesFromSUNDIAL_STATE() async throws {
        let dir = FileManager.default.temporaryDirectory.path + "/cli-env-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStateStore(path: dir + "/state.db")
        try store.apply([
            .runStarted(
                RunRecord(
                    id: RunID(rawValue: "r1"), job: "seeded", trigger: .manual, scheduledFor: nil,
                    startedAt: Instant(unixMillis: 1_000)))
        ])
        try store.apply([
            .runFinished(runID: RunID(rawValue: "r1"), outcome: .success(exitCode: 0), at: Instant(unixMillis: 2_000)),
            .outputStored(RunOutputRecord(runID: RunID(rawValue: "r1"), attempt: 1, text: "seeded output\n", droppedBytes: 12)),
        ])
        try store.close()
        let r = try await CLI.run(["logs", "seeded"], env: ["SUNDIAL_STATE": dir])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "== 12 earlier bytes of this attempt's output were not kept ==\nseeded output\n")
        #expect(r.stderr.hasPrefix(Self.note(dir)))
    }
}
