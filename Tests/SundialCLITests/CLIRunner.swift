import Foundation
import SundialCore
import SundialRuntime
import Synchronization
import Testing

/// Runs the built `sundial` binary with a hard time limit, for CLI tests.
enum CLI {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The package root (for `examples/`, `schemas/`).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// `.build/<config>/sundial`, next to the test bundle.
    static var binary: URL {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while dir.path != "/", !FileManager.default.fileExists(atPath: dir.appendingPathComponent("sundial").path) {
            dir.deleteLastPathComponent()
        }
        return dir.appendingPathComponent("sundial")
    }

    /// Runs `sundial ARGS` through Sundial's own ``ProcessRunner``, bounded by `timeout`.
    ///
    /// Not Foundation's `Process`: the runner gives output lines, a hard timeout that kills the
    /// whole process group, and the same spawning path as the agent's jobs.
    static func run(_ args: [String], cwd: URL? = nil, timeout: Double = 30, env: [String: String] = [:]) async throws -> Result {
        try await runTool(binary.path, args, cwd: cwd, timeout: timeout, env: env)
    }

    /// Runs another program (`groff`, say) the same way, for checks of the binary's output.
    static func runTool(
        _ executable: String, _ args: [String], cwd: URL? = nil, timeout: Double = 30,
        env: [String: String] = [:]
    ) async throws -> Result {
        let runner = try TestRunner.shared()
        var environment = ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8"]
        for (k, v) in env { environment[k] = v }
        let spec = LaunchSpec(
            job: "cli-test", runID: RunID(rawValue: UUID().uuidString), executable: executable,
            arguments: [executable] + args, environment: environment, workdir: (cwd ?? packageRoot).path,
            timeoutMs: Int64(timeout * 1000), killGraceMs: 1000,
            output: OutputLimits(maxLineBytes: 4 << 20, maxBytes: 64 << 20))
        let lines = Mutex<(out: [String], err: [String])>(([], []))
        let handle = await runner.start(spec) { line in
            lines.withLock { if line.stream == .stdout { $0.out.append(line.text) } else { $0.err.append(line.text) } }
        }
        let completion = await handle.completion()
        if completion.outcome == .timeout { Issue.record("\(executable) \(args.joined(separator: " ")) did not finish within \(timeout) s") }
        let (out, err) = lines.withLock { ($0.out, $0.err) }
        let status: Int32 = completion.exitCode ?? (completion.signal.map { 128 + $0 } ?? -1)
        return Result(status: status, stdout: out.map { $0 + "\n" }.joined(), stderr: err.map { $0 + "\n" }.joined())
    }

    /// A fresh temporary directory, removed by the caller with `cleanup`.
    static func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sundial-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }
}
