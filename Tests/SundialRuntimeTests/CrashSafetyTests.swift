import Foundation
import SundialCore
import SundialRuntime
import SundialTesting
import Synchronization
import Testing

/// `kill -9` at random moments must never lose a fire that `apply` acknowledged, never let an
/// instant fire twice, and always leave a database that opens.
@Suite("State crash safety", .offPool)
struct CrashSafetyTests {
    static var writer: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("sundial-bench").path
    }

    struct Fire: Hashable {
        var job: String
        var scheduledFor: Int64
        var runID: String
    }

    /// Starts the writer, kills it with SIGKILL after `delay`, and returns the fires it
    /// acknowledged (lines it printed after `apply` returned). Launched through Sundial's own
    /// runner: the test process shares one reaper with the runner tests (issue 4).
    static func runAndKill(db: String, after delay: Duration) async throws -> [Fire] {
        let runner = try TestRunner.shared()
        let spec = LaunchSpec(
            job: "crash-writer", runID: RunID(rawValue: UUID().uuidString), executable: writer,
            arguments: [writer, "state-crash-writer", db], timeoutMs: 60_000,
            output: OutputLimits(maxLineBytes: 4096, maxBytes: 64 << 20))
        let lines = Mutex<[String]>([])
        let handle = await runner.start(spec) { line in
            if line.stream == .stdout, !line.truncated { lines.withLock { $0.append(line.text) } }
        }
        let pid = try #require(handle.pid)
        try await Task.sleep(for: delay)
        kill(pid, SIGKILL)
        let completion = await handle.completion()
        #expect(completion.outcome == .signal(SIGKILL), "the writer stopped on its own: \(completion.outcome)")
        return lines.withLock { $0 }.compactMap { line in
            let f = line.split(separator: " ")
            // A line cut by the kill is not an acknowledgement.
            guard f.count == 4, f[0] == "F", let t = Int64(f[2]), f[3].count == 26 else { return nil }
            return Fire(job: String(f[1]), scheduledFor: t, runID: String(f[3]))
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: writer), "needs the sundial-bench binary (swift build)"))
    func killNineAtRandomMomentsLosesNothingAndFiresNothingTwice() async throws {
        let dir = TempDir("crash")
        defer { dir.remove() }
        let db = dir.path + "/state.db"
        var random = SeededRandom(seed: 20_261_125)
        var acknowledged: [Fire] = []
        let rounds = 25
        for round in 0..<rounds {
            // Early rounds also hit the start-up path (opening, migrating, restoring).
            let delay = Duration.milliseconds(5 + Int64(random.nextUnit() * (round < 5 ? 60 : 250)))
            acknowledged += try await Self.runAndKill(db: db, after: delay)

            // After every kill the database opens and holds every acknowledged fire.
            let store = try SQLiteStateStore(path: db)
            let restored = try store.restore()
            for f in acknowledged {
                #expect((restored.lastFired[f.job]?.unixMillis ?? .min) >= f.scheduledFor, "round \(round): lost fire \(f)")
            }
            #expect(restored.inFlight.count <= 1, "round \(round): only the run being recorded at the kill can be in flight")
            try store.close()
        }
        #expect(acknowledged.count > rounds, "the writer should get well past start-up in most rounds")

        // Across all restarts: every acknowledged run is recorded, and no scheduled instant of a
        // job ran twice.
        let runIDs = Set(try SQLiteProbe.texts(db, "SELECT run_id FROM runs"))
        let duplicates = try SQLiteProbe.int(db, "SELECT count(*) FROM (SELECT job, scheduled_for FROM runs GROUP BY job, scheduled_for HAVING count(*) > 1)")
        let quick = try SQLiteProbe.texts(db, "PRAGMA integrity_check").first
        #expect(quick == "ok")
        #expect(duplicates == 0)
        #expect(Set(acknowledged.map(\.runID)).isSubset(of: runIDs))
        // Every run left in flight by a kill was recorded interrupted by the next start.
        let unfinished = try SQLiteProbe.int(db, "SELECT count(*) FROM runs WHERE finished_at IS NULL")
        #expect(unfinished <= 1)
    }
}
