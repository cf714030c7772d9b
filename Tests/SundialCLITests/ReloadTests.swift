import Foundation
import SundialConfig
import SundialCore
import SundialRuntime
import SundialTesting
import Testing

/// Hot reload end to end (issue 6): the built `sundial run` watching a temporary directory,
/// files changed the ways people and tools change them, and the agent's event log read back
/// with deadlines. Every agent is killed by the runner after its lifetime whatever happens.
@Suite("Reload through the real agent (built binary)", .serialized, .timeLimit(.minutes(1)), .offPool)
struct ReloadTests {
    /// A temporary root holding `conf/` (the config path), `state/` and `events.jsonl`.
    struct Box {
        let root: URL
        var conf: String { root.appendingPathComponent("conf").path }
        init() throws {
            root = try CLI.tempDir()
            try FileManager.default.createDirectory(atPath: root.appendingPathComponent("conf").path, withIntermediateDirectories: true)
        }
        func path(_ relative: String) -> String { conf + "/" + relative }
        func write(_ relative: String, _ text: String) throws { try JobFiles.writeInPlace(text, to: path(relative)) }
        func start(config: [String]? = nil, extraArgs: [String] = [], lifetime: Double = 30) async throws -> AgentProcess {
            try await AgentProcess(root: root, config: config ?? [conf], extraArgs: extraArgs, lifetime: lifetime)
        }
        /// The revision the agent must report for the files as they are now.
        func expectedRevision(_ config: String? = nil) throws -> String {
            let r = ConfigurationLoading.load(paths: [config ?? conf])
            return try #require(r.jobSet?.revision, "\(r.diagnostics)")
        }
        func remove() { try? FileManager.default.removeItem(at: root) }
    }

