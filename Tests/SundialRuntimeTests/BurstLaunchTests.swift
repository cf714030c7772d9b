import Foundation
import SundialCore
import SundialTesting
import Synchronization
import Testing

@testable import SundialRuntime

/// Bursts of starts: the runner spawns consecutive pending starts from two threads and
/// registers them in order on its loop thread (``RunnerEngine`` `launchBurst`). Each test posts
/// its commands to the loop in one piece (``Burst``), so they are exactly one burst, and checks
/// that every run got its own pid, output and exit status. Bounded by ``withDeadline``.
///
/// Serialized, and on a runner of its own: each test counts the burst spawns of *its* burst and
/// the spawn helper threads, which another test's starts on the same runner would change.
@Suite(.serialized, .offPool) struct BurstLaunchTests {
    private static let ownRunner: Swift.Result<ProcessRunner, RunnerError> = {
        do throws(RunnerError) { return .success(try ProcessRunner()) } catch { return .failure(error) }
    }()

    /// What one start of a burst gave.
    struct Result: Sendable {
        let index: Int
        let handle: RunHandle
        let completion: RunCompletion
        let stdout: [String]
    }

    /// Starts every command of `items` as one burst and waits for every run to end.
    /// `minBurstSpawns`: how many of them must have gone through the burst path (all by default).
    func runBurst(_ items: [Burst.Item], minBurstSpawns: Int? = nil, seconds: Double = 60) async throws -> [Result] {
        let runner = try Self.ownRunner.get()
        let before = runner.engine.burstSpawns.load(ordering: .relaxed)
        let results = try await withDeadline(seconds) {
            let burst = Burst(runner.engine, items)
            return await withTaskGroup(of: Result?.self) { group in
                for i in items.indices {
                    guard case let .start(spec) = items[i] else { continue }
                    group.addTask {
                        let lines = Lines()
                        let handle = await burst.start(i, spec, lines.handler)
                        let completion = await handle.completion()
                        return Result(index: i, handle: handle, completion: completion, stdout: lines.stdout)
                    }
                }
                var all: [Result] = []
                for await r in group { if let r { all.append(r) } }
                return all.sorted { $0.index < $1.index }
            }
        }
        if RunnerEngine.spawnThreads > 1 {
            // The burst path ran (not one start at a time).
            #expect(runner.engine.burstSpawns.load(ordering: .relaxed) - before >= minBurstSpawns ?? results.count)
        }
        return results
    }

    func spec(_ executable: String, _ arguments: [String], id: RunID = nextRunID()) -> LaunchSpec {
        LaunchSpec(
            job: "burst", runID: id, executable: executable, arguments: arguments,
            environment: ["PATH": LaunchSpec.defaultPath], timeoutMs: 30_000)
    }

    @Test func twoHundredTrue() async throws {
        let results = try await runBurst((0..<200).map { _ in .start(spec("/bin/true", ["/bin/true"])) })
        #expect(results.count == 200)
        var pids = Set<Int32>()
        for r in results {
            let pid = try #require(r.handle.pid, "start \(r.index): \(r.completion.outcome)")
            pids.insert(pid)
            #expect(r.completion.pid == pid)
            #expect(r.completion.outcome == .success(exitCode: 0))
        }
        #expect(pids.count == 200)
    }

    @Test func twoHundredVariedExitCodes() async throws {
        // Each job prints its own pid: output, pid and exit status must belong to the same start.
        let results = try await runBurst((0..<200).map { i in .start(spec("/bin/sh", ["/bin/sh", "-c", "echo $$ \(i); exit \(i % 7)"])) })
        #expect(results.count == 200)
        for r in results {
            let pid = try #require(r.handle.pid, "start \(r.index): \(r.completion.outcome)")
            #expect(r.stdout == ["\(pid) \(r.index)"])
            #expect(r.completion.pid == pid)
            #expect(r.completion.exitCode == Int32(r.index % 7))
            #expect(r.completion.outcome == (r.index % 7 == 0 ? .success(exitCode: 0) : .failure(exitCode: Int32(r.index % 7))))
        }
    }

    @Test func launchFailuresMixedWithSuccesses() async throws {
        let items: [Burst.Item] = (0..<120).map { i in
            i % 3 == 1
                ? .start(spec("/nonexistent/sundial-burst-\(i)", ["x"]))
                : .start(spec("/bin/sh", ["/bin/sh", "-c", "echo \(i); exit \(i % 5)"]))
        }
        let results = try await runBurst(items)
        #expect(results.count == 120)
        for r in results {
            if r.index % 3 == 1 {
                #expect(r.handle.pid == nil)
                guard case let .launchFailed(reason) = r.completion.outcome else {
                    Issue.record("start \(r.index): \(r.completion.outcome)")
                    continue
                }
                #expect(reason.hasPrefix("command not found: /nonexistent/sundial-burst-\(r.index)"), "\(reason)")
            } else {
                #expect(r.handle.pid != nil)
                #expect(r.stdout == ["\(r.index)"])
                #expect(r.completion.exitCode == Int32(r.index % 5))
            }
        }
    }

