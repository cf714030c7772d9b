import CSundialShim
import Foundation
import OrderedCollections
import SundialConfig
import SundialCore
import SundialTesting
import Testing

@testable import SundialRuntime

/// The agent's configuration loader child (``IsolatedConfigLoader``) with the real binary, and
/// with stand-ins that crash, hang, burn CPU or garble their answer. Each failure must come
/// back as a diagnostic, within the deadline, whatever else reaps children in this process.
@Suite("Isolated config loader (built binary and hostile stand-ins)", .serialized, .timeLimit(.minutes(1)), .offPool)
struct IsolatedLoaderTests {
    static let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("examples").path

    /// A shell script standing in for the loader.
    func script(_ body: String) throws -> (path: String, dir: URL) {
        let dir = try CLI.tempDir()
        let path = dir.appendingPathComponent("loader.sh").path
        try TestFile.write("#!/bin/sh\n" + body + "\n", to: path, mode: 0o755)
        return (path, dir)
    }

    func failure(of loader: IsolatedConfigLoader, paths: [String] = ["/nowhere"]) -> String {
        var r = loader.load(paths: paths)
        // A script just written can be busy for a moment: another test thread's fork may hold
        // a copy of its write descriptor until that child execs (ETXTBSY). Not the loader's
        // concern (the agent's loader is its own binary), so the test retries briefly.
        for _ in 0..<20 where r.diagnostics.contains(where: { $0.message.contains("Text file busy") }) {
            usleep(50_000)
            r = loader.load(paths: paths)
        }
        #expect(r.jobSet == nil)
        return r.diagnostics.map(\.description).joined(separator: "\n")
    }

    @Test func theRealChildGivesTheSameSetAsLoadingInProcess() throws {
        let loader = IsolatedConfigLoader(command: [CLI.binary.path, "internal-load"])
        for paths in [[Self.examples], [Self.examples + "/quickstart"]] {
            let inProcess = ConfigurationLoading.load(paths: paths)
            let isolated = loader.load(paths: paths)
            let a = try #require(inProcess.jobSet, "\(inProcess.diagnostics)")
            let b = try #require(isolated.jobSet, "\(isolated.diagnostics)")
            #expect(a == b && a.revision == b.revision && a.files == b.files)
            #expect(a.jobs.values.map(\.location) == b.jobs.values.map(\.location))
            #expect(isolated.diagnostics == inProcess.diagnostics)
        }
    }

    /// The agent's request reaches the real child on its standard input: the file that did not
    /// change comes back marked as reused, the edited one parsed, and the set the agent puts
    /// together is the one loading in process gives. Then the same through the agent's loader,
    /// which remembers between loads.
    @Test func theRealChildReusesWhatDidNotChange() throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = dir.appendingPathComponent("a.yaml").path
        let b = dir.appendingPathComponent("b.yaml").path
        try "version: 1\njobs:\n  a:\n    every: 5m\n    needs: [b]\n    command: [/bin/true]\n".write(toFile: a, atomically: true, encoding: .utf8)
        try "version: 1\njobs:\n  b:\n    every: 1h\n    command: [/bin/true]\n".write(toFile: b, atomically: true, encoding: .utf8)
        let loader = IsolatedConfigLoader(command: [CLI.binary.path, "internal-load"])

        var memo = LoaderMemo()
        guard case let .success(first) = loader.run(arguments: loader.command + [dir.path]) else {
            Issue.record("the first load failed")
            return
        }
        let firstResult = try memo.result(of: LoaderWire.decodeAnswer(first, maxBytes: 1 << 20))
        #expect(firstResult.isValid && memo.count == 2, "\(firstResult.diagnostics)")

        try "version: 1\njobs:\n  b:\n    every: 2h\n    command: [/bin/true]\n".write(toFile: b, atomically: true, encoding: .utf8)
        let request = memo.request()
        let input = request.withUnsafeBytes { sundial_memfd_with($0.baseAddress, $0.count) }
        try #require(input >= 0)
        defer { close(input) }
        guard case let .success(second) = loader.run(arguments: loader.command + [LoaderMemo.requestFlag, "--", dir.path], input: input) else {
            Issue.record("the second load failed")
            return
        }
        let answer = try LoaderWire.decodeAnswer(second, maxBytes: 1 << 20)
        #expect(answer.files.map(\.path) == [a, b])
        #expect(answer.files.map(\.reused) == [true, false])
        let result = try memo.result(of: answer)
        let inProcess = ConfigurationLoading.load(paths: [dir.path])
        #expect(result.jobSet == inProcess.jobSet && result.jobSet?.revision == inProcess.jobSet?.revision)
        #expect(result.jobSet?.jobs["b"]?.schedule == .every(intervalMs: 7_200_000, offsetMs: nil))

