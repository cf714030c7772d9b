import Foundation
import OrderedCollections
import SundialCore
import SundialTesting
import Synchronization
import Testing

@testable import SundialRuntime

/// Real processes through the shared runner; every test is bounded by ``withDeadline``.
@Suite(.offPool) struct ProcessRunnerTests {
    // MARK: - Outcomes

    @Test func exitCodes() async throws {
        #expect(try await run(shellJob("exit 0")).0.outcome == .success(exitCode: 0))
        let (failed, _) = try await run(shellJob("exit 3"))
        #expect(failed.outcome == .failure(exitCode: 3))
        #expect(failed.exitCode == 3)
        #expect(failed.signal == nil)
        var job = shellJob("exit 3")
        job.successExitCodes = [0, 3]
        #expect(try await run(job).0.outcome == .success(exitCode: 3))
    }

    @Test func killedBySignal() async throws {
        let (c, _) = try await run(shellJob("kill -USR1 $$; sleep 5"))
        #expect(c.outcome == .signal(SIGUSR1))
        #expect(c.signal == SIGUSR1)
        #expect(c.exitCode == nil)
    }

    @Test(arguments: [false, true])
    func signalMaskAndDispositionsAreReset(forkPath: Bool) async throws {
        // The agent ignores SIGPIPE and its runner thread blocks SIGCHLD; a job must see neither.
        signal(SIGPIPE, SIG_IGN)
        var job = shellJob("grep -E '^(SigBlk|SigIgn)' /proc/self/status")
        if forkPath { job.umask = 0o022 }
        let (c, lines) = try await run(job)
        #expect(c.outcome.isSuccess)
        #expect(lines.stdout.count == 2)
        for line in lines.stdout {
            // glibc's posix_spawn sets its two internal signals (32, 33: bits 0x180000000) to
            // SIG_IGN in the child on purpose; no program can use them, so they are excluded.
            let mask = UInt64(line.split(separator: "\t").last ?? "", radix: 16) ?? .max
            #expect(mask & ~0x1_8000_0000 == 0, "\(line)")
        }
    }

    @Test func ownSessionAndProcessGroup() async throws {
        let (c, lines) = try await run(shellJob("cut -d' ' -f5,6 /proc/$$/stat"))
        let pid = try #require(c.pid)
        #expect(lines.stdout == ["\(pid) \(pid)"])  // pgrp and session are the job's own pid
    }

    // MARK: - Timeouts and termination

    @Test func timeoutKillsTheWholeProcessGroup() async throws {
        var job = shellJob("sleep 30 & sleep 30 & echo started; wait", timeoutMs: 300)
        job.killGraceMs = 5_000
        let (c, lines) = try await run(job)
        #expect(c.outcome == .timeout)
        #expect(c.signal == SIGTERM)
        #expect(c.durationMs >= 300 && c.durationMs < 5_000)
        #expect(lines.stdout == ["started"])
        let pid = try #require(c.pid)
        #expect(await eventuallyAsync { processes(inGroup: pid).isEmpty }, "left in group: \(processes(inGroup: pid))")
    }

    @Test func timeoutEscalatesToSIGKILLAfterGrace() async throws {
        // The shell and its children ignore SIGTERM (an ignored disposition survives exec).
        var job = shellJob("trap '' TERM; sleep 30 & sleep 30 & echo started; wait; wait", timeoutMs: 200)
        job.killGraceMs = 300
        let (c, _) = try await run(job)
        #expect(c.outcome == .timeout)
        #expect(c.signal == SIGKILL)
        #expect(c.durationMs >= 500 && c.durationMs < 5_000)
        let pid = try #require(c.pid)
        #expect(await eventuallyAsync { processes(inGroup: pid).isEmpty }, "left in group: \(processes(inGroup: pid))")
    }

    @Test func aTimedOutJobThatExitsOnTERMKeepsItsExitCode() async throws {
        // The shell traps TERM and exits 3: the outcome is still `timeout`, the code is kept.
        var job = shellJob("trap 'exit 3' TERM; echo started; sleep 30 & wait", timeoutMs: 300)
        job.killGraceMs = 5_000
        let (c, lines) = try await run(job)
        #expect(c.outcome == .timeout)
        #expect(c.exitCode == 3)
        #expect(c.signal == nil)
        #expect(c.durationMs >= 300 && c.durationMs < 5_000)
        #expect(lines.stdout == ["started"])
    }