    /// Asserts a `config.loaded` with these added/removed/changed ids and the current revision.
    func expectLoaded(
        _ e: JSONValue, added: [String] = [], removed: [String] = [], changed: [String] = [],
        revision: String? = nil, sourceLocation: Testing.SourceLocation = #_sourceLocation
    ) {
        #expect(e.name == "config.loaded", "\(e.jsonText)", sourceLocation: sourceLocation)
        #expect(e["added"]?.strings == added, "\(e.jsonText)", sourceLocation: sourceLocation)
        #expect(e["removed"]?.strings == removed, "\(e.jsonText)", sourceLocation: sourceLocation)
        #expect(e["changed"]?.strings == changed, "\(e.jsonText)", sourceLocation: sourceLocation)
        if let revision { #expect(e["revision"]?.stringValue == revision, "\(e.jsonText)", sourceLocation: sourceLocation) }
    }

    func stopCleanly(_ agent: AgentProcess, sourceLocation: Testing.SourceLocation = #_sourceLocation) async {
        let c = await agent.stop()
        #expect(c.exitCode == 0, "agent ended with \(c.outcome)", sourceLocation: sourceLocation)
    }

    // MARK: - Ways files change

    @Test func inPlaceEditAndAtomicRename() async throws {
        let box = try Box()
        defer { box.remove() }
        try box.write("a.yaml", JobFiles.file(JobFiles.job("alpha"), JobFiles.job("beta")))
        let agent = try await box.start()
        defer { agent.kill() }

        var mark = agent.mark()
        try JobFiles.writeInPlace(JobFiles.file(JobFiles.job("alpha", every: "2h"), JobFiles.job("beta")), to: box.path("a.yaml"))
        var e = try await agent.nextConfigEvent(after: mark)
        expectLoaded(e, changed: ["alpha"], revision: try box.expectedRevision())
        #expect(e["reason"]?.stringValue == "files changed")

        mark = agent.mark()
        try JobFiles.writeAtomically(
            JobFiles.file(JobFiles.job("alpha", every: "2h"), JobFiles.job("beta", command: "[/bin/echo, hi]")),
            to: box.path("a.yaml"))
        e = try await agent.nextConfigEvent(after: mark)
        expectLoaded(e, changed: ["beta"], revision: try box.expectedRevision())
        await stopCleanly(agent)
    }

    @Test func newFileDeletedFileAndNewSubdirectoryWithFiles() async throws {
        let box = try Box()
        defer { box.remove() }
        try box.write("a.yaml", JobFiles.file(JobFiles.job("alpha")))
        let agent = try await box.start()
        defer { agent.kill() }

        var mark = agent.mark()
        try box.write("b.yml", JobFiles.file(JobFiles.job("bravo")))
        expectLoaded(try await agent.nextConfigEvent(after: mark), added: ["bravo"])

        mark = agent.mark()
        try FileManager.default.removeItem(atPath: box.path("b.yml"))
        expectLoaded(try await agent.nextConfigEvent(after: mark), removed: ["bravo"])

        // A directory created and filled at once: the files may land before the new directory
        // is watched; the reload after the directory's creation still reads them.
        mark = agent.mark()
        try FileManager.default.createDirectory(atPath: box.path("team/deep"), withIntermediateDirectories: true)
        try box.write("team/c.yaml", JobFiles.file(JobFiles.job("charlie")))
        try box.write("team/deep/d.yaml", JobFiles.file(JobFiles.job("delta")))
        let revision = try box.expectedRevision()
        let final = try await agent.waitFor("the subdirectory's jobs loaded", after: mark) {
            $0.name == "config.loaded" && $0["revision"]?.stringValue == revision
        }
        #expect(final["jobs"]?.int == 3)
        let added = agent.events().dropFirst(mark).filter { $0.name == "config.loaded" }.flatMap { $0["added"]?.strings ?? [] }
        #expect(added.sorted() == ["charlie", "delta"])

        // A later edit inside the new subdirectory proves it is watched.
        mark = agent.mark()
        try box.write("team/deep/d.yaml", JobFiles.file(JobFiles.job("delta", every: "3h")))
        expectLoaded(try await agent.nextConfigEvent(after: mark), changed: ["delta"])
        await stopCleanly(agent)
    }

    @Test func kubernetesStyleDataSymlinkSwap() async throws {
        let box = try Box()
        defer { box.remove() }
        // A ConfigMap volume: visible names link through `..data` to a timestamped directory.
        try FileManager.default.createDirectory(atPath: box.path("..2026_01_01_v1"), withIntermediateDirectories: true)
        try box.write("..2026_01_01_v1/jobs.yaml", JobFiles.file(JobFiles.job("alpha")))
        try FileManager.default.createSymbolicLink(atPath: box.path("..data"), withDestinationPath: "..2026_01_01_v1")
        try FileManager.default.createSymbolicLink(atPath: box.path("jobs.yaml"), withDestinationPath: "..data/jobs.yaml")
        let agent = try await box.start()
        defer { agent.kill() }
        #expect(agent.events().first { $0.name == "config.loaded" }?["jobs"]?.int == 1)

        // kubelet's update: a new directory, a new link, renamed over `..data`.
        let mark = agent.mark()
        try FileManager.default.createDirectory(atPath: box.path("..2026_01_02_v2"), withIntermediateDirectories: true)
        try box.write("..2026_01_02_v2/jobs.yaml", JobFiles.file(JobFiles.job("alpha", every: "5h"), JobFiles.job("bravo")))
        try FileManager.default.createSymbolicLink(atPath: box.path("..data_tmp"), withDestinationPath: "..2026_01_02_v2")
        #expect(rename(box.path("..data_tmp"), box.path("..data")) == 0)
        try FileManager.default.removeItem(atPath: box.path("..2026_01_01_v1"))
        expectLoaded(
            try await agent.nextConfigEvent(after: mark), added: ["bravo"], changed: ["alpha"],
            revision: try box.expectedRevision())
        await stopCleanly(agent)
    }

    @Test func configPathThatIsASymlinkToADirectorySwapped() async throws {
        let box = try Box()
        defer { box.remove() }
        // `current -> releases/v1`, switched with `ln -sfn` semantics (a new link renamed over).
        try FileManager.default.createDirectory(atPath: box.path("releases/v1"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: box.path("releases/v2"), withIntermediateDirectories: true)
        try box.write("releases/v1/jobs.yaml", JobFiles.file(JobFiles.job("alpha"), JobFiles.job("old")))
        try box.write("releases/v2/jobs.yaml", JobFiles.file(JobFiles.job("alpha")))
        let current = box.root.appendingPathComponent("current").path
        try FileManager.default.createSymbolicLink(atPath: current, withDestinationPath: box.path("releases/v1"))
        let agent = try await box.start(config: [current])
        defer { agent.kill() }

        let mark = agent.mark()
        try FileManager.default.createSymbolicLink(atPath: current + ".new", withDestinationPath: box.path("releases/v2"))
        #expect(rename(current + ".new", current) == 0)
        expectLoaded(try await agent.nextConfigEvent(after: mark), removed: ["old"], revision: try box.expectedRevision(current))
        await stopCleanly(agent)
    }

    @Test func invalidEditIsRejectedWithPositionsJobsKeepRunningAndAFixLoads() async throws {
        let box = try Box()
        defer { box.remove() }
        try box.write("a.yaml", JobFiles.file(JobFiles.job("tick", every: "1s"), JobFiles.job("other")))
        let agent = try await box.start()
        defer { agent.kill() }
        let running = try await agent.waitFor("the original set's revision") { $0.name == "config.loaded" }["revision"]

        var mark = agent.mark()
        try box.write("a.yaml", JobFiles.file(JobFiles.job("tick", every: "1s"), JobFiles.job("other", every: "1 parsec")))
        let rejected = try await agent.nextConfigEvent(after: mark)
        #expect(rejected.name == "config.rejected", "\(rejected.jsonText)")
        #expect(rejected["running_revision"] == running)
        guard case let .array(errors)? = rejected["errors"], let first = errors.first else {
            Issue.record("no errors in \(rejected.jsonText)")
            return
        }
        #expect(first["file"]?.stringValue == box.path("a.yaml"))
        #expect(first["line"]?.int == 7)
        #expect(first["column"]?.int == 12)
        #expect(first["message"]?.stringValue?.contains("parsec") == true, "\(first.jsonText)")

        // The last good set keeps running: `tick` fires again after the rejection.
        let afterRejection = agent.mark()
        try await agent.waitFor("tick firing after the rejection", after: afterRejection) {
            $0.name == "run.started" && $0["job"]?.stringValue == "tick"
        }

        mark = agent.mark()
        try box.write("a.yaml", JobFiles.file(JobFiles.job("tick", every: "1s"), JobFiles.job("other", every: "30m")))
        expectLoaded(try await agent.nextConfigEvent(after: mark), changed: ["other"], revision: try box.expectedRevision())
        await stopCleanly(agent)
    }

    @Test func editorSwapFilesAndHiddenFilesAreIgnored() async throws {
        let box = try Box()
        defer { box.remove() }
        try box.write("a.yaml", JobFiles.file(JobFiles.job("alpha")))
        let agent = try await box.start()
        defer { agent.kill() }

        let mark = agent.mark()
        // vim, emacs and backup leftovers, and a hidden file: all invalid, none may count.
        for name in [".a.yaml.swp", "a.yaml~", "#a.yaml#", ".hidden.yaml", "a.yaml.swp"] {
            try box.write(name, "this: is: not [valid yaml\n")
        }
        // A real change after them: its reload must see only the real files.
        try JobFiles.writeAtomically(JobFiles.file(JobFiles.job("alpha", every: "2h")), to: box.path("a.yaml"))
        let revision = try box.expectedRevision()
        let loaded = try await agent.waitFor("the real change", after: mark) {
            $0.name == "config.loaded" && $0["revision"]?.stringValue == revision
        }
        expectLoaded(loaded, changed: ["alpha"])
        #expect(loaded["files"]?.int == 1)
        #expect(!agent.events().dropFirst(mark).contains { $0.name == "config.rejected" })
        await stopCleanly(agent)
    }

    @Test func sighupReloadsWithWatchingOff() async throws {
        let box = try Box()
        defer { box.remove() }
        try box.write("a.yaml", JobFiles.file(JobFiles.job("alpha")))
        let agent = try await box.start(extraArgs: ["--watch", "off"])
        defer { agent.kill() }

        let mark = agent.mark()
        try box.write("a.yaml", JobFiles.file(JobFiles.job("alpha"), JobFiles.job("bravo")))
        agent.signal(SIGHUP)
        let e = try await agent.nextConfigEvent(after: mark)
        expectLoaded(e, added: ["bravo"], revision: try box.expectedRevision())
        #expect(e["reason"]?.stringValue == "SIGHUP")
        await stopCleanly(agent)
    }

    // MARK: - Runs across reloads

    @Test func runningRunsSurviveReloadsAndARemovedJobsRunFinishesAndIsRecorded() async throws {
        let box = try Box()
        defer { box.remove() }
        try box.write("a.yaml", JobFiles.file(JobFiles.job("keep"), JobFiles.job("slow", every: "1s", command: "[/bin/sleep, \"3\"]")))
        let agent = try await box.start()
        defer { agent.kill() }
        let started = try await agent.waitFor("slow starting") { $0.name == "run.started" && $0["job"]?.stringValue == "slow" }
        let runID = try #require(started["run_id"]?.stringValue)

        // Change it while it runs (a changed job's run is not killed either), then remove it.
        var mark = agent.mark()
        try box.write("a.yaml", JobFiles.file(JobFiles.job("keep"), JobFiles.job("slow", every: "1s", command: "[/bin/sleep, \"9\"]")))
        expectLoaded(try await agent.nextConfigEvent(after: mark), changed: ["slow"])
        mark = agent.mark()
        try box.write("a.yaml", JobFiles.file(JobFiles.job("keep")))
        expectLoaded(try await agent.nextConfigEvent(after: mark), removed: ["slow"])
        let removedAt = agent.mark()

        let finished = try await agent.waitFor("slow's run finishing", timeout: 15) {
            $0.name == "run.finished" && $0["run_id"]?.stringValue == runID
        }
        #expect(finished["outcome"]?.stringValue == "success", "\(finished.jsonText)")
        let durationMs = finished["duration_ms"]?.int ?? 0
        #expect(durationMs >= 2900, "the run ran its whole 3 s: \(finished.jsonText)")
        let finishedIndex = agent.events().firstIndex { $0["run_id"]?.stringValue == runID && $0.name == "run.finished" } ?? 0
        #expect(finishedIndex >= removedAt, "the run was still active when its job was removed")
        #expect(
            !agent.events().dropFirst(removedAt).contains { $0.name == "run.started" && $0["job"]?.stringValue == "slow" },
            "a removed job never starts again")
        await stopCleanly(agent)

        // Recorded in the state database too.
        let store = try SQLiteStateStore(path: box.root.appendingPathComponent("state/state.db").path)
        defer { try? store.close() }
        let history = try store.history(job: "slow", limit: 10)
        #expect(history.first { $0.id.rawValue == runID }?.outcome == .success(exitCode: 0), "\(history)")
    }

    // MARK: - A burst

    /// 1,000 rewrites (every tenth invalid, half in place, half by rename) while `tick` fires
    /// every second: the agent survives, ends on the last valid content, and `tick`, untouched by
    /// the edits, neither loses nor repeats a fire.
    @Test func burstOfAThousandRewritesWhileAJobFiresEverySecond() async throws {
        let box = try Box()
        defer { box.remove() }
        try box.write("tick.yaml", JobFiles.file(JobFiles.job("tick", every: "1s", extra: "    concurrency: allow\n")))
        func burstFile(_ i: Int) -> String {
            JobFiles.file(JobFiles.job("churn", every: "\(i + 1)m"), JobFiles.job("churn-\(i % 7)"))
        }
        try box.write("burst.yaml", burstFile(0))
        let agent = try await box.start(lifetime: 40)
        defer { agent.kill() }
        try await agent.waitFor("tick's first run") { $0.name == "run.started" && $0["job"]?.stringValue == "tick" }

        let burstStart = agent.mark()
        let count = 1000
        for i in 1...count {
            let text = i % 10 == 5 ? "version: 1\njobs:\n  churn: { every: [oops\n" : burstFile(i)
            if i % 2 == 0 {
                try JobFiles.writeInPlace(text, to: box.path("burst.yaml"))
            } else {
                try JobFiles.writeAtomically(text, to: box.path("burst.yaml"))
            }
            // Paced so that the burst spans several seconds of `tick`, and reloads happen in the
            // middle of it: a pause longer than the debounce after an invalid write and after a
            // valid one in every hundred.
            try await Task.sleep(for: .milliseconds(i % 100 == 5 || i % 100 == 50 ? 150 : 4))
        }
        let revision = try box.expectedRevision()
        try await agent.waitFor("the last content loaded", after: burstStart, timeout: 15) {
            $0.name == "config.loaded" && $0["revision"]?.stringValue == revision
        }
        // Two more fires of `tick` after the burst, then stop.
        let afterBurst = agent.mark()
        try await agent.waitUntil("two fires of tick after the burst") { events in
            events.dropFirst(afterBurst).filter { $0.name == "run.started" && $0["job"]?.stringValue == "tick" }.count >= 2
        }
        await stopCleanly(agent)

        let events = agent.events()
        let loads = events.dropFirst(burstStart).filter { $0.name == "config.loaded" }
        let rejections = events.dropFirst(burstStart).filter { $0.name == "config.rejected" }
        #expect(loads.last?["revision"]?.stringValue == revision, "the final set is the last valid content")
        #expect(loads.count >= 2, "reloads happened during the burst: \(loads.count)")
        #expect(rejections.count >= 1, "invalid content was seen (and rejected) during the burst")
        #expect(loads.allSatisfy { !($0["changed"]?.strings.contains("tick") ?? true) })
        let ticks = events.filter { $0.name == "run.started" && $0["job"]?.stringValue == "tick" }
            .compactMap { $0["scheduled_for"]?.stringValue }.compactMap { try? RFC3339.parse($0).instant.unixMillis }
        #expect(ticks.count >= 8, "tick fired through the burst: \(ticks.count) fires")
        let steps = zip(ticks.dropFirst(), ticks).map { $0 - $1 }
        #expect(steps.allSatisfy { $0 == 1000 }, "tick's fires are one second apart, none lost or repeated: \(steps)")
        #expect(!events.contains { $0.name == "run.skipped" && $0["job"]?.stringValue == "tick" })
        print("burst: \(count) rewrites, \(loads.count) reloads, \(rejections.count) rejections, \(ticks.count) tick fires")
    }
}
