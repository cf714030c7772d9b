import Foundation
import SundialCore
import SundialRuntime
import SundialTesting
import Synchronization
import Testing

/// The built `sundial run` as a child of the test process, with its event log in a temporary
/// directory, for end-to-end reload tests.
///
/// Started through Sundial's own ``ProcessRunner`` (see `CLI.run` for why not Foundation's
/// `Process`), with the runner's timeout as a hard bound: an agent that hangs is killed.
/// Tests wait for *events in the log* with deadlines (``waitFor(_:after:timeout:where:)``);
/// nothing asserts after a bare sleep.
final class AgentProcess: Sendable {
    let root: URL
    let logPath: String
    let handle: RunHandle
    /// The agent's own stdout/stderr lines (for failure messages).
    private let output = Lines()
    private let parsed = Mutex<(offset: Int, events: [JSONValue])>((0, []))

    var pid: Int32 { handle.pid ?? -1 }

    /// Starts `sundial run CONFIG --state ROOT/state --log ROOT/events.jsonl --debounce 100ms ARGS`
    /// and waits for its first `config.loaded`.
    /// - Parameter lifetime: the runner kills the agent after this many seconds, whatever happens.
    /// - Parameter softOpenFiles: the soft `RLIMIT_NOFILE` the agent starts with (set by a
    ///   shell that then execs it); nil: this process's.
    init(
        root: URL, config: [String], extraArgs: [String] = [], debounce: String = "100ms", lifetime: Double = 45,
        environment: [String: String] = [:], contained: Bool = false, softOpenFiles: Int? = nil
    ) async throws {
        self.root = root
        logPath = root.appendingPathComponent("events.jsonl").path
        let binary = CLI.binary.path
        let args =
            [binary, "run"] + config + [
                "--state", root.appendingPathComponent("state").path, "--log", logPath,
                "--debounce", debounce,
            ] + extraArgs
        // `exec` keeps the pid: the process started is the agent.
        let launcher = softOpenFiles.map { ["/bin/sh", "-c", "ulimit -Sn \($0) && exec \"$@\"", "sh"] } ?? []
        var spec = LaunchSpec(
            job: "agent-under-test", runID: RunID(rawValue: UUID().uuidString), executable: launcher.first ?? binary,
            arguments: launcher + args,
            environment: ["PATH": "/usr/bin:/bin", "HOME": root.path, "LANG": "C.UTF-8", "TZ": "UTC"].merging(environment) { $1 },
            workdir: root.path, timeoutMs: Int64(lifetime * 1000), killGraceMs: 2000)
        // Not in a run cgroup of its own unless asked: the runner kills whatever is left in a
        // run's cgroup when its main process exits, and that would take the agent's jobs with
        // it after a `kill -9` (as `KillMode=mixed` would), leaving nothing to adopt.
        spec.useCgroup = contained
        let output = self.output
        handle = await (try TestRunner.shared()).start(spec) { line in output.lines.withLock { $0.append(line.text) } }
        guard handle.pid != nil else {
            let c = await handle.completion()
            throw AgentError("the agent did not start: \(c.outcome)")
        }
        _ = try await waitFor("the first config.loaded", timeout: 15) { $0.name == "config.loaded" }
    }

    struct AgentError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    // MARK: - Reading the log

    /// Every complete line of the log so far, parsed (a line still being written is left for later).
    func events() -> [JSONValue] {
        parsed.withLock { state in
            guard let data = FileManager.default.contents(atPath: logPath), data.count > state.offset else { return state.events }
            let bytes = [UInt8](data[state.offset...])
            var start = 0
            for (i, b) in bytes.enumerated() where b == 0x0A {
                if let e = try? JSONParser.parse(Array(bytes[start..<i])) { state.events.append(e) }
                start = i + 1
            }
            state.offset += start
            return state.events
        }
    }

    /// How many events there are now: pass it as `after:` to look only at later ones.
    func mark() -> Int { events().count }

    /// The first event after index `after` that satisfies `predicate`, polling the log every
    /// 20 ms until `timeout`; throws (and records the log) when none comes in time.
    @discardableResult
    func waitFor(
        _ what: String, after: Int = 0, timeout: Double = 10,
        where predicate: (JSONValue) -> Bool
    ) async throws -> JSONValue {
        let deadline = ContinuousClock.now + .milliseconds(Int64(timeout * 1000))
        while true {
            let all = events()
            if let hit = all.dropFirst(after).first(where: predicate) { return hit }
            if ContinuousClock.now >= deadline || handle.completionIfFinished != nil {
                let tail = all.suffix(15).map(\.jsonText).joined(separator: "\n")
                let stderr = output.lines.withLock { $0.suffix(20).joined(separator: "\n") }
                throw AgentError(
                    "no \(what) within \(timeout) s (agent \(handle.completionIfFinished == nil ? "running" : "exited")); "
                        + "last events:\n\(tail)\nagent output:\n\(stderr)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Polls until `condition` holds for the events so far, or throws at `timeout`.
    func waitUntil(_ what: String, timeout: Double = 10, _ condition: ([JSONValue]) -> Bool) async throws {
        try await waitFor(what, timeout: timeout) { _ in condition(self.events()) }
    }

    /// The next `config.loaded` or `config.rejected` after `after`.
    func nextConfigEvent(after: Int, timeout: Double = 10) async throws -> JSONValue {
        try await waitFor("config.loaded or config.rejected", after: after, timeout: timeout) {
            $0.name == "config.loaded" || $0.name == "config.rejected"
        }
    }

    // MARK: - Signals

    func signal(_ sig: Int32) { _ = Glibc.kill(pid, sig) }

    /// SIGTERM, then waits for the agent to exit (bounded by its lifetime); returns its status.
    func stop() async -> RunCompletion {
        if handle.completionIfFinished == nil { signal(SIGTERM) }
        return await handle.completion()
    }

    /// For `defer`: kills an agent a failed test left running.
    func kill() { if handle.completionIfFinished == nil { signal(SIGKILL) } }
}

final class Lines: Sendable {
    let lines = Mutex<[String]>([])
}

extension JSONValue {
    var name: String? { self["event"]?.stringValue }
    var strings: [String] {
        guard case let .array(items) = self else { return [] }
        return items.compactMap(\.stringValue)
    }
    var int: Int64? { if case let .int(i) = self { i } else { nil } }
}

/// Writing job files the ways tools do, for the reload tests.
enum JobFiles {
    /// A file rewritten in place (`O_TRUNC` then `write`), as an editor without backup does.
    static func writeInPlace(_ text: String, to path: String) throws { try TestFile.write(text, to: path) }

    /// A temporary file renamed over the target, as Ansible, Salt and Puppet do.
    static func writeAtomically(_ text: String, to path: String) throws {
        let temporary = (path as NSString).deletingLastPathComponent + "/.tmp-" + UUID().uuidString.prefix(8)
        try writeInPlace(text, to: temporary)
        guard rename(temporary, path) == 0 else { throw CocoaError(.fileWriteUnknown) }
    }

    static func job(_ id: String, every: String = "1h", command: String = "[/bin/true]", extra: String = "") -> String {
        "  \(id):\n    every: \(every)\n    command: \(command)\n" + extra
    }

    static func file(_ jobs: String...) -> String { "version: 1\njobs:\n" + jobs.joined() }
}
