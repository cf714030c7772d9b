import Foundation
import SundialCore
import SundialRuntime
import Synchronization
import Testing

/// A `sundial run` in the background (event log on standard output, any arguments), launched through Sundial's own runner (see `CLI.run`),
/// with its event log (standard output) collected line by line. Bounded: the runner kills it
/// after `limit` whatever happens, and every wait has a deadline.
final class StdoutAgent: Sendable {
    let handle: RunHandle
    let pid: Int32
    private let lines: Lines

    /// Output lines, filled by the runner's callback (which exists before this object does).
    final class Lines: Sendable {
        let box = Mutex<(out: [String], err: [String])>(([], []))
        func add(_ text: String, stdout: Bool) {
            box.withLock { if stdout { $0.out.append(text) } else { $0.err.append(text) } }
        }
    }

    private init(handle: RunHandle, pid: Int32, lines: Lines) {
        self.handle = handle
        self.pid = pid
        self.lines = lines
    }

    /// Starts `sundial run ARGS`.
    static func start(_ args: [String], limit: Double = 120) async throws -> StdoutAgent {
        let runner = try TestRunner.shared()
        let binary = CLI.binary.path
        var spec = LaunchSpec(
            job: "agent-test", runID: RunID(rawValue: UUID().uuidString), executable: binary,
            arguments: [binary, "run"] + args,
            environment: ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8"],
            workdir: CLI.packageRoot.path, timeoutMs: Int64(limit * 1000), killGraceMs: 1000,
            output: OutputLimits(maxLineBytes: 1 << 20, maxBytes: 256 << 20))
        // Not in a run cgroup: the runner would kill the agent's jobs with it after a `kill -9`
        // (whatever is left in a run's cgroup dies with the run), leaving nothing to adopt.
        spec.useCgroup = false
        let lines = Lines()
        let handle = await runner.start(spec) { line in
            // A line cut short (by a kill) is not an event.
            guard !line.truncated else { return }
            lines.add(line.text, stdout: line.stream == .stdout)
        }
        let pid = try #require(handle.pid, "sundial run did not start")
        return StdoutAgent(handle: handle, pid: pid, lines: lines)
    }

    var stdoutLines: [String] { lines.box.withLock { $0.out } }
    var stderrText: String { lines.box.withLock { $0.err.joined(separator: "\n") } }

    /// The event lines so far, parsed; a line that is not JSON is skipped.
    var events: [JSONValue] {
        stdoutLines.compactMap { try? JSONParser.parse($0) }
    }

    func events(_ name: String, job: String? = nil) -> [JSONValue] {
        events.filter { $0["event"]?.stringValue == name && (job == nil || $0["job"]?.stringValue == job) }
    }

    /// Waits until `condition` holds on the events so far (or the process ends); false on
    /// timeout.
    @discardableResult
    func waitFor(timeout: Duration = .seconds(15), _ condition: (StdoutAgent) -> Bool) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if condition(self) { return true }
            if handle.completionIfFinished != nil { return condition(self) }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition(self)
    }

    /// Sends `signal` and waits for the end (bounded by the runner's limit).
    @discardableResult
    func stop(_ signal: Int32 = SIGTERM) async -> RunCompletion {
        kill(pid, signal)
        return await handle.completion()
    }
}
