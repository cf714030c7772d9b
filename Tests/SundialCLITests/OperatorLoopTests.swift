import Foundation
import SundialCore
import SundialRuntime
import SundialTesting
import Synchronization
import Testing

/// The operator's loop through the real binary (issue 17): `trigger --wait` / `--follow`,
/// `logs -f` while a job prints, `pause` / `resume`, "did you mean" for unknown jobs, `status`
/// for people and `why` for a job started by its needs.
@Suite("Operator loop, end to end", .serialized, .offPool)
struct OperatorLoopTests {
    struct Setup {
        let root: URL
        let agent: AgentProcess
        var state: String { root.appendingPathComponent("state").path }

        init(_ yaml: String) async throws {
            root = try CLI.tempDir()
            let config = root.appendingPathComponent("jobs.yaml").path
            try yaml.write(toFile: config, atomically: true, encoding: .utf8)
            agent = try await AgentProcess(root: root, config: [config], lifetime: 60)
        }

        func sundial(_ args: String..., timeout: Double = 30) async throws -> CLI.Result {
            try await CLI.run(args + ["--state", state], timeout: timeout)
        }

        func finish() async {
            let end = await agent.stop()
            #expect(end.exitCode == 0)
            try? FileManager.default.removeItem(at: root)
        }
    }

    @Test func triggerWaitExitsWithTheRunsStatusAndFollowStreamsItsOutput() async throws {
        let s = try await Setup(
            """
            version: 1
            jobs:
              good: { command: [/bin/sh, -c, "echo first; echo to-stderr >&2; sleep 0.3; echo second"] }
              bad: { command: [/bin/sh, -c, "echo failing; exit 3"] }
              sig: { command: [/bin/sh, -c, "kill -9 $$"] }
              hello: { command: [/bin/true] }
            """)
        let good = try await s.sundial("trigger", "good", "--wait")
        #expect(good.status == 0, "\(good.stderr)")
        #expect(good.stdout.hasPrefix("good: success in "), "\(good.stdout)")
        #expect(!good.stdout.contains("first"), "--wait alone prints no output")

        let bad = try await s.sundial("trigger", "bad", "--wait")
        #expect(bad.status == 3, "\(bad.stderr)")
        #expect(bad.stdout.hasPrefix("bad: failure (exit 3) in "), "\(bad.stdout)")

        let sig = try await s.sundial("trigger", "sig", "--wait")
        #expect(sig.status == 137 && sig.stdout.hasPrefix("sig: signal 9"), "\(sig.stdout) \(sig.stderr)")

        let follow = try await s.sundial("trigger", "good", "--follow")
        #expect(follow.status == 0, "\(follow.stderr)")
        #expect(follow.stdout == "first\nsecond\n")
        #expect(follow.stderr.contains("to-stderr\n") && follow.stderr.contains("good: success in "), "\(follow.stderr)")

        let json = try await s.sundial("trigger", "bad", "--wait", "--format", "json")
        #expect(json.status == 3)
        let lines = json.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.contains("\"stream\":true") == true && lines.last?.contains("\"kind\":\"ended\"") == true, "\(json.stdout)")