    @Test func terminateInterruptsARun() async throws {
        let runner = try TestRunner.shared()
        let lines = Lines()
        let id = nextRunID()
        let c = try await withDeadline {
            let handle = await runner.start(job: shellJob("echo up; exec sleep 30"), runID: id, attempt: 1, onOutput: lines.handler)
            await lines.waitFor("up")
            #expect(runner.activeRunIDs.contains(id))
            runner.terminate(id, grace: .seconds(5))
            return await handle.completion()
        }
        #expect(c.outcome == .interrupted)
        #expect(c.signal == SIGTERM)
        #expect(!runner.activeRunIDs.contains(id))
    }

    /// A run asked to stop twice (`replace`, then the agent's stop; or the agent's stop sent
    /// again once the launch was known) gets one SIGTERM: a second one reads as "exit now, skip
    /// the clean-up" to many programs. The second request still brings the kill closer.
    @Test func aSecondTerminateSendsNoSecondSIGTERM() async throws {
        let runner = try TestRunner.shared()
        let lines = Lines()
        let id = nextRunID()
        let c = try await withDeadline {
            let handle = await runner.start(
                job: shellJob("trap 'echo term' TERM; echo up; while :; do sleep 0.05; done"), runID: id, attempt: 1, onOutput: lines.handler)
            await lines.waitFor("up")
            runner.terminate(id, grace: .seconds(60))
            await lines.waitFor("term")
            runner.terminate(id, grace: .seconds(1))
            return await handle.completion()
        }
        #expect(c.outcome == .interrupted)
        #expect(c.signal == SIGKILL)
        #expect(lines.stdout.filter { $0 == "term" }.count == 1, "\(lines.stdout)")
    }

    /// Per run, not `terminateAll` (which shares this code path): the runner is shared by the
    /// tests running in parallel, and `terminateAll` would stop theirs too.
    @Test func terminateWithoutGraceKillsAtOnce() async throws {
        let runner = try TestRunner.shared()
        let ids = (0..<3).map { _ in nextRunID() }
        let results = try await withDeadline {
            var handles: [RunHandle] = []
            for id in ids {
                let lines = Lines()
                handles.append(await runner.start(job: shellJob("echo up; exec sleep 30"), runID: id, attempt: 1, onOutput: lines.handler))
                await lines.waitFor("up")
            }
            for id in ids { runner.terminate(id, grace: .zero) }
            var out: [RunCompletion] = []
            for h in handles { out.append(await h.completion()) }
            return out
        }
        #expect(results.map(\.outcome) == [.interrupted, .interrupted, .interrupted])
        #expect(results.map(\.signal) == [SIGKILL, SIGKILL, SIGKILL])
        #expect(ids.allSatisfy { !runner.activeRunIDs.contains($0) })
    }

    // MARK: - Reaping

    // A double-forked daemon re-parents to the agent and is reaped there: that needs a child
    // subreaper, which only `sundial run` is (OrphanReaperTests in SundialCLITests).

    @Test func runEndsWhenMainExitsEvenIfAChildHoldsThePipe() async throws {
        // Waiting for EOF would take 30 s; the bound is 15.
        let (c, lines) = try await run(shellJob("sleep 30 & echo done"), seconds: 15)
        #expect(c.outcome.isSuccess)
        #expect(lines.stdout == ["done"])
        if let pid = c.pid { kill(-pid, SIGKILL) }  // the leftover sleep, like cron leaves it
    }

