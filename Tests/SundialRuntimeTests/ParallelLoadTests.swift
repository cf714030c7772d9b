import Foundation
import OrderedCollections
import SundialConfig
import SundialCore
import SundialTesting
import Synchronization
import Testing

@testable import SundialRuntime

/// Job files are loaded on several threads at once (`ConfigurationLoading` through
/// `ParallelFor`); the result must be exactly the one-by-one result, whatever order the files
/// finish in: the same jobs in the same order, the same revision, the same diagnostics, and
/// "already defined" pointing at the first file in file order.
@Suite(.offPool) struct ParallelLoadTests {
    /// Twenty files; file 7 and file 13 both define `dup`, file 11 has a schema error and file
    /// 17 a bad cron expression; the larger early files make later ones finish first.
    static func writeSet(in dir: String) throws {
        for f in 0..<20 {
            var text = "version: 1\njobs:\n"
            let count = f < 4 ? 400 : 5
            for j in 0..<count { text += "  f\(f)-j\(j):\n    schedule: \"*/5 * * * *\"\n    command: [/bin/true]\n" }
            if f == 7 || f == 13 { text += "  dup:\n    every: 1h\n    command: [/bin/echo, \"\(f)\"]\n" }
            if f == 11 { text += "  bad-key:\n    every: 1h\n    command: [/bin/true]\n    colour: blue\n" }
            if f == 17 { text += "  bad-cron:\n    schedule: \"61 * * * *\"\n    command: [/bin/true]\n" }
            try text.write(toFile: dir + String(format: "/jobs-%02d.yaml", f), atomically: true, encoding: .utf8)
        }
    }

    @Test func theParallelLoadIsTheOneByOneLoad() throws {
        let dir = TempDir("parload")
        defer { dir.remove() }
        try Self.writeSet(in: dir.path)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted().map {
            ConfigLoader.SourceFile(path: dir.path + "/" + $0, bytes: Array(try Data(contentsOf: URL(fileURLWithPath: dir.path + "/" + $0))))
        }
        let loader = ConfigLoader(environment: .system)
        let oneByOne = loader.load(files)
        // Reversed order of execution, on four threads: a scheduler that mixes everything up.
        let mixed = loader.load(files) { count, body in
            ParallelFor.run(count, threads: 4) { i in body(count - 1 - i) }
        }
        let real = ConfigurationLoading.load(paths: [dir.path])
        for result in [mixed, real] {
            #expect(result.diagnostics == oneByOne.diagnostics)
            #expect(result.jobSet?.revision == oneByOne.jobSet?.revision)
        }
        #expect(!oneByOne.diagnostics.isEmpty)
        let duplicate = try #require(oneByOne.diagnostics.first { $0.message.contains("`dup` is already defined") })
        #expect(duplicate.location.file.hasSuffix("jobs-13.yaml") && duplicate.message.contains("jobs-07.yaml"), "\(duplicate)")

        // And a valid set: the same jobs in the same order.
        let valid = files.filter { !$0.path.hasSuffix("jobs-11.yaml") && !$0.path.hasSuffix("jobs-13.yaml") && !$0.path.hasSuffix("jobs-17.yaml") }
        let a = try #require(loader.load(valid).jobSet)
        let b = try #require(loader.load(valid) { count, body in ParallelFor.run(count, threads: 4) { i in body(count - 1 - i) } }.jobSet)
        #expect(Array(a.jobs.keys) == Array(b.jobs.keys))
        #expect(a.revision == b.revision)
    }

    @Test func everyIndexRunsOnceOnSeveralThreads() {
        let seen = Mutex<[Int: Int]>([:])
        let names = Mutex<Set<String>>([])
        ParallelFor.run(200, threads: 3) { i in
            seen.withLock { $0[i, default: 0] += 1 }
            names.withLock { _ = $0.insert(EventLoopTests.currentThreadName()) }
            usleep(200)  // long enough for the other threads to take a share
        }
        #expect(seen.withLock { $0 }.count == 200 && seen.withLock { $0 }.values.allSatisfy { $0 == 1 })
        #expect(names.withLock { $0 }.contains("sundial-parse"), "\(names.withLock { $0 })")
        // One thread, or fewer items than threads: no thread is started.
        let single = Mutex<Set<String>>([])
        ParallelFor.run(1, threads: 4) { _ in single.withLock { _ = $0.insert(EventLoopTests.currentThreadName()) } }
        #expect(!single.withLock { $0 }.contains("sundial-parse"))
    }
}