        // Did you mean, in every client command.
        for args in [
            ["trigger", "helo"], ["trigger", "helo", "--wait"], ["why", "helo"], ["history", "helo"], ["pause", "helo"],
            ["resume", "helo"], ["logs", "helo", "-f"],
        ] {
            let r = try await CLI.run(args + ["--state", s.state])
            #expect(r.status == 1 && r.stderr == "sundial: unknown job helo; did you mean `hello`?\n", "\(args): \(r.stderr)")
        }
        await s.finish()
    }

    @Test func logsFollowsARunningJobLiveUntilItEnds() async throws {
        let s = try await Setup(
            """
            version: 1
            jobs:
              ticker: { command: [/bin/sh, -c, "i=0; while [ $i -lt 12 ]; do echo tick $i; i=$((i+1)); sleep 0.25; done"] }
            """)
        let mark = s.agent.mark()
        let trigger = try await s.sundial("trigger", "ticker")
        #expect(trigger.status == 0)
        try await s.agent.waitFor("the first tick", after: mark) { $0.name == "run.output" && $0["line"]?.stringValue == "tick 0" }
        let logs = try await s.sundial("logs", "ticker", "-f")
        #expect(logs.status == 0, "\(logs.stderr)")
        // Joined mid-run: what came after it, through the last line, then the end.
        #expect(logs.stdout.hasSuffix("tick 11\n") && !logs.stdout.contains("tick 0\n"), "\(logs.stdout)")
        #expect(logs.stderr.contains("ticker: success in "), "\(logs.stderr)")

        // Nothing running: `logs -f` waits for the next run. Triggers keep coming until it has
        // seen one whole run (one may start before it is listening; the next one is its).
        let finished = Mutex(false)
        let follower = Task {
            defer { finished.withLock { $0 = true } }
            return try await s.sundial("logs", "ticker", "-f")
        }
        // Give it time to connect before the first trigger (a run it missed is just retried).
        let connectBy = ContinuousClock.now + .seconds(3)
        while !finished.withLock({ $0 }), ContinuousClock.now < connectBy { try await Task.sleep(for: .milliseconds(50)) }
        let deadline = ContinuousClock.now + .seconds(20)
        var triggers = 0
        while !finished.withLock({ $0 }), ContinuousClock.now < deadline {
            _ = try await s.sundial("trigger", "ticker", "--wait")
            triggers += 1
            let settleBy = ContinuousClock.now + .seconds(2)
            while !finished.withLock({ $0 }), ContinuousClock.now < settleBy { try await Task.sleep(for: .milliseconds(50)) }
        }
        let waited = try await follower.value
        #expect(waited.status == 0, "\(waited.stderr)")
        #expect(waited.stderr.contains("ticker: not running; waiting for its next run"), "\(waited.stderr)")
        #expect(waited.stdout.hasPrefix("tick 0\n") && waited.stdout.hasSuffix("tick 11\n"), "after \(triggers) triggers: \(waited.stdout)")

        // Without -f: the last run's stored output, all of it.
        let stored = try await s.sundial("logs", "ticker")
        #expect(stored.status == 0 && stored.stdout.hasPrefix("tick 0\n") && stored.stdout.hasSuffix("tick 11\n"), "\(stored.stderr)")
        await s.finish()
    }

    @Test func pauseSkipsFiresRecordsThemAndResumeRunsAgain() async throws {
        let s = try await Setup(
            """
            version: 1
            jobs:
              beat: { every: 1s, command: [/bin/true] }
              other: { every: 1h, command: [/bin/true], timezone: Europe/Paris, schedule: null }
            """.replacingOccurrences(of: ", schedule: null", with: ""))
        try await s.agent.waitFor("a first beat") { $0.name == "run.finished" && $0["job"]?.stringValue == "beat" }
        let pause = try await s.sundial("pause", "beat")
        #expect(pause.status == 0 && pause.stdout == "beat: paused\n", "\(pause.stdout) \(pause.stderr)")
        let again = try await s.sundial("pause", "beat")
        #expect(again.stdout == "beat: already paused\n")
        let paused = try await s.agent.waitFor("job.paused") { $0.name == "job.paused" }
        #expect(paused["job"]?.stringValue == "beat")
        let mark = s.agent.mark()
        try await s.agent.waitFor("a paused skip", after: mark) {
            $0.name == "run.skipped" && $0["job"]?.stringValue == "beat" && $0["reason"]?.stringValue == "paused"
        }
        let started = s.agent.events().dropFirst(mark).filter { $0.name == "run.started" && $0["job"]?.stringValue == "beat" }
        #expect(started.isEmpty, "a paused job ran")

        let status = try await s.sundial("status")
        #expect(status.stdout.contains("paused (skips the fire "), "\(status.stdout)")
        #expect(status.stdout.contains("1 paused (sundial resume JOB)"))
        let json = try await s.sundial("status", "--format", "json")
        let report = try StatusReport(json: try ControlResponse(line: Array(json.stdout.utf8.dropLast())).body)
        #expect(report.jobs.first { $0.id == "beat" }?.paused == true)
        #expect(report.jobs.first { $0.id == "other" }?.paused == false)
        let why = try await s.sundial("why", "beat")
        #expect(why.stdout.contains("skipped: the job is paused"), "\(why.stdout)")

        let resume = try await s.sundial("resume", "beat")
        #expect(resume.status == 0 && resume.stdout == "beat: resumed\n")
        let after = s.agent.mark()
        try await s.agent.waitFor("job.resumed", after: mark) { $0.name == "job.resumed" }
        try await s.agent.waitFor("a beat after resume", after: after) { $0.name == "run.started" && $0["job"]?.stringValue == "beat" }

        let all = try await s.sundial("pause", "--all")
        #expect(all.stdout == "beat: paused\nother: paused\n", "\(all.stdout)")
        let resumeAll = try await s.sundial("resume", "--all")
        #expect(resumeAll.stdout == "beat: resumed\nother: resumed\n", "\(resumeAll.stdout)")
        let usage = try await s.sundial("pause")
        #expect(usage.status == 2)
        await s.finish()
    }

    @Test func statusIsForPeople() async throws {
        let s = try await Setup(
            """
            version: 1
            jobs:
              paris: { schedule: "0 3 * * *", timezone: Europe/Paris, command: [/bin/true] }
              quick: { command: [/bin/sh, -c, "sleep 0.2"] }
            """)
        #expect(try await s.sundial("trigger", "quick", "--wait").status == 0)
        let status = try await s.sundial("status")
        let lines = status.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.contains(" up ") == true)
        let header = lines.first { $0.hasPrefix("JOB") } ?? ""
        #expect(header.contains("ZONE") && header.contains("NEXT") && header.contains("LAST"))
        let paris = lines.first { $0.hasPrefix("paris") } ?? ""
        #expect(paris.contains("Europe/Paris") && paris.contains(" in "), "\(paris)")
        let quick = lines.first { $0.hasPrefix("quick") } ?? ""
        #expect(quick.contains("success in ") && (quick.hasSuffix(" ago") || quick.hasSuffix(", now")), "\(quick)")
        #expect(!status.stdout.contains(".000Z"), "absolute instants in the human form: \(status.stdout)")
        await s.finish()
    }

    @Test func whyExplainsWhichUpstreamRunStartedOrSkippedANeedsOnlyJob() async throws {
        let s = try await Setup(
            """
            version: 1
            jobs:
              backup: { command: [/bin/sh, -c, "exit ${FAIL:-0}"] }
              flaky: { command: [/bin/sh, -c, "exit 1"] }
              verify:
                command: [/bin/true]
                needs: [backup]
              report:
                command: [/bin/true]
                needs: [flaky]
            """)
        let backup = try await s.sundial("trigger", "backup", "--wait")
        #expect(backup.status == 0)
        let backupRun = backup.stdout.split(separator: " ").last.map { String($0.dropLast(2)) } ?? ""
        try await s.agent.waitFor("verify's run") { $0.name == "run.finished" && $0["job"]?.stringValue == "verify" }
        let why = try await s.sundial("why", "verify")
        #expect(why.status == 0, "\(why.stderr)")
        #expect(why.stdout.contains("verify has no schedule: it runs after backup (on success)"), "\(why.stdout)")
        #expect(why.stdout.contains("ran (run ") && why.stdout.contains("backup run \(backupRun) ended success"), "\(why.stdout)")
        #expect(!why.stdout.contains("no planned fires"))

        #expect(try await s.sundial("trigger", "flaky", "--wait").status == 1)
        try await s.agent.waitFor("report's skip") { $0.name == "run.skipped" && $0["job"]?.stringValue == "report" }
        let skipped = try await s.sundial("why", "report")
        #expect(skipped.stdout.contains("skipped: an upstream job ended with an outcome that does not satisfy it"), "\(skipped.stdout)")
        #expect(skipped.stdout.contains("flaky run ") && skipped.stdout.contains("ended failure (exit 1)"), "\(skipped.stdout)")
        await s.finish()
    }
}
