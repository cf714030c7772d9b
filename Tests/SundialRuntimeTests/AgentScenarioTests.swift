import Foundation
import OrderedCollections
import SundialCore
import SundialRuntime
import SundialTesting
import Testing

/// The whole agent (scheduler, reload, clock-step detection, shutdown, state, log) on virtual
/// time with a scripted launcher: days of schedule in milliseconds, no sleeps.
@Suite("Agent scenarios on virtual time", .offPool)
struct AgentScenarioTests {
    static let zones = SystemTimeZones()

    static func instant(_ text: String) -> Instant { try! RFC3339.parse(text).instant }

    func starts(_ h: AgentHarness, _ job: String) -> [Event] {
        h.events("run.started").filter { $0["job"]?.stringValue == job }
    }

    func scheduled(_ e: [Event]) -> [String] { e.compactMap { $0["scheduled_for"]?.stringValue } }

    @Test func aWeekOfMixedSchedules() async throws {
        let h = try AgentHarness(
            yaml: """
                version: 1
                jobs:
                  hourly: { schedule: "0 * * * *", timezone: UTC, command: [x] }
                  nightly: { schedule: "30 2 * * *", timezone: Europe/Berlin, command: [x] }
                  quarter: { every: 15m, offset: 0s, command: [x] }
                  boot: { schedule: "@reboot", command: [x] }
                  after-nightly: { needs: [nightly], command: [x] }
                  off: { every: 1m, enabled: false, command: [x] }
                """, start: Self.instant("2026-06-01T00:00:30Z"), zones: Self.zones)
        try await h.start()
        await h.advance(to: Self.instant("2026-06-08T00:00:30Z"))
        #expect(starts(h, "hourly").count == 168)
        #expect(starts(h, "nightly").count == 7)
        #expect(starts(h, "quarter").count == 7 * 96)
        #expect(starts(h, "boot").count == 1)
        #expect(starts(h, "after-nightly").count == 7)
        #expect(starts(h, "off").isEmpty)
        // On virtual time every run starts exactly when scheduled.
        for e in starts(h, "hourly") + starts(h, "quarter") {
            #expect(e["scheduled_for"]?.stringValue == e.ts.description)
        }
        #expect(scheduled(starts(h, "nightly")).first == "2026-06-01T00:30:00.000Z")  // 02:30 CEST
        #expect(h.events("run.finished").count == h.events("run.started").count)
        // Every fire is persisted, so a restart would not repeat it.
        #expect(try h.store.restore().lastFired["hourly"] == Self.instant("2026-06-08T00:00:00Z"))
    }

    /// The fired marks of every job due at one instant are committed in one transaction before
    /// the first of them launches, not one commit per launch: on flash each commit rewrites
    /// whole pages of the write-ahead log (issue 15: disk writes per fire).
    @Test func oneInstantsMarksAreOneCommitBeforeAnyLaunch() async throws {
        let jobs = (0..<100).map { "  j\($0): { schedule: \"*/5 * * * *\", timezone: UTC, command: [x] }" }.joined(separator: "\n")
        let h = try AgentHarness(yaml: "version: 1\njobs:\n" + jobs, start: Self.instant("2026-06-01T00:04:59Z"), zones: Self.zones)
        try await h.start()
        let before = h.store.durableApplyCount
        await h.advance(to: Self.instant("2026-06-01T00:05:00.500Z"))
        #expect(h.events("run.started").count == 100)
        #expect(h.store.durableApplyCount - before == 1)
        #expect(try h.store.restore().lastFired.count == 100)
    }

    /// `@reboot` runs once per boot, as cronie does: agents restarted within the same boot (a
    /// package upgrade, Restart=on-failure) do not run it again; a new boot id does.
    @Test func atRebootRunsOncePerBoot() async throws {
        let yaml =
            "version: 1\njobs:\n  boot: { schedule: \"@reboot\", command: [x] }\n"
            + "  always: { schedule: \"@reboot\", reboot: every-start, command: [x] }\n"
        let store = MemoryStateStore()
        let t = Self.instant("2026-06-01T00:00:00Z")
        var runs: [Int] = []
        var always: [Int] = []
        for (i, boot) in ["boot-a", "boot-a", "boot-a", "boot-b", "boot-b"].enumerated() {
            let h = try AgentHarness(yaml: yaml, start: t + .seconds(60 * Int64(i)), zones: Self.zones, store: store, bootID: boot)
            try await h.start()
            await h.advance(by: .seconds(10))
            runs.append(starts(h, "boot").count)
            always.append(starts(h, "always").count)
            _ = await h.shutdown()
        }
        #expect(runs == [1, 0, 0, 1, 0])
        // `reboot: every-start` keeps the earlier behaviour: every start of the agent.
        #expect(always == [1, 1, 1, 1, 1])
        #expect(try store.restore().bootID == "boot-b")
        // Without a boot id (no /proc), every start is a boot, as before.
        let h = try AgentHarness(yaml: yaml, start: t + .seconds(600), zones: Self.zones, store: store)
        try await h.start()
        #expect(starts(h, "boot").count == 1)
    }