    @Test func manyConcurrentRuns() async throws {
        let results = try await withThrowingTaskGroup(of: (Int, RunCompletion, [String]).self) { group in
            for i in 0..<24 {
                group.addTask {
                    let (c, lines) = try await run(shellJob("echo \(i); exit \(i % 3)"))
                    return (i, c, lines.stdout)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 24)
        for (i, c, out) in results {
            #expect(out == ["\(i)"])
            #expect(c.exitCode == Int32(i % 3))
        }
    }

    // MARK: - Output

    @Test func outputIsStreamedWhileTheJobRuns() async throws {
        // The job only exits after the test has seen its first line: if output were delivered
        // at the end, this would deadlock (and fail on the deadline).
        let dir = try temporaryDirectory()
        let flag = dir + "/go"
        let runner = try TestRunner.shared()
        let lines = Lines()
        let id = nextRunID()
        let c = try await withDeadline(10) {
            let h = await runner.start(
                job: shellJob("echo ready; echo err >&2; while [ ! -e \(flag) ]; do sleep 0.01; done; echo finished"),
                runID: id, attempt: 1, onOutput: lines.handler)
            await lines.waitFor("ready")
            await lines.waitFor("err")
            #expect(h.completionIfFinished == nil)
            _ = FileManager.default.createFile(atPath: flag, contents: nil)
            return await h.completion()
        }
        #expect(c.outcome.isSuccess)
        #expect(lines.stdout == ["ready", "finished"])
        #expect(lines.stderr == ["err"])
    }

    @Test func everyLineArrivesInOrderBeforeTheEnd() async throws {
        let (c, lines) = try await run(shellJob("seq 1 20000; echo tail >&2"))
        #expect(c.outcome.isSuccess)
        #expect(lines.stdout == (1...20000).map(String.init))
        #expect(lines.stderr == ["tail"])
        #expect(c.outputBytes == 108_894 + 5)
    }

    @Test func extremeLimitsDoNotOverflow() async throws {
        let runner = try TestRunner.shared()
        let spec = LaunchSpec(
            job: "x", runID: nextRunID(), executable: "/bin/sh", arguments: ["/bin/sh", "-c", "echo hi; exec sleep 30"],
            environment: ["PATH": LaunchSpec.defaultPath],
            timeoutMs: .max, killGraceMs: .max, output: OutputLimits(maxLineBytes: .max, maxBytes: .max))
        let lines = Lines()
        let id = spec.runID
        let c = try await withDeadline {
            let h = await runner.start(spec, onOutput: lines.handler)
            await lines.waitFor("hi")
            runner.terminate(id, grace: .seconds(Int64.max))
            runner.terminate(id, grace: .zero)
            return await h.completion()
        }
        #expect(c.outcome == .interrupted)
        #expect(lines.stdout == ["hi"])
    }

    @Test func closingStdoutEarlyIsFine() async throws {
        let (c, lines) = try await run(shellJob("echo before; exec >&- 2>&-; sleep 0.2; exit 4"))
        #expect(c.outcome == .failure(exitCode: 4))
        #expect(lines.stdout == ["before"])
    }

    @Test func lineAndRunLimits() async throws {
        var job = shellJob("printf 'abcdefghijklmnop\\nshort\\nlast-without-newline'")
        job.output = OutputLimits(maxLineBytes: 10, maxBytes: 1 << 20)
        let (c, lines) = try await run(job)
        #expect(lines.all.map(\.text) == ["abcdefghij", "short", "last-witho"])
        #expect(lines.all.map(\.truncated) == [true, false, true])
        #expect(c.truncatedLines == 2)

        var limited = shellJob("yes 0123456789 | head -c 10000")
        limited.output = OutputLimits(maxLineBytes: 100, maxBytes: 100)
        let (c2, lines2) = try await run(limited)
        #expect(c2.outputBytes == 100)
        #expect(c2.droppedBytes == 9_900)
        #expect(lines2.stdout == Array(repeating: "0123456789", count: 9) + ["0"])
        #expect(lines2.all.last?.truncated == true)
    }

    /// In a process of its own (an exit test): the measure is the whole process's VmRSS, which
    /// the tests running beside it in a parallel run move by tens of MiB. The child exits 1
    /// when the process grew by 64 MiB or more (what buffering the 200 MB would cost), 2 when
    /// the run's figures are wrong.
    @Test func hugeOutputKeepsMemoryBounded() async throws {
        await #expect(processExitsWith: .success) {
            let before = sundialRSSKiB()
            let (c, lines) = try await run(shellJob("yes abcdefghijklmnopqrstuvwxyz0123456789 | head -c 200000000"), seconds: 60)
            let after = sundialRSSKiB()
            guard c.outcome.isSuccess, c.outputBytes == 1 << 20, c.droppedBytes == 200_000_000 - (1 << 20),
                lines.all.count == (1 << 20) / 37 + 1
            else { exit(2) }  // 36 characters and a newline; the last one cut
            if after - before >= 64 * 1024 { exit(1) }
        }
    }

    // MARK: - Environment and launch

    @Test func environmentWorkdirAndStdin() async throws {
        let dir = try temporaryDirectory()
        // (No setenv here: it races with getenv in tests running in parallel.)
        let agentOnly = Set(ProcessInfo.processInfo.environment.keys).subtracting(["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "TZ"])
        #expect(!agentOnly.isEmpty, "the test process should have variables of its own to leak")
        var job = JobSpec(id: "env-job", command: .argv(["env"]))
        job.env = ["GREETING": "hello world"]
        job.workdir = dir
        let (c, lines) = try await run(job)
        #expect(c.outcome.isSuccess)
        let env = Dictionary(
            lines.stdout.compactMap { l -> (String, String)? in
                guard let eq = l.firstIndex(of: "=") else { return nil }
                return (String(l[..<eq]), String(l[l.index(after: eq)...]))
            }, uniquingKeysWith: { a, _ in a })
        #expect(env["GREETING"] == "hello world")
        #expect(env["SUNDIAL_JOB"] == "env-job")
        #expect(env["SUNDIAL_ATTEMPT"] == "1")
        #expect(agentOnly.isDisjoint(with: env.keys))
        let allowed: Set<String> = ["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "TZ", "GREETING", "SUNDIAL_JOB", "SUNDIAL_RUN_ID", "SUNDIAL_ATTEMPT"]
        #expect(Set(env.keys).isSubset(of: allowed), "unexpected: \(Set(env.keys).subtracting(allowed))")

        var pwd = JobSpec(id: "pwd", command: .shell("pwd; readlink /proc/self/fd/0; read x; echo \"read=$?\""))
        pwd.workdir = dir
        let (_, out) = try await run(pwd)
        #expect(out.stdout == [dir, "/dev/null", "read=1"])
    }

    @Test(arguments: [false, true])
    func noDescriptorLeaksIntoJobs(forkPath: Bool) async throws {
        // A descriptor opened without O_CLOEXEC, as a careless library would.
        let leaky = open("/dev/null", O_RDONLY)
        defer { close(leaky) }
        var job = JobSpec(id: "fds", command: .argv(["ls", "/proc/self/fd"]))
        if forkPath { job.umask = 0o022 }  // umask takes the fork+exec path
        let (c, lines) = try await run(job)
        #expect(c.outcome.isSuccess)
        // 0, 1, 2, and the directory `ls` itself opens to list.
        #expect(Set(lines.stdout) == ["0", "1", "2", "3"])
    }

    @Test func umaskIsApplied() async throws {
        var job = shellJob("umask")
        job.umask = 0o027
        let (c, lines) = try await run(job)
        #expect(c.outcome.isSuccess)
        #expect(lines.stdout == ["0027"])
    }

    @Test(.enabled(if: geteuid() == 0, "switching users needs root"))
    func userAndGroupAreSwitched() async throws {
        var job = shellJob("id -u; id -g; echo $HOME")
        job.user = "nobody"
        let (c, lines) = try await run(job)
        #expect(c.outcome.isSuccess)
        let nobody = try #require(getpwnam("nobody"))
        #expect(lines.stdout == ["\(nobody.pointee.pw_uid)", "\(nobody.pointee.pw_gid)", String(cString: nobody.pointee.pw_dir)])

        // A workdir the job's user cannot enter fails at that stage, with that reason.
        let dir = try temporaryDirectory()
        chmod(dir, 0o700)
        job.workdir = dir
        let (c2, _) = try await run(job)
        #expect(c2.outcome == .launchFailed(reason: "cannot enter workdir '\(dir)': Permission denied"))
    }

    @Test func launchFailuresHaveClearReasons() async throws {
        let (notFound, _) = try await run(JobSpec(id: "j", command: .argv(["no-such-command-xyz"])))
        #expect(notFound.outcome == .launchFailed(reason: "command not found: 'no-such-command-xyz' is not in PATH (\(LaunchSpec.defaultPath))"))
        #expect(notFound.pid == nil)

        let dir = try temporaryDirectory()
        let script = dir + "/noshebang"
        try TestFile.write("echo hi\n", to: script, mode: 0o755)
        let (noexec, _) = try await retryingWhileTextFileBusy({ $0.0.outcome == .launchFailed(reason: "cannot start \(script): Text file busy") }) {
            try await run(JobSpec(id: "j", command: .argv([script])))
        }
        #expect(noexec.outcome == .launchFailed(reason: "not executable: \(script): exec format error (not a binary; a script needs a #! line)"))

        var badDir = JobSpec(id: "j", command: .argv(["true"]))
        badDir.workdir = dir + "/missing"
        let (wd, _) = try await run(badDir)
        #expect(wd.outcome == .launchFailed(reason: "workdir '\(dir)/missing': No such file or directory"))
    }

    @Test func secretsFromEnvFileAreMaskedInTheLog() async throws {
        let dir = try temporaryDirectory()
        let path = dir + "/secret.env"
        try TestFile.write("API_TOKEN=tok-9f8e7d\n", to: path, mode: 0o600)
        var job = shellJob("echo \"token is $API_TOKEN\"")
        job.envFile = path
        job.secrets = ["API_TOKEN"]
        let id = nextRunID()
        let spec = try LaunchSpec(job: job, runID: id, attempt: 1)
        let sink = MemorySinkForTests()
        let log = EventLog(sink: sink, clock: FixedClock())
        log.masker.add(spec.secretValues)
        let runner = try TestRunner.shared()
        let jobID = job.id
        let c = try await withDeadline {
            let h = await runner.start(spec) { line in log.log(.runOutput(line, job: jobID, attempt: 1, at: Instant(unixMillis: 0))) }
            return await h.completion()
        }
        log.log(.runFinished(c, job: job.id, attempt: 1, at: Instant(unixMillis: 0)))
        let lines = sink.text
        #expect(lines.count == 2)
        #expect(lines[0].contains(#""line":"token is ***""#))
        #expect(!lines.joined().contains("tok-9f8e7d"))
    }
}

/// Secrets are masked on the output stream (``SecretStreamMasker``), before lines are cut: the
/// event log's per-event masking cannot see a value that spans lines or a cut.
@Suite(.offPool) struct RunnerSecretMaskingTests {
    func privateEnvFile(_ text: String) throws -> String {
        let path = try temporaryDirectory() + "/secret.env"
        try TestFile.write(text, to: path, mode: 0o600)
        return path
    }

    @Test func aMultiLineSecretFromEnvFileIsMaskedInEveryLine() async throws {
        var job = shellJob(#"printf 'key: %s end\n' "$MULTI"; echo after"#)
        job.envFile = try privateEnvFile(#"MULTI="first-line\nsecond-line\nthird-line""# + "\n")
        job.secrets = ["MULTI"]
        let (c, lines) = try await run(job)
        #expect(c.outcome.isSuccess)
        #expect(lines.stdout == ["key: ***", "***", "*** end", "after"])
        #expect(!lines.stdout.joined().contains("line"))
    }

    @Test func aLineCutInsideASecretShowsNoPartOfIt() async throws {
        // "ab" then the secret: a cut at 2 + k bytes would have shown k of its bytes.
        for k in [1, 5, 11] {
            var job = shellJob(#"echo "ab${API_TOKEN}cd"; echo "x${API_TOKEN}""#)
            job.envFile = try privateEnvFile("API_TOKEN=tok-9f8e7d123\n")
            job.secrets = ["API_TOKEN"]
            job.output = OutputLimits(maxLineBytes: 2 + k, maxBytes: 1 << 20)
            let (c, lines) = try await run(job)
            #expect(c.outcome.isSuccess)
            #expect(lines.stdout == [String("ab***cd".prefix(2 + k)), String("x***".prefix(2 + k))], "k \(k)")
            #expect(!lines.stdout.joined().contains("t"), "k \(k): \(lines.stdout)")
        }
    }

    @Test func aMegabyteOfSecretsAcrossManyReads() async throws {
        // 14-byte lines never align with the 64 KiB reads: secrets straddle read boundaries.
        var job = shellJob(#"yes "$API_TOKEN" | head -c 3000000"#)
        job.env = ["API_TOKEN": "tok-9f8e7d123"]
        job.secrets = ["API_TOKEN"]
        let (c, lines) = try await run(job, seconds: 60)
        #expect(c.outcome.isSuccess)
        #expect(c.outputBytes == 1 << 20)
        #expect(lines.stdout.count == (1 << 20) / 14 + 1)
        #expect(Set(lines.stdout) == ["***"])
        #expect(lines.all.last?.truncated == true)
    }

    @Test func theOutputBudgetCutInsideASecretShowsNoPartOfIt() async throws {
        // max_bytes ends 4 bytes into the secret.
        var job = shellJob(#"printf 'say %s\n' "$API_TOKEN""#)
        job.env = ["API_TOKEN": "tok-9f8e7d123"]
        job.secrets = ["API_TOKEN"]
        job.output = OutputLimits(maxLineBytes: 100, maxBytes: 8)
        let (c, lines) = try await run(job)
        #expect(lines.stdout == ["say ***"])
        #expect(lines.all.first?.truncated == true)
        #expect(c.droppedBytes == 10)
    }
}

/// The agent's resident set size in KiB.
func sundialRSSKiB() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }
    return 0
}

/// A clock stuck at the epoch (masking tests do not care about time).
struct FixedClock: SundialClock {
    func wallNow() -> Instant { Instant(unixMillis: 1_767_225_600_000) }
    func monotonicNow() -> Int64 { 0 }
}

/// A plain in-test sink (the shared ``MemoryEventSink`` lives in SundialTesting).
final class MemorySinkForTests: EventSink {
    private let lines = Mutex<[String]>([])
    func write(_ line: [UInt8]) throws(SinkError) { lines.withLock { $0.append(String(decoding: line, as: UTF8.self)) } }
    var text: [String] { lines.withLock { $0 } }
}
