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

    // MARK: - Secrets in a launch failure

    /// Launches `job` once through a launcher with `masker`; returns the attempt's completion.
    func launchOnce(_ job: JobSpec, masker: SecretMasker?, lines: Lines = Lines()) async throws -> RunCompletion {
        let launcher = ProcessRunnerLauncher(runner: try TestRunner.shared(), masker: masker)
        let order = LaunchOrder(runID: nextRunID(), job: job, attempt: 1, trigger: .manual, scheduledFor: Instant(unixMillis: 0))
        return try await withDeadline {
            await launcher.launch(order, workdir: "/tmp", notBefore: nil, onOutput: lines.handler).completion()
        }
    }

    /// A webhook's `secret_env` is a signing key in the job's environment: it was masked only
    /// when `secrets` listed it too, so a job running `env` printed it into the log.
    @Test func aWebhookSigningKeyIsMaskedWithoutBeingListedInSecrets() async throws {
        let dir = try temporaryDirectory()
        try TestFile.write("HOOK_KEY=hk-SEKRIT5\nPLAIN=visible\n", to: dir + "/job.env", mode: 0o600)
        var job = JobSpec(id: "hook", command: .shell("echo \"key=$HOOK_KEY plain=$PLAIN\""))
        job.envFile = dir + "/job.env"
        job.notify = [NotifySpec(on: [.failure], target: .webhook(WebhookSpec(url: "http://127.0.0.1:9/hook", secretEnv: "HOOK_KEY")))]
        let masker = SecretMasker()
        let lines = Lines()
        let c = try await launchOnce(job, masker: masker, lines: lines)
        #expect(c.outcome == .success(exitCode: 0), "\(c.outcome)")
        #expect(lines.stdout == ["key=*** plain=visible"])
        #expect(masker.mask("hk-SEKRIT5") == "***")
    }

    /// A webhook's `secret_env` makes the job's `env_file` hold a secret, as `secrets` does: a
    /// file group or others may read is refused at launch (the delivery refused it already, but
    /// the job ran from it and only its failure's notification said so). A 0600 file launches.
    @Test func aSigningKeyInAnEnvFileOthersMayReadIsRefusedAtLaunch() async throws {
        let dir = try temporaryDirectory()
        let path = dir + "/hook.env"
        try TestFile.write("HOOK_KEY=hk-SEKRIT6\n", to: path, mode: 0o644)
        var job = JobSpec(id: "hook", command: .argv(["/bin/true"]))
        job.envFile = path
        job.notify = [NotifySpec(on: [.failure], target: .webhook(WebhookSpec(url: "http://127.0.0.1:9/hook", secretEnv: "HOOK_KEY")))]
        let refused = try await launchOnce(job, masker: SecretMasker())
        let text = reason(refused) ?? "\(refused.outcome)"
        #expect(text.contains("readable by group or others (mode 0644)") && text.hasSuffix("run: chmod 600 \(path)"), "\(text)")
        #expect(!text.contains("hk-SEKRIT6"))
        #expect(chmod(path, 0o600) == 0)
        let launched = try await launchOnce(job, masker: SecretMasker())
        #expect(launched.outcome == .success(exitCode: 0), "\(launched.outcome)")
    }

    func reason(_ c: RunCompletion) -> String? {
        if case let .launchFailed(r) = c.outcome { return r }
        return nil
    }

    /// The secret values were registered only once the spec was built: a command that quotes
    /// one and is not found showed it in `run.finished` and everywhere the reason is stored.
    @Test func aLaunchFailureDoesNotShowTheJobsSecret() async throws {
        var job = JobSpec(id: "ncf", command: .argv(["/nonexistent/ncf-SEKRIT8"]))
        job.env = ["PW": "ncf-SEKRIT8"]
        job.secrets = ["PW"]
        let masker = SecretMasker()
        let c = try await launchOnce(job, masker: masker)
        #expect(reason(c) == "command not found: /nonexistent/*** (No such file or directory)", "\(c.outcome)")
        #expect(masker.mask("pw ncf-SEKRIT8") == "pw ***")
        // Without the agent's masker, the job's own values are masked all the same.
        #expect(reason(try await launchOnce(job, masker: nil)) == reason(c))
    }

    /// An `env_file` read before the failure: its secret values are registered and masked too.
    @Test func aLaunchFailureAfterTheEnvFileDoesNotShowItsSecret() async throws {
        let dir = try temporaryDirectory()
        try TestFile.write("PW=efv-SEKRIT9\nOTHER=plain\n", to: dir + "/job.env", mode: 0o600)
        var job = JobSpec(id: "efv", command: .argv(["/bin/true"]))
        job.envFile = dir + "/job.env"
        job.secrets = ["PW"]
        job.workdir = dir + "/efv-SEKRIT9"
        let masker = SecretMasker()
        let c = try await launchOnce(job, masker: masker)
        #expect(reason(c) == "workdir '\(dir)/***': No such file or directory", "\(c.outcome)")
        #expect(masker.mask("efv-SEKRIT9 plain") == "*** plain")
    }

    /// The runner's own reasons (a spawn that failed in `exec`) quote the executable too.
    @Test func aSpawnFailureDoesNotShowTheJobsSecret() async throws {
        let dir = try temporaryDirectory()
        let script = dir + "/spf-SEKRIT7"
        try TestFile.write("echo no interpreter line\n", to: script, mode: 0o755)
        var job = JobSpec(id: "spf", command: .argv([script]))
        job.env = ["PW": "spf-SEKRIT7"]
        job.secrets = ["PW"]
        for masker in [SecretMasker(), nil] {
            let c = try await launchOnce(job, masker: masker)
            #expect(
                reason(c) == "not executable: \(dir)/***: exec format error (not a binary; a script needs a #! line)",
                "\(c.outcome)")
        }
    }

    /// End to end: the reason `run.finished` logs, the run stored with it (`status`, `history`)
    /// and the status page's API show the mask, not the value.
    @Test func aLaunchFailureIsStoredMasked() async throws {
        var job = JobSpec(id: "ncf", schedule: .manual, command: .argv(["/nonexistent/ncf-SEKRIT8"]))
        job.env = ["PW": "ncf-SEKRIT8"]
        job.secrets = ["PW"]
        let store = MemoryStateStore()
        let (event, agent) = try await runToEnd(job, store: store)
        #expect(event["reason"] as? String == "command not found: /nonexistent/*** (No such file or directory)", "\(event)")
        let runs = try store.history(job: "ncf", limit: 10)
        #expect(runs.count == 1)
        #expect(runs.first?.outcome == .launchFailed(reason: "command not found: /nonexistent/*** (No such file or directory)"))
        let pages = StatusPages(source: StatusSource(agent: agent, store: store, zones: nil))
        let detail = try JSONParser.parse(await pages.respond(to: .apiJob("ncf")).body)["job"]?["last"]?["detail"]
        #expect(detail == .string("command not found: /nonexistent/*** (No such file or directory)"))
        let api = String(decoding: await pages.respond(to: .apiRuns("ncf")).body, as: UTF8.self)
        #expect(api.contains("/nonexistent/***") && !api.contains("SEKRIT"), "\(api)")
        // The job's definition (its command) is masked as well.
        for route in [StatusPages.Route.apiJob("ncf"), .job("ncf")] {
            let body = String(decoding: await pages.respond(to: route).body, as: UTF8.self)
            #expect(!body.contains("SEKRIT"), "\(route): \(body)")
        }
    }

    // MARK: - run.finished of stopped runs

    /// An agent on the real clock and runner, with `jobs` manual; returns its log.
    func runToEnd(_ job: JobSpec) async throws -> [String: Any] {
        try await runToEnd(job, store: nil).event
    }

    /// ``runToEnd(_:)`` recording into `store`, with the agent's masker shared by its log and
    /// its launcher (as ``AgentHost`` builds them); returns the stopped agent too.
    func runToEnd(_ job: JobSpec, store: (any StateStore)?) async throws -> (event: [String: Any], agent: Agent) {
        let clock = SystemClock()
        let sink = MemoryEventSink()
        let masker = SecretMasker()
        var d = OrderedDictionary<JobID, JobSpec>()
        d[job.id] = job
        let set = JobSet(jobs: d, files: ["jobs.yaml"], revision: "r1")
        let agent = Agent(
            settings: .init(configPaths: ["jobs.yaml"], stateDirectory: "/tmp", version: "test"),
            jobs: set, clock: clock, random: SystemRandom(),  // distinct run ids: the runner is shared
            calculator: CalendarFireCalculator(zones: SystemTimeZones()),
            launcher: ProcessRunnerLauncher(runner: try TestRunner.shared(), masker: masker),
            log: EventLog(sink: sink, clock: clock, masker: masker), store: store, alarm: RecordingAlarm(), pid: 1,
            loadConfiguration: { ConfigLoadResult(jobSet: set, diagnostics: []) })
        await agent.start(restored: RestoredState())
        let started = await agent.trigger(job.id)
        guard case .started = started else { throw TimedOut(seconds: 0) }
        let finished = { sink.lines.first { $0.contains(#""event":"run.finished""#) } }
        #expect(await eventuallyAsync(15) { finished() != nil })
        await agent.deliver(.shutdown(signal: "SIGTERM"))
        _ = try await withDeadline { await agent.waitUntilStopped() }
        return (try #require(finished().flatMap(parseJSON)), agent)
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