    /// A package upgrade in the middle of a `catchup: all` backlog: the agent's clean stop owes
    /// the fires it had not started, and the next agent runs them, each once, before going on.
    @Test func aRestartKeepsTheRestOfACatchUpBacklog() async throws {
        let yaml = "version: 1\njobs:\n  report: { schedule: \"0 * * * *\", timezone: UTC, catchup: all, command: [x] }\n"
        let store = MemoryStateStore()
        try store.apply([.fired(job: "report", scheduledFor: Self.instant("2026-06-01T00:00:00Z"))])
        try store.markAlive(now: Self.instant("2026-06-01T00:00:00Z"))
        // Down for five hours: 01:00 … 05:00 are owed; each catch-up run takes ten minutes.
        let step = ScriptedLauncher.Step(.success(exitCode: 0), durationMs: 600_000)
        let first = try AgentHarness(
            yaml: yaml, start: Self.instant("2026-06-01T05:30:00Z"), script: ["report": Array(repeating: step, count: 10)],
            zones: Self.zones, store: store)
        try await first.start()
        await first.advance(by: .seconds(15 * 60))  // 01:00 and 02:00 have started
        #expect(scheduled(starts(first, "report")) == ["2026-06-01T01:00:00.000Z", "2026-06-01T02:00:00.000Z"])
        _ = await first.shutdown()
        #expect(try store.restore().owed["report"]?.count == 3)

        let second = try AgentHarness(yaml: yaml, start: Self.instant("2026-06-01T05:50:00Z"), zones: Self.zones, store: store)
        try await second.start()
        await second.advance(by: .seconds(60))
        #expect(
            scheduled(starts(second, "report")) == ["2026-06-01T03:00:00.000Z", "2026-06-01T04:00:00.000Z", "2026-06-01T05:00:00.000Z"])
        #expect(starts(second, "report").allSatisfy { $0["trigger"]?.stringValue == "catchup" })
        #expect(try store.restore().owed.isEmpty)
        _ = await second.shutdown()

