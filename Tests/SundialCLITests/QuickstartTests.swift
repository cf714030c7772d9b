import Foundation
import SundialCore
import SundialRuntime
import SundialTesting
import Synchronization
import Testing

/// The README's first command, end to end: `sundial run examples/quickstart/` runs jobs,
/// logs JSON lines, and stops gracefully on SIGTERM with every outcome recorded.
@Suite("sundial run examples/quickstart (built binary)", .serialized, .offPool)
struct QuickstartTests {
    @Test func quickstartRunsJobsAndStopsGracefully() async throws {
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let agent = try await AgentProcess(root: root, config: [CLI.packageRoot.appendingPathComponent("examples/quickstart").path])
        defer { agent.kill() }
        try await agent.waitFor("agent.started") { $0.name == "agent.started" }
        // `hello` runs every 10 s: its first run, its output and its end, in that order.
        let finished = try await agent.waitFor("hello's first run.finished", timeout: 20) {
            $0.name == "run.finished" && $0["job"]?.stringValue == "hello"
        }
        #expect(finished["outcome"] == "success")
        let runID = try #require(finished["run_id"]?.stringValue)
        let lines = agent.events().filter { $0["run_id"]?.stringValue == runID }.map(\.name)
        #expect(lines == ["run.started", "run.output", "run.finished"])
        let output = agent.events().first { $0.name == "run.output" && $0["run_id"]?.stringValue == runID }
        #expect(output?["line"]?.stringValue == "hello from sundial, run \(runID)")

        let completion = await agent.stop()
        #expect(completion.exitCode == 0)
        let names = agent.events().map(\.name)
        #expect(names.suffix(2) == ["agent.stopping", "agent.stopped"])
        // Every line of the log is one JSON object with ts, level and event.
        for e in agent.events() {
            #expect(e["ts"]?.stringValue?.hasSuffix("Z") == true && e["level"] != nil && e["event"] != nil)
        }
        // The state survived: a second agent on the same state starts (the lock was released).
        // (A fresh root for its log, with the same state directory linked in.)
        let root2 = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root2) }
        try FileManager.default.createSymbolicLink(at: root2.appendingPathComponent("state"), withDestinationURL: root.appendingPathComponent("state"))
        let again = try await AgentProcess(root: root2, config: [CLI.packageRoot.appendingPathComponent("examples/quickstart").path])
        defer { again.kill() }
        try await again.waitFor("agent.started again") { $0.name == "agent.started" }
        #expect(await again.stop().exitCode == 0)
    }

    /// The README's set-up command, exactly as written, keeps its state (and the quickstart's
    /// files, which its jobs write in their working directory, the state directory) in a local
    /// directory whoever runs it: run as root without `--state`, it used /var/lib/sundial.
    @Test func readmeQuickstartCommandKeepsStateLocal() async throws {
        let readme = try String(contentsOf: CLI.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let line = try #require(
            readme.split(separator: "\n").first { $0.hasPrefix("swift run sundial run ") },
            "README has no `swift run sundial run` line")
        let words = line.split(separator: "#")[0].split(separator: " ").map(String.init)
        let args = Array(words.dropFirst(3))  // after `swift run sundial`
        let stateIndex = try #require(args.firstIndex(of: "--state"), "the README's command must pass --state: \(line)")
        let state = try #require(args.dropFirst(stateIndex + 1).first)
        #expect(!state.hasPrefix("/"), "the quickstart's state must be local: \(state)")
        let cwd = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: cwd) }
        try FileManager.default.createSymbolicLink(
            at: cwd.appendingPathComponent("examples"),
            withDestinationURL: CLI.packageRoot.appendingPathComponent("examples"))
        let runner = try TestRunner.shared()
        let spec = LaunchSpec(
            job: "readme-quickstart", runID: RunID(rawValue: UUID().uuidString), executable: CLI.binary.path,
            arguments: [CLI.binary.path] + args,
            environment: ["PATH": "/usr/bin:/bin", "HOME": cwd.path, "LANG": "C.UTF-8"],
            workdir: cwd.path, timeoutMs: 30_000, killGraceMs: 2000)
        let lines = Lines()
        let handle = await runner.start(spec) { line in lines.lines.withLock { $0.append(line.text) } }
        defer { if handle.completionIfFinished == nil, let pid = handle.pid { _ = Glibc.kill(pid, SIGKILL) } }
        let deadline = ContinuousClock.now + .seconds(15)
        var started: JSONValue?
        while started == nil, ContinuousClock.now < deadline, handle.completionIfFinished == nil {
            started = lines.lines.withLock { $0 }.lazy.compactMap { try? JSONParser.parse($0) }.first { $0.name == "agent.started" }
            if started == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        let event = try #require(started, "no agent.started: \(lines.lines.withLock { $0 })")
        #expect(event["state"]?.stringValue == state)
        #expect(FileManager.default.fileExists(atPath: cwd.appendingPathComponent(state).appendingPathComponent("state.db").path))
        if let pid = handle.pid { _ = Glibc.kill(pid, SIGTERM) }
        #expect(await handle.completion().exitCode == 0)
    }

    @Test func secondAgentOnTheSameStateIsRefused() async throws {
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let first = try await AgentProcess(root: root, config: [CLI.packageRoot.appendingPathComponent("examples/quickstart").path])
        defer { first.kill() }
        try await first.waitFor("agent.started") { $0.name == "agent.started" }
        let second = try await CLI.run(["run", "examples/quickstart", "--state", root.appendingPathComponent("state").path], timeout: 20)
        #expect(second.status == 1)
        #expect(second.stderr.contains("another agent (pid \(first.pid))"))
        _ = await first.stop()
    }

    @Test func invalidConfigurationAtStartExitsOneWithPositionedErrors() async throws {
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let file = root.appendingPathComponent("bad.yaml")
        try Data("version: 1\njobs:\n  a: { every: 5m, shell: x, timout: 1m }\n".utf8).write(to: file)
        let r = try await CLI.run(["run", file.path, "--state", root.appendingPathComponent("state").path], timeout: 20)
        #expect(r.status == 1)
        #expect(r.stderr.contains("bad.yaml:3:29: error: unknown key `timout`; did you mean `timeout`?"))
    }
}