    @Test func terminateInTheMiddleKeepsItsOrder() async throws {
        // Starts A0…A4, "terminate A2", "terminate B1", starts B0…B4: A2 was started before its
        // terminate and is stopped; the other As are not; B1 was not yet started when its
        // terminate came, so it runs to its end.
        let a = (0..<5).map { _ in nextRunID() }
        let b = (0..<5).map { _ in nextRunID() }
        var items: [Burst.Item] = a.map { .start(spec("/bin/sh", ["/bin/sh", "-c", "exec sleep 1"], id: $0)) }
        items.append(.terminate(a[2]))
        items.append(.terminate(b[1]))
        items += b.map { .start(spec("/bin/sh", ["/bin/sh", "-c", "sleep 0.2; exit 7"], id: $0)) }
        let results = try await runBurst(items)
        #expect(results.count == 10)
        let byID = Dictionary(uniqueKeysWithValues: results.map { ($0.handle.runID, $0.completion) })
        #expect(byID[a[2]]?.outcome == .interrupted)
        #expect(byID[a[2]]?.signal == SIGKILL)
        for (i, id) in a.enumerated() where i != 2 {
            #expect(byID[id]?.outcome == .success(exitCode: 0))
            #expect((byID[id]?.durationMs ?? 0) >= 900)
        }
        for id in b { #expect(byID[id]?.outcome == .failure(exitCode: 7)) }
    }

    @Test func sameRunTwiceInOneBurst() async throws {
        // The second start sees the first, as it would one at a time.
        let id = nextRunID()
        let other = nextRunID()
        let items: [Burst.Item] = [
            .start(spec("/bin/sh", ["/bin/sh", "-c", "exec sleep 30"], id: id)),
            .start(spec("/bin/true", ["/bin/true"], id: other)),
            .start(spec("/bin/true", ["/bin/true"], id: id)),
            .terminate(id),
        ]
        // [first, other] are one burst; the second start of `id` begins the next one.
        let results = try await runBurst(items, minBurstSpawns: 2)
        #expect(results.count == 3)
        #expect(results[0].completion.outcome == .interrupted)
        #expect(results[1].completion.outcome == .success(exitCode: 0))
        #expect(results[2].handle.pid == nil)
        #expect(results[2].completion.outcome == .launchFailed(reason: "run \(id) already has an active attempt"))
    }

    @Test(arguments: [false, true])
    func burstChildrenGetCleanSignalsAndDescriptors(forkPath: Bool) async throws {
        // The spawn helper blocks every signal, and the other thread's pipes exist while a child
        // is created: no child may inherit either. `/bin/sh` reads its own status and lists its
        // descriptors (0, 1, 2, and the one `ls` opens to list them).
        let items: [Burst.Item] = (0..<16).map { _ in
            var s = spec("/bin/sh", ["/bin/sh", "-c", "grep -E '^SigBlk' /proc/self/status; ls /proc/self/fd | tr '\\n' ' '"])
            if forkPath { s.umask = 0o022 }  // umask takes the fork+exec path
            return .start(s)
        }
        for r in try await runBurst(items) {
            #expect(r.completion.outcome == .success(exitCode: 0))
            #expect(r.stdout.count == 2)
            guard r.stdout.count == 2 else { continue }
            // glibc's posix_spawn leaves its two internal signals (32, 33) to the child: see
            // ProcessRunnerTests.signalMaskAndDispositionsAreReset.
            let mask = UInt64(r.stdout[0].split(separator: "\t").last ?? "", radix: 16) ?? .max
            #expect(mask & ~0x1_8000_0000 == 0, "\(r.stdout[0])")
            #expect(r.stdout[1].split(separator: " ").sorted() == ["0", "1", "2", "3"], "\(r.stdout[1])")
        }
    }

    @Test(.enabled(if: RunnerEngine.spawnThreads > 1, "one spawning thread: no helper"))
    func threadsAreNamed() async throws {
        _ = try await runBurst((0..<4).map { _ in .start(spec("/bin/true", ["/bin/true"])) })
        let names = threadNames()
        // At least: other suites' runners (each with its thread and, after a burst, its helpers)
        // live in this process too.
        #expect(names.contains("sundial-runner"))
        #expect(names.filter { $0 == "sundial-spawn" }.count >= RunnerEngine.spawnThreads - 1)
    }
}

/// Posts a burst's commands to the runner's loop in one piece, once every start has its
/// continuation, so the loop takes them all together.
final class Burst: Sendable {
    enum Item: Sendable {
        case start(LaunchSpec)
        case terminate(RunID)
    }

    private let engine: RunnerEngine
    private let slots: Mutex<[RunnerEngine.Command?]>
    private let missing: Mutex<Int>

    init(_ engine: RunnerEngine, _ items: [Item]) {
        self.engine = engine
        let commands: [RunnerEngine.Command?] = items.map {
            if case let .terminate(id) = $0 { return .terminate(id, graceMs: 0) }
            return nil
        }
        slots = Mutex(commands)
        missing = Mutex(commands.filter { $0 == nil }.count)
    }

    /// Starts item `index` (a `.start`) as part of the burst; returns its handle.
    func start(_ index: Int, _ spec: LaunchSpec, _ handler: @escaping OutputHandler) async -> RunHandle {
        await withCheckedContinuation { (c: CheckedContinuation<RunHandle, Never>) in
            slots.withLock { $0[index] = .start(spec, handler, c) }
            let last = missing.withLock { m in
                m -= 1
                return m == 0
            }
            if last { engine.post(contentsOf: slots.withLock { $0.compactMap { $0 } }) }
        }
    }
}