        // A third start owes nothing and runs nothing again.
        let third = try AgentHarness(yaml: yaml, start: Self.instant("2026-06-01T05:55:00Z"), zones: Self.zones, store: store)
        try await third.start()
        await third.advance(by: .seconds(60))
        #expect(starts(third, "report").isEmpty)
    }

    @Test func daylightSavingDaysInTwoZones() async throws {
        let h = try AgentHarness(
            yaml: """
                version: 1
                jobs:
                  ny: { schedule: "30 2 * * *", timezone: America/New_York, command: [x] }
                  berlin: { schedule: "30 2 * * *", timezone: Europe/Berlin, command: [x] }
                  ny-wild: { schedule: "*/30 * * * *", timezone: America/New_York, command: [x] }
                """, start: Self.instant("2026-03-07T12:00:00Z"), zones: Self.zones)
        try await h.start()
        await h.advance(to: Self.instant("2026-03-09T12:00:00Z"))
        // R2: the skipped 02:30 runs once at 03:00 EDT.
        #expect(scheduled(starts(h, "ny")) == ["2026-03-08T07:00:00.000Z", "2026-03-09T06:30:00.000Z"])
        // R3: the wildcard job keeps real time: 48 fires a day, minus the skipped hour's two.
        #expect(starts(h, "ny-wild").filter { $0.ts >= Self.instant("2026-03-08T05:00:00Z") && $0.ts < Self.instant("2026-03-09T04:00:00Z") }.count == 46)
        let autumn = try AgentHarness(
            yaml: """
                version: 1
                jobs:
                  berlin: { schedule: "30 2 * * *", timezone: Europe/Berlin, command: [x] }
                """, start: Self.instant("2026-10-24T12:00:00Z"), zones: Self.zones)
        try await autumn.start()
        await autumn.advance(to: Self.instant("2026-10-26T12:00:00Z"))
        // R4: Berlin's repeated 02:30 on 2026-10-25 runs once, at the first occurrence (CEST).
        let berlinOct = scheduled(starts(autumn, "berlin"))
        #expect(berlinOct.count == 2)
        #expect(berlinOct.contains("2026-10-25T00:30:00.000Z"))
        #expect(!berlinOct.contains("2026-10-25T01:30:00.000Z"))
    }

    @Test func dependencyGraphWithFanInAndRetry() async throws {
        let h = try AgentHarness(
            yaml: """
                version: 1
                jobs:
                  backup: { schedule: "0 2 * * *", timezone: UTC, command: [x] }
                  upload:
                    needs: [backup]
                    command: [x]
                    retry: { attempts: 2, backoff: fixed, delay: 1m }
                  verify: { needs: [backup], command: [x] }
                  report: { needs: [upload, verify], command: [x] }
                """, start: Self.instant("2026-06-01T00:00:00Z"),
            script: [
                "backup": [.init(.success(exitCode: 0), durationMs: 600_000)],
                "upload": [.init(.failure(exitCode: 7), durationMs: 30_000), .init(.success(exitCode: 0), durationMs: 30_000)],
                "verify": [.init(.success(exitCode: 0), durationMs: 120_000)],
            ],
            zones: Self.zones)
        try await h.start()
        await h.advance(to: Self.instant("2026-06-01T03:00:00Z"))
        let order = h.launcher.launches.map { "\($0.job)#\($0.attempt)@\($0.at)" }
        #expect(
            order
                == [
                    "backup#1@2026-06-01T02:00:00.000Z",
                    "upload#1@2026-06-01T02:10:00.000Z", "verify#1@2026-06-01T02:10:00.000Z",
                    "upload#2@2026-06-01T02:11:30.000Z",
                    "report#1@2026-06-01T02:12:00.000Z",
                ].sorted { $0.split(separator: "@")[1] < $1.split(separator: "@")[1] }
                || order == [
                    "backup#1@2026-06-01T02:00:00.000Z",
                    "verify#1@2026-06-01T02:10:00.000Z", "upload#1@2026-06-01T02:10:00.000Z",
                    "upload#2@2026-06-01T02:11:30.000Z",
                    "report#1@2026-06-01T02:12:00.000Z",
                ], "\(order)")
        #expect(h.events("run.retry_scheduled").first?["delay_ms"] == .int(60_000))
    }

    @Test func failingJobBacksOffExponentiallyAndGivesUp() async throws {
        let h = try AgentHarness(
            yaml: """
                version: 1
                jobs:
                  flaky:
                    schedule: "0 12 * * *"
                    timezone: UTC
                    command: [x]
                    retry: { attempts: 4, backoff: exponential, delay: 10s }
                """, start: Self.instant("2026-06-01T11:59:00Z"),
            script: ["flaky": Array(repeating: .init(.failure(exitCode: 1), durationMs: 1000), count: 10)], zones: Self.zones)
        try await h.start()
        await h.advance(to: Self.instant("2026-06-01T13:00:00Z"))
        #expect(
            h.launcher.launches.map(\.at.description) == [
                "2026-06-01T12:00:00.000Z", "2026-06-01T12:00:11.000Z", "2026-06-01T12:00:32.000Z", "2026-06-01T12:01:13.000Z",
            ])
        #expect(h.events("run.retry_scheduled").map { $0["delay_ms"] } == [.int(10_000), .int(20_000), .int(40_000)])
        #expect(h.events("run.finished").last?["outcome"] == "failure")
    }

    @Test(arguments: ["forbid", "queue", "replace", "allow"])
    func concurrencyPolicyUnderALongRun(policy: String) async throws {
        let h = try AgentHarness(
            yaml: """
                version: 1
                jobs:
                  slow: { every: 1m, offset: 0s, concurrency: \(policy), command: [x] }
                """, start: Self.instant("2026-06-01T00:00:30Z"),
            script: ["slow": Array(repeating: .init(.success(exitCode: 0), durationMs: 150_000), count: 20)], zones: Self.zones)
        try await h.start()
        await h.advance(to: Self.instant("2026-06-01T00:05:30Z"))  // fires at 1,2,3,4,5 min
        let starts = h.launcher.launches.map(\.at.description)
        let skipped = h.events("run.skipped").filter { $0["reason"] == "overlap" }.count
        switch policy {
        case "forbid":
            #expect(starts == ["2026-06-01T00:01:00.000Z", "2026-06-01T00:04:00.000Z"])
            #expect(skipped == 3)
        case "queue":
            // One waiting at most: it starts when the active run ends.
            #expect(starts == ["2026-06-01T00:01:00.000Z", "2026-06-01T00:03:30.000Z"])
            #expect(skipped >= 1)
        case "replace":
            #expect(starts.count == 5)
            #expect(h.events("run.finished").filter { $0["outcome"] == "interrupted" }.count == 4)
        default:
            #expect(starts.count == 5)
            #expect(skipped == 0)
        }
    }

    @Test func clockStepsForwardAndBackward() async throws {
        let h = try AgentHarness(
            yaml: """
                version: 1
                jobs:
                  hourly-latest: { schedule: "0 * * * *", timezone: UTC, catchup: latest, command: [x] }
                  hourly-none: { schedule: "0 * * * *", timezone: UTC, command: [x] }
                """, start: Self.instant("2026-06-01T00:30:00Z"), zones: Self.zones)
        try await h.start()
        await h.advance(to: Self.instant("2026-06-01T01:10:00Z"))
        #expect(starts(h, "hourly-latest").count == 1)
        await h.stepWallClock(by: .seconds(3 * 3600))  // 04:10: 02:00, 03:00, 04:00 were skipped over
        #expect(h.events("clock.stepped").first?["delta_ms"] == .int(10_800_000))
        let latest = starts(h, "hourly-latest")
        #expect(latest.count == 2)
        #expect(latest.last?["trigger"] == "catchup")
        #expect(latest.last?["scheduled_for"] == "2026-06-01T04:00:00.000Z")
        #expect(starts(h, "hourly-none").count == 1)  // no burst
        #expect(h.events("run.skipped").contains { $0["job"] == "hourly-none" && $0["reason"] == "missed" })
        // Back one hour (to 03:10): 04:00 already fired and must not fire again.
        await h.stepWallClock(by: .seconds(-3600))
        await h.advance(to: Self.instant("2026-06-01T05:30:00Z"))
        #expect(scheduled(starts(h, "hourly-latest")).filter { $0 == "2026-06-01T04:00:00.000Z" }.count == 1)
        #expect(scheduled(starts(h, "hourly-latest")).last == "2026-06-01T05:00:00.000Z")
    }

    /// The signal reader and the config watcher run before the agent starts (AgentHost): a
    /// SIGTERM sent during a slow start-up reached `deliver` while the agent was not yet started
    /// and was dropped, and the agent ran on until systemd's SIGKILL. A stop that comes before
    /// the start now stops the agent as it starts, without starting anything: the @reboot run
    /// and the boot stay for the next start, and nothing is launched only to be stopped.
    @Test func aStopThatComesBeforeTheStartStopsTheAgentWithoutStartingAnything() async throws {
        let h = try AgentHarness(
            yaml: "version: 1\njobs:\n  boot: { schedule: \"@reboot\", command: [x] }\n",
            start: Self.instant("2026-06-01T00:00:00Z"), zones: Self.zones, bootID: "boot-1")
        await h.agent.deliver(.shutdown(signal: "SIGTERM"))
        await h.agent.deliver(.shutdown(signal: "SIGINT"))  // one stop is kept, not a queue of them
        await h.agent.deliver(.wake)
        try await h.start()
        let code = try await withDeadline(10) { await h.agent.waitUntilStopped() }
        #expect(code == 0)
        #expect(h.events.map(\.name) == ["agent.started", "config.loaded", "agent.stopping", "agent.stopped"])
        #expect(h.events("agent.stopping").first?["signal"] == "SIGTERM")
        #expect(h.launcher.launchCount == 0)
        let state = try h.store.restore()
        #expect(state.bootID == nil && state.lastSeen == nil, "the next start in this boot still runs @reboot and catches up")
    }

    @Test func aFatalErrorThatComesBeforeTheStartExitsOne() async throws {
        let h = try AgentHarness(
            yaml: "version: 1\njobs:\n  a: { every: 1m, command: [x] }\n", start: Self.instant("2026-06-01T00:00:00Z"), zones: Self.zones)
        await h.agent.deliver(.fatal(reason: "the state directory was removed"))
        try await h.start()
        let code = try await withDeadline(10) { await h.agent.waitUntilStopped() }
        #expect(code == 1)
        #expect(h.events.map(\.name) == ["agent.started", "config.loaded", "agent.fatal", "agent.stopping", "agent.stopped"])
    }

    @Test func aReloadThatComesBeforeTheStartIsCarriedOutOnceStarted() async throws {
        let h = try AgentHarness(yaml: "version: 1\njobs:\n  a: { every: 1h, command: [x] }\n", start: Self.instant("2026-06-01T00:00:00Z"), zones: Self.zones)
        // The file changed while the agent was starting: the watcher's reload came first.
        h.setConfiguration(yaml: "version: 1\njobs:\n  a: { every: 1h, command: [x] }\n  b: { every: 1h, command: [x] }\n", zones: Self.zones)
        await h.agent.deliver(.reload(reason: "file change"))
        try await h.start()
        let deadline = ContinuousClock.now + .seconds(10)
        while h.events("config.loaded").count < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(h.events("config.loaded").count == 2)
        #expect(await h.agent.jobSet.jobs.keys.sorted() == ["a", "b"])
    }

    @Test func shutdownStopsRunsInFlightAndRecordsThem() async throws {
        let h = try AgentHarness(
            yaml: """
                version: 1
                jobs:
                  long: { schedule: "0 * * * *", timezone: UTC, command: [x] }
                """, start: Self.instant("2026-06-01T00:59:00Z"),
            script: ["long": [.init(.success(exitCode: 0), durationMs: 3_600_000)]], zones: Self.zones)
        try await h.start()
        await h.advance(to: Self.instant("2026-06-01T01:05:00Z"))
        #expect(h.launcher.runningCount == 1)
        let code = await h.shutdown()
        #expect(code == 0)
        let names = h.events.map(\.name)
        #expect(names.suffix(3) == ["agent.stopping", "run.finished", "agent.stopped"] || names.contains("agent.stopped"))
        #expect(h.events("run.finished").last?["outcome"] == "interrupted")
        #expect(h.launcher.runningCount == 0)
    }

    @Test func reloadKeepsAnUnchangedJobsTiming() async throws {
        let before = """
            version: 1
            jobs:
              steady: { every: 7m, command: [x] }
              other: { every: 1h, command: [x] }
            """
        let h = try AgentHarness(yaml: before, start: Self.instant("2026-06-01T00:00:00Z"), zones: Self.zones)
        try await h.start()
        await h.advance(to: Self.instant("2026-06-01T00:30:00Z"))
        await h.reload(yaml: before.replacingOccurrences(of: "every: 1h", with: "every: 2h"), zones: Self.zones)
        let loaded = try #require(h.events("config.loaded").last)
        #expect(loaded["changed"] == ["other"])
        await h.advance(to: Self.instant("2026-06-01T01:00:00Z"))
        // `every` without offset counts from the agent's start: 7, 14, ..., 56 minutes, unbroken by the reload.
        #expect(
            starts(h, "steady").map(\.ts.description)
                == stride(from: 7, through: 56, by: 7).map {
                    "2026-06-01T00:\($0 < 10 ? "0" : "")\($0):00.000Z"
                })
        // An invalid reload changes nothing.
        await h.reload(yaml: "version: 1\njobs:\n  steady: { every: nonsense, command: [x] }\n", zones: Self.zones)
        #expect(h.events("config.rejected").count == 1)
        await h.advance(to: Self.instant("2026-06-01T01:10:00Z"))
        #expect(starts(h, "steady").last?.ts.description == "2026-06-01T01:10:00.000Z")
    }

    @Test func thousandJobsDueInTheSameSecondAllStart() async throws {
        var yaml = "version: 1\njobs:\n"
        for i in 0..<1000 { yaml += "  j\(i): { schedule: \"0 12 * * *\", timezone: UTC, command: [x] }\n" }
        let h = try AgentHarness(yaml: yaml, start: Self.instant("2026-06-01T11:59:59Z"), zones: Self.zones)
        try await h.start()
        await h.advance(to: Self.instant("2026-06-01T12:00:01Z"))
        #expect(h.launcher.launches.count == 1000)
        #expect(Set(h.launcher.launches.map(\.job)).count == 1000)
        #expect(h.events("run.finished").count == 1000)
    }
}
