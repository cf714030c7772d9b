import Foundation
import OrderedCollections
import SundialConfig
import SundialCore
import SundialTesting
import Testing

@testable import SundialRuntime

/// The production launcher and the agent over real processes: the default working directory of
/// `user:` jobs, and what `run.finished` says about runs Sundial stopped.
@Suite(.offPool) struct JobLauncherTests {
    // MARK: - Default working directory

    @Test func defaultWorkdirResolution() {
        var asked: [String] = []
        let homes = ["alice": "/home/alice", "nobody": "/nonexistent", "rel": "home/rel", "empty": ""]
        let dirs: Set<String> = ["/home/alice", "home/rel", "/var/lib/sundial"]
        func resolve(_ user: String?) -> String {
            DefaultWorkdir.resolve(
                user: user, agentDefault: "/var/lib/sundial",
                home: {
                    asked.append($0)
                    return homes[$0]
                }, isDirectory: { dirs.contains($0) })
        }
        // A job running as the agent keeps the agent's default, without a passwd look-up.
        #expect(resolve(nil) == "/var/lib/sundial")
        #expect(asked.isEmpty)
        // A `user:` job: the home from the password database ...
        #expect(resolve("alice") == "/home/alice")
        #expect(asked == ["alice"])
        // ... else `/`: a home that does not exist, is relative or empty, or an unknown user.
        #expect(resolve("nobody") == "/")
        #expect(resolve("rel") == "/")
        #expect(resolve("empty") == "/")
        #expect(resolve("ghost") == "/")
    }

    @Test func defaultWorkdirReadsThePasswordDatabase() {
        // root's home exists on any system these tests run on.
        let rootHome = String(cString: getpwuid(0)!.pointee.pw_dir)
        #expect(DefaultWorkdir.resolve(user: "root", agentDefault: "/x") == (DefaultWorkdir.isDirectory(rootHome) ? rootHome : "/"))
        #expect(DefaultWorkdir.resolve(user: "0", agentDefault: "/x") == DefaultWorkdir.resolve(user: "root", agentDefault: "/x"))
        #expect(DefaultWorkdir.resolve(user: "no-such-user-xyz", agentDefault: "/x") == "/")
        #expect(DefaultWorkdir.isDirectory("/") && !DefaultWorkdir.isDirectory("/etc/passwd") && !DefaultWorkdir.isDirectory("/nonexistent-xyz"))
    }

    @Test(.enabled(if: geteuid() == 0, "switching users needs root"))
    func aUserJobWithoutWorkdirStartsInTheUsersHome() async throws {
        // The agent's default is its state directory, mode 0700: `nobody` cannot enter it.
        let state = try temporaryDirectory()
        chmod(state, 0o700)
        let nobodyHome = String(cString: try #require(getpwnam("nobody")).pointee.pw_dir)
        let expected = DefaultWorkdir.isDirectory(nobodyHome) ? nobodyHome : "/"
        var job = JobSpec(id: "as-nobody", command: .shell("pwd"))
        job.user = "nobody"
        job.timeoutMs = 20_000
        let launcher = ProcessRunnerLauncher(runner: try TestRunner.shared())
        let lines = Lines()
        let order = LaunchOrder(runID: nextRunID(), job: job, attempt: 1, trigger: .manual, scheduledFor: Instant(unixMillis: 0))
        let c = try await withDeadline {
            let attempt = await launcher.launch(order, workdir: state, notBefore: nil, onOutput: lines.handler)
            return await attempt.completion()
        }
        #expect(c.outcome == .success(exitCode: 0), "\(c.outcome)")
        #expect(lines.stdout == [expected])

        // Without `user:`, the agent's default is kept.
        var own = JobSpec(id: "as-agent", command: .shell("pwd"))
        own.timeoutMs = 20_000
        let ownOrder = LaunchOrder(runID: nextRunID(), job: own, attempt: 1, trigger: .manual, scheduledFor: Instant(unixMillis: 0))
        let ownLines = Lines()
        let c2 = try await withDeadline {
            await launcher.launch(ownOrder, workdir: state, notBefore: nil, onOutput: ownLines.handler).completion()
        }
        #expect(c2.outcome == .success(exitCode: 0))
        #expect(ownLines.stdout == [state])
    }

    // MARK: - run.finished of stopped runs

    /// An agent on the real clock and runner, with `jobs` manual; returns its log.
    func runToEnd(_ job: JobSpec) async throws -> [String: Any] {
        let clock = SystemClock()
        let sink = MemoryEventSink()
        var d = OrderedDictionary<JobID, JobSpec>()
        d[job.id] = job
        let set = JobSet(jobs: d, files: ["jobs.yaml"], revision: "r1")
        let agent = Agent(
            settings: .init(configPaths: ["jobs.yaml"], stateDirectory: "/tmp", version: "test"),
            jobs: set, clock: clock, random: SystemRandom(),  // distinct run ids: the runner is shared
            calculator: CalendarFireCalculator(zones: SystemTimeZones()),
            launcher: ProcessRunnerLauncher(runner: try TestRunner.shared()),
            log: EventLog(sink: sink, clock: clock), store: nil, alarm: RecordingAlarm(), pid: 1,
            loadConfiguration: { ConfigLoadResult(jobSet: set, diagnostics: []) })
        await agent.start(restored: RestoredState())
        let started = await agent.trigger(job.id)
        guard case .started = started else { throw TimedOut(seconds: 0) }
        let finished = { sink.lines.first { $0.contains(#""event":"run.finished""#) } }
        #expect(await eventuallyAsync(15) { finished() != nil })
        await agent.deliver(.shutdown(signal: "SIGTERM"))
        _ = try await withDeadline { await agent.waitUntilStopped() }
        return try #require(finished().flatMap(parseJSON))
    }

    @Test func aTimeoutRecordsTheSignalThatEndedTheRun() async throws {
        var job = JobSpec(id: "sleeper", schedule: .manual, command: .argv(["sleep", "30"]))
        job.timeoutMs = 300
        job.killGraceMs = 5_000
        let e = try await runToEnd(job)
        #expect(e["outcome"] as? String == "timeout", "\(e)")
        #expect(e["signal"] as? Int == Int(SIGTERM))
        #expect(e["exit_code"] is NSNull)
    }

    @Test func aTimeoutRecordsTheExitCodeOfAJobThatTrapsTERM() async throws {
        var job = JobSpec(id: "trapper", schedule: .manual, command: .shell("trap 'exit 3' TERM; sleep 30 & wait"))
        job.timeoutMs = 300
        job.killGraceMs = 5_000
        let e = try await runToEnd(job)
        #expect(e["outcome"] as? String == "timeout", "\(e)")
        #expect(e["exit_code"] as? Int == 3)
        #expect(e["signal"] is NSNull)
    }

    @Test func aTimeoutEscalatedToSIGKILLRecordsIt() async throws {
        var job = JobSpec(id: "stubborn", schedule: .manual, command: .shell("trap '' TERM; sleep 30 & wait; wait"))
        job.timeoutMs = 200
        job.killGraceMs = 300
        let e = try await runToEnd(job)
        #expect(e["outcome"] as? String == "timeout", "\(e)")
        #expect(e["signal"] as? Int == Int(SIGKILL))
        #expect(e["exit_code"] is NSNull)
    }
}