        // The agent's loader: a first load remembers both files, a reload after an edit takes
        // the other one as it was and gives what loading in process gives.
        #expect(loader.load(paths: [dir.path]).isValid && loader.reusableFiles == 2 && loader.reusedInLastLoad == 0)
        try "version: 1\njobs:\n  b:\n    every: 3h\n    command: [/bin/true]\n".write(toFile: b, atomically: true, encoding: .utf8)
        let reloaded = loader.load(paths: [dir.path])
        #expect(loader.reusedInLastLoad == 1)
        #expect(reloaded.jobSet == ConfigurationLoading.load(paths: [dir.path]).jobSet)
        #expect(reloaded.jobSet?.jobs["b"]?.schedule == .every(intervalMs: 10_800_000, offsetMs: nil))
        // A file removed: the job that needed one of its jobs is an error, though its own file
        // is reused; the memo stays that of the last valid load until the next valid one.
        try FileManager.default.removeItem(atPath: b)
        let broken = loader.load(paths: [dir.path])
        #expect(broken.jobSet == nil && broken.diagnostics.contains { $0.message.contains("unknown job `b`") })
        #expect(loader.reusableFiles == 2)
        try "version: 1\njobs:\n  a:\n    every: 5m\n    command: [/bin/true]\n".write(toFile: a, atomically: true, encoding: .utf8)
        let alone = loader.load(paths: [dir.path])
        #expect(alone.jobSet == ConfigurationLoading.load(paths: [dir.path]).jobSet && alone.jobSet?.jobs.count == 1)
        #expect(loader.reusableFiles == 1)
    }

    /// The child's fast path (no argument parser) is the agent's only: run by hand with an
    /// option, it is parsed like any command; after `--`, a path that looks like an option is
    /// a path.
    @Test func theLoaderRunByHandIsParsedLikeAnyCommand() async throws {
        let help = try await CLI.run(["internal-load", "--help"])
        #expect(help.status == 0 && help.stdout.contains("USAGE: sundial internal-load"), "\(help.stdout)\(help.stderr)")
        let none = try await CLI.run(["internal-load"])
        #expect(none.status == 2, "\(none.stderr)")
        let loader = IsolatedConfigLoader(command: [CLI.binary.path, "internal-load"])
        let odd = loader.load(paths: ["--reuse-stdin"])
        #expect(odd.jobSet == nil)
        #expect(odd.diagnostics.map(\.location.file) == ["--reuse-stdin"], "\(odd.diagnostics)")
    }

    @Test func theRealChildGivesTheSameDiagnosticsAsValidate() throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try "version: 1\njobs:\n  a:\n    every: 5m\n    command: [x]\n    timout: 5m\n  b:\n    schedule: \"0 25 * * *\"\n    command: [x]\n"
            .write(toFile: dir.appendingPathComponent("a.yaml").path, atomically: true, encoding: .utf8)
        try "version: 1\njobs:\n  c:\n    needs: [uplaod]\n    command: [x]\n"
            .write(toFile: dir.appendingPathComponent("b.yaml").path, atomically: true, encoding: .utf8)
        let isolated = IsolatedConfigLoader(command: [CLI.binary.path, "internal-load"]).load(paths: [dir.path])
        let inProcess = ConfigurationLoading.load(paths: [dir.path])
        #expect(!isolated.diagnostics.isEmpty)
        #expect(isolated.diagnostics == inProcess.diagnostics)
    }

    @Test func aCrashIsADiagnosticWithTheSignalAndTheLastWords() throws {
        let s = try script("echo 'Fatal error: boom in the parser' >&2\nkill -SEGV $$")
        defer { try? FileManager.default.removeItem(at: s.dir) }
        let text = failure(of: IsolatedConfigLoader(command: [s.path]))
        #expect(text.contains("/nowhere:1:1: error: the configuration loader crashed (SIGSEGV): Fatal error: boom in the parser"), "\(text)")
    }

    @Test func aHangIsKilledAtTheDeadline() throws {
        let s = try script("exec sleep 30")
        defer { try? FileManager.default.removeItem(at: s.dir) }
        var limits = IsolatedConfigLoader.Limits()
        limits.deadlineMs = 300
        let start = ContinuousClock.now
        let text = failure(of: IsolatedConfigLoader(command: [s.path], limits: limits))
        #expect(text.contains("did not finish within"), "\(text)")
        #expect(ContinuousClock.now - start < .seconds(5))
    }

    @Test func aChildThatKeepsTheOutputOpenAfterTheDeadlineIsStillKilled() throws {
        // A grandchild holding the pipe must not keep the load waiting for EOF.
        let s = try script("sleep 30 &\nexit 0")
        defer { try? FileManager.default.removeItem(at: s.dir) }
        var limits = IsolatedConfigLoader.Limits()
        limits.deadlineMs = 500
        let start = ContinuousClock.now
        let text = failure(of: IsolatedConfigLoader(command: [s.path], limits: limits))
        #expect(text.contains("did not finish within") || text.contains("invalid answer"), "\(text)")
        #expect(ContinuousClock.now - start < .seconds(5))
    }

    @Test func cpuBurnHitsTheCPULimit() throws {
        let s = try script("while :; do :; done")
        defer { try? FileManager.default.removeItem(at: s.dir) }
        var limits = IsolatedConfigLoader.Limits()
        limits.cpuSeconds = 1
        let text = failure(of: IsolatedConfigLoader(command: [s.path], limits: limits))
        #expect(text.contains("used more than 1 s of CPU"), "\(text)")
    }

    @Test func theAddressSpaceLimitHolds() throws {
        // 64 MiB: enough for a shell, not for a 200 MB string.
        let s = try script("python3 -c 'x = bytearray(200 << 20)' 2>/dev/null || kill -SEGV $$")
        defer { try? FileManager.default.removeItem(at: s.dir) }
        var limits = IsolatedConfigLoader.Limits()
        limits.addressSpaceBytes = 64 << 20
        let text = failure(of: IsolatedConfigLoader(command: [s.path], limits: limits))
        #expect(text.contains("crashed (SIGSEGV)"), "\(text)")
    }

    @Test func garbageTruncatedAndOversizedAnswersAreRejected() throws {
        let garbage = try script("echo hello")
        let truncated = try script("printf 'SUNDIAL-LOADER \(LoaderWire.version) 100\\n\\001'")
        let huge = try script("head -c 3000000 /dev/zero")
        let failing = try script("echo 'cannot read' >&2; exit 4")
        defer { for s in [garbage, truncated, huge, failing] { try? FileManager.default.removeItem(at: s.dir) } }
        #expect(failure(of: IsolatedConfigLoader(command: [garbage.path])).contains("invalid answer: not a loader answer"))
        #expect(failure(of: IsolatedConfigLoader(command: [truncated.path])).contains("truncated"))
        var limits = IsolatedConfigLoader.Limits()
        limits.maxAnswerBytes = 1 << 20
        #expect(failure(of: IsolatedConfigLoader(command: [huge.path], limits: limits)).contains("larger than 1048576 bytes"))
        #expect(failure(of: IsolatedConfigLoader(command: [failing.path])).contains("failed (exit status 4): cannot read"))
        #expect(failure(of: IsolatedConfigLoader(command: ["/nonexistent/loader"])).contains("cannot start the configuration loader"))
    }

    @Test func theExitStatusArrivesWhileASubreaperReapsEveryOtherChild() async throws {
        // The loader's status comes from its watcher over a pipe, whoever reaps the watcher (in
        // `sundial run`, the orphan reaper may): here, with a runner reaping its own children.
        let runner = try TestRunner.shared()
        let busy = (0..<20).map { i in
            LaunchSpec(job: "j\(i)", runID: RunID(rawValue: "r\(i)-\(UUID().uuidString)"), executable: "/bin/true", arguments: ["/bin/true"])
        }
        let s = try script("sleep 0.2; kill -ABRT $$")
        defer { try? FileManager.default.removeItem(at: s.dir) }
        async let loads: [String] = Task.detached {
            (0..<5).map { _ in self.failure(of: IsolatedConfigLoader(command: [s.path])) }
        }.value
        for spec in busy { _ = await runner.start(spec) { _ in }.completion() }
        for text in await loads { #expect(text.contains("crashed (SIGABRT)"), "\(text)") }
    }
}
