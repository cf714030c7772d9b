import Dispatch
import OrderedCollections
import SundialCore
import SundialTesting
import Synchronization
import Testing

@testable import SundialConfig

/// Semantic checks and decoding (stages 3 and 4 of the loader).
@Suite("Config loader: decoding and checks across files", .offPool)
struct ConfigLoaderTests {
    let loader = ConfigLoader(
        environment: ConfigEnvironment(
            zoneExists: { ["UTC", "Europe/Berlin", "America/New_York"].contains($0) },
            fileReadable: { !$0.contains("missing") }))

    func load(_ files: [(String, String)]) -> ConfigLoadResult {
        loader.load(files.map { ConfigLoader.SourceFile(path: $0.0, bytes: Array($0.1.utf8)) })
    }

    func messages(_ r: ConfigLoadResult) -> [String] { r.diagnostics.map(\.description) }

    /// A file's `defaults` is decoded once for all its jobs (issue 15): each job still gets the
    /// defaults' policy with its own keys over it, whatever the job before it changed, and a
    /// problem in `defaults` is reported once, at its place.
    @Test func eachJobGetsTheDefaultsRetryPolicyUnderItsOwnKeys() throws {
        let r = load([
            (
                "a.yaml",
                """
                version: 1
                defaults:
                  retry: { attempts: 3, delay: 5s }
                jobs:
                  a: { command: [x], retry: { delay: 1s } }
                  b: { command: [x] }
                  c: { command: [x], retry: { attempts: 7, on: [timeout] } }
                  d: { command: [x] }
                """
            )
        ])
        #expect(r.diagnostics.isEmpty, "\(messages(r))")
        let jobs = try #require(r.jobSet?.jobs)
        #expect(jobs["a"]?.retry.attempts == 3 && jobs["a"]?.retry.delayMs == 1_000)
        #expect(jobs["b"]?.retry.attempts == 3 && jobs["b"]?.retry.delayMs == 5_000)
        #expect(jobs["c"]?.retry.attempts == 7 && jobs["c"]?.retry.delayMs == 5_000 && jobs["c"]?.retry.on == [.timeout])
        #expect(jobs["d"]?.retry.attempts == 3 && jobs["d"]?.retry.delayMs == 5_000 && jobs["d"]?.retry.on == jobs["b"]?.retry.on)

        let bad = load([
            (
                "b.yaml",
                """
                version: 1
                defaults:
                  retry: { attempts: 3, delay: 99999999d }
                jobs:
                  a: { command: [x] }
                  b: { command: [x], retry: { attempts: 2 } }
                """
            )
        ])
        #expect(messages(bad).count == 1, "\(messages(bad))")
        #expect(bad.diagnostics.first?.location.line == 3)
        #expect(messages(bad).first?.contains("too large") == true, "\(messages(bad))")
    }

    @Test func decodesAFullJobWithDefaults() throws {
        let r = load([
            (
                "a.yaml",
                """
                version: 1
                defaults:
                  timezone: Europe/Berlin
                  timeout: 30m
                  retry: { attempts: 3, backoff: linear, delay: 10s }
                  env: { A: "1", B: "2" }
                jobs:
                  dump:
                    description: Dump it
                    schedule: "30 2 * * *"
                    command: [pg_dump, app]
                    env: { B: "3", PORT: 8080 }
                    retry: { max_delay: 5m }
                    catchup: latest
                  up:
                    needs: [dump, { job: dump, on: completion }]
                    shell: echo up
                    timeout: 1h
                    at: ["2026-12-24T18:00:00+01:00", "2026-12-24T16:00:00Z"]
                """
            )
        ])
        #expect(r.diagnostics.isEmpty, "\(messages(r))")
        let set = try #require(r.jobSet)
        #expect(set.jobs.keys.elements == ["dump", "up"])
        let dump = try #require(set.jobs["dump"])
        #expect(dump.schedule == .cron("30 2 * * *"))
        #expect(dump.timezone == "Europe/Berlin")
        #expect(dump.timeoutMs == 1_800_000)
        #expect(dump.command == .argv(["pg_dump", "app"]))
        #expect(dump.env == ["A": "1", "B": "3", "PORT": "8080"])
        #expect(dump.retry.attempts == 3)
        #expect(dump.retry.backoff == .linear)
        #expect(dump.retry.maxDelayMs == 300_000)
        #expect(dump.catchup == .latest)
        #expect(dump.location == SourceLocation(file: "a.yaml", line: 8, column: 3))
        let up = try #require(set.jobs["up"])
        #expect(up.timeoutMs == 3_600_000)
        #expect(up.needs.map(\.on) == [.success, .completion])
        #expect(up.command == .shell("echo up"))
        #expect(up.schedule == .at([Instant(unixMillis: 1_798_128_000_000), Instant(unixMillis: 1_798_131_600_000)]))
        #expect(!set.revision.isEmpty)
    }

    @Test func revisionChangesWithContent() throws {
        let a = try #require(load([("a.yaml", "version: 1\njobs:\n  a: { shell: x }\n")]).jobSet)
        let b = try #require(load([("a.yaml", "version: 1\njobs:\n  a: { shell: y }\n")]).jobSet)
        let a2 = try #require(load([("a.yaml", "version: 1\njobs:\n  a: { shell: x }\n")]).jobSet)
        #expect(a.revision != b.revision)
        #expect(a.revision == a2.revision)
    }

    @Test func duplicateIdsAcrossFilesReportBothPlaces() {
        let r = load([
            ("a.yaml", "version: 1\njobs:\n  backup: { shell: x }\n"),
            ("b.yaml", "version: 1\njobs:\n  other: { shell: y }\n  backup: { shell: z }\n"),
        ])
        #expect(r.jobSet == nil)
        #expect(messages(r) == ["b.yaml:4:3: error: job `backup` is already defined at a.yaml:3:3; job ids are global across all files; rename one of them"])
    }

    @Test func unknownNeedsWithSuggestion() {
        let r = load([("a.yaml", "version: 1\njobs:\n  upload: { shell: x }\n  report:\n    needs: [uplaod]\n    shell: y\n")])
        #expect(messages(r) == ["a.yaml:5:13: error: `needs` refers to unknown job `uplaod`; did you mean `upload`?"])
    }

    @Test func cyclesPrintTheirPath() {
        let r = load([
            (
                "a.yaml",
                """
                version: 1
                jobs:
                  a: { needs: [c], shell: x }
                  b: { needs: [a], shell: x }
                  c: { needs: [b], shell: x }
                  d: { needs: [d], shell: x }
                """
            )
        ])
        #expect(r.jobSet == nil)
        let m = messages(r)
        #expect(m.contains { $0.contains("dependency cycle: `a` → `c` → `b` → `a`") })
        #expect(m.contains("a.yaml:6:16: error: job `d` needs itself"))
        #expect(m.count == 2)
    }

    @Test func longDependencyChainDoesNotOverflow() {
        var text = "version: 1\njobs:\n  j0: { shell: x }\n"
        for i in 1..<5000 { text += "  j\(i): { needs: [j\(i - 1)], shell: x }\n" }
        let r = load([("chain.yaml", text)])
        #expect(r.diagnostics.isEmpty)
        #expect(r.jobSet?.jobs.count == 5000)
    }

    @Test func badValuesArePositioned() {
        let r = load([
            (
                "a.yaml",
                """
                version: 1
                jobs:
                  a:
                    every: 0s
                    shell: x
                  b:
                    schedule: "0 0 * * *"
                    timezone: Mars/Olympus
                    shell: x
                  c:
                    at: "2026-02-30T10:00:00Z"
                    shell: x
                  d:
                    every: 99999999999d
                    shell: x
                  e:
                    every: 5m
                    env_file: /etc/missing.env
                    shell: x
                """
            )
        ])
        let m = messages(r)
        #expect(m.contains("a.yaml:4:12: error: `every` must be at least 1ms"))
        #expect(m.contains { $0.hasPrefix("a.yaml:8:15: error: unknown time zone `Mars/Olympus`") })
        #expect(m.contains { $0.hasPrefix("a.yaml:11:9: error: invalid time `2026-02-30T10:00:00Z`: day 30 does not exist in 2026-02") })
        #expect(m.contains { $0.hasPrefix("a.yaml:14:12: error: duration '99999999999d' is too large") })
        #expect(m.contains { $0.hasPrefix("a.yaml:18:15: warning: env_file `/etc/missing.env` cannot be read") })
        #expect(r.jobSet == nil)
    }

    /// A time whose offset carries it past year 9999 (or before year 1) in UTC was accepted, and
    /// then `status` and `why` failed for every job on its `next` (`10000-01-01T23:58:59.000Z`).
    @Test func atTimesOutsideTheFourDigitYearsInUTCArePositionedErrors() {
        let r = load([
            (
                "a.yaml",
                """
                version: 1
                jobs:
                  a:
                    at: [2026-12-24T18:00:00Z, 9999-12-31T23:59:59-23:59]
                    shell: x
                  b:
                    at: 0001-01-01T00:30:00+01:00
                    shell: x
                  c:
                    at: [9999-12-31T23:59:59Z, 0001-01-01T00:00:00Z, 9999-12-31T23:59:59+23:59]
                    shell: x
                """
            )
        ])
        let hint = "write a time between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z"
        #expect(
            messages(r) == [
                "a.yaml:4:32: error: time `9999-12-31T23:59:59-23:59` is outside the years 0001-9999 in UTC; \(hint)",
                "a.yaml:7:9: error: time `0001-01-01T00:30:00+01:00` is outside the years 0001-9999 in UTC; \(hint)",
            ])
        #expect(r.jobSet == nil)
    }

    @Test func unreadableEnvFileIsOnlyAWarning() throws {
        let r = load([("a.yaml", "version: 1\njobs:\n  a: { every: 5m, env_file: /etc/missing.env, shell: x }\n")])
        #expect(r.diagnostics.map(\.severity) == [.warning])
        #expect(r.isValid)
        #expect(try #require(r.jobSet).jobs["a"]?.envFile == "/etc/missing.env")
    }

    @Test func reportsEveryProblemNotTheFirst() {
        let r = load([
            ("a.yaml", "version: 1\njobs:\n  a: { every: 0s, shell: x }\n  b: { every: 0s, shell: x }\n"),
            ("b.yaml", "version: 1\njobs:\n  c: { every: 0s, shell: x }\n"),
        ])
        #expect(r.diagnostics.count == 3)
    }

    /// A file over the per-file job limit is rejected on the count alone: none of its jobs is
    /// checked (each one here is broken, and none is reported), so a 4 MiB file of 80,000
    /// one-line jobs costs a count instead of seconds of checks on every reload.
    @Test func aFileOverTheJobLimitIsOneErrorAndNoJobIsChecked() {
        func file(_ count: Int) -> String {
            "version: 1\njobs:\n" + (0..<count).map { "  j\($0): {every: nope, command: [x]}\n" }.joined()
        }
        // The limit is the schema's.
        #expect(loader.maxJobsPerFile == 10_000)
        let over = load([("a.yaml", file(10_001))])
        #expect(over.jobSet == nil)
        #expect(over.diagnostics.count == 1)
        #expect(
            over.diagnostics.first?.description
                == "a.yaml:3:3: error: `jobs`: a file may have at most 10000 jobs and this one has 10001 (none of them was checked); split the jobs across several files"
        )
        // At the limit (lowered, to keep the test quick), every job is checked and each bad
        // one reported; one more, and none is.
        var small = loader
        small.maxJobsPerFile = 3
        let at = small.load([.init(path: "a.yaml", bytes: Array(file(3).utf8))])
        #expect(at.diagnostics.count == 3)
        #expect(at.diagnostics.allSatisfy { $0.message.contains("nope") }, "\(at.diagnostics)")
        let oneMore = small.load([.init(path: "a.yaml", bytes: Array(file(4).utf8))])
        #expect(oneMore.diagnostics.map(\.message) == ["`jobs`: a file may have at most 3 jobs and this one has 4 (none of them was checked)"])
        // Its ids still count: another file that needs one of them is not told it is unknown,
        // and one that redefines one is told where the first is.
        let beside = small.load([
            .init(path: "a.yaml", bytes: Array(file(4).utf8)),
            .init(path: "b.yaml", bytes: Array("version: 1\njobs:\n  b: {every: 1h, command: [x], needs: [j2]}\n  j3: {every: 1h, command: [x]}\n".utf8)),
        ])
        #expect(
            beside.diagnostics.map(\.description) == [
                "a.yaml:3:3: error: `jobs`: a file may have at most 3 jobs and this one has 4 (none of them was checked); split the jobs across several files",
                "b.yaml:4:3: error: job `j3` is already defined at a.yaml:6:3; job ids are global across all files; rename one of them",
            ])
    }
}

/// A NUL in what reaches `execve` (found by the `loader` fuzz target): refused with a position.
@Suite("Config loader: NUL characters in commands and environments", .offPool)
struct NULCharacterTests {
    let loader = ConfigLoader(environment: ConfigEnvironment(zoneExists: { _ in true }, fileReadable: { _ in true }))

    @Test func aNULInACommandOrTheEnvironmentIsAPositionedError() {
        let r = loader.load([
            .init(
                path: "a.yaml",
                bytes: Array(
                    """
                    version: 1
                    jobs:
                      a: { every: 1h, command: [ok, "cut\\0short"] }
                      b: { every: 1h, shell: "echo \\0" }
                      c: { every: 1h, command: [x], env: { K: "v\\0w" } }
                      d: { every: 1h, command: [x], workdir: "/tmp\\0/x" }
                    """.utf8))
        ])
        #expect(r.jobSet == nil)
        let texts = r.diagnostics.map(\.description)
        #expect(texts.contains { $0.hasPrefix("a.yaml:3:33: error: `command` contains a NUL character") }, "\(texts)")
        #expect(texts.contains { $0.hasPrefix("a.yaml:4:26: error: `shell` contains a NUL character") }, "\(texts)")
        #expect(texts.contains { $0.hasPrefix("a.yaml:5:43: error: `env` contains a NUL character") }, "\(texts)")
        #expect(texts.contains { $0.hasPrefix("a.yaml:6:42: error: `workdir` contains a NUL character") }, "\(texts)")
    }
}

/// The text of all files parsed in one load, aliases expanded, is bounded below what the
/// agent accepts from its loader child: `validate` accepted a set whose answer the agent then
/// refused ("the configuration loader sent an invalid answer … please report this").
@Suite("Config loader: text of the whole set")
struct ConfigLoaderExpandedTextTests {
    @Test func theWholeSetsExpandedTextIsBounded() {
        var loader = ConfigLoader(environment: ConfigEnvironment(zoneExists: { _ in true }, fileReadable: { _ in true }))
        loader.maxExpandedBytes = 3_000_000
        func file(_ i: Int, bytes: Int) -> ConfigLoader.SourceFile {
            let text = "version: 1\njobs:\n  j\(i):\n    description: \(String(repeating: "d", count: bytes))\n    command: [x]\n"
            return .init(path: "f\(i).yaml", bytes: Array(text.utf8))
        }
        #expect(loader.load([file(0, bytes: 1_000_000), file(1, bytes: 1_000_000)]).isValid)
        let over = loader.load([file(0, bytes: 1_000_000), file(1, bytes: 1_500_000), file(2, bytes: 1_000_000)])
        #expect(!over.isValid)
        let d = over.diagnostics.first { $0.message.contains("MiB of text in all") }
        #expect(d?.location.file == "f2.yaml", "the file whose running total crosses is named")
    }

    /// A file that expands (through aliases) to `copies` times a 100,000-byte scalar.
    static func aliases(_ i: Int, copies: Int) -> ConfigLoader.SourceFile {
        var text = "version: 1\njobs:\n  j\(i):\n    command: [x]\n    description: &d \(String(repeating: "d", count: 100_000))\n    env:\n"
        for k in 1..<copies { text += "      V\(k): *d\n" }
        return .init(path: "f\(i).yaml", bytes: Array(text.utf8))
    }

    /// The total is a running budget: the load stops at the file that crosses it, at the alias
    /// that does, and parses no file after it. It was summed once every file had been parsed:
    /// ten thousand files expanding to just under a document's 16 MiB were all parsed first.
    @Test func theLoadStopsAtTheFileThatCrossesTheTotal() {
        var loader = ConfigLoader(environment: ConfigEnvironment(zoneExists: { _ in true }, fileReadable: { _ in true }))
        loader.maxExpandedBytes = 3_500_000
        let parsed = Mutex<[String]>([])
        loader.parseObserver = { path in parsed.withLock { $0.append(path) } }
        // Each file about 1 MB: f0 1, f1 2, f2 3, f3 4 > 3.5.
        let files = (0..<20).map { Self.aliases($0, copies: 10) }
        let r = loader.load(files)
        #expect(!r.isValid)
        #expect(parsed.withLock { $0 } == ["f0.yaml", "f1.yaml", "f2.yaml", "f3.yaml"], "no file after the crossing one is parsed")
        let crossed = r.diagnostics.filter { $0.message.contains("of text in all") }
        #expect(crossed.count == 1, "\(r.diagnostics)")
        // Each file holds 1,000,054 bytes, so f3 may hold 499,838: its fourth `*d` (line 10) crosses.
        #expect(crossed.first?.description.hasPrefix("f3.yaml:10:11: error: the job files hold more than 3 MiB") == true, "\(crossed)")
        #expect(crossed.first?.message.contains("the files after it were not checked") == true)
        #expect(r.diagnostics.allSatisfy { $0.location.file == "f3.yaml" }, "\(r.diagnostics)")

        // Files taken out of order (a later file finished, or stopped, before an earlier one was
        // counted): the same answer, the crossing file read again with what is left.
        func inOrder(_ order: [Int]) -> ConfigLoader.EachFile { { count, body in for i in order where i < count { body(i) } } }
        parsed.withLock { $0 = [] }
        #expect(loader.load(files, eachFile: inOrder([0, 1, 2, 4, 3] + Array(5..<20))).diagnostics == r.diagnostics)
        #expect(parsed.withLock { $0 } == ["f0.yaml", "f1.yaml", "f2.yaml", "f4.yaml", "f3.yaml"], "f4 stopped, so no later file is read")
        #expect(loader.load(files, eachFile: inOrder(Array((0..<20).reversed()))).diagnostics == r.diagnostics)

        // Parsed on several threads, the answer is the same, whatever their timing.
        let threads: ConfigLoader.EachFile = { count, body in
            let next = Mutex(0)
            DispatchQueue.concurrentPerform(iterations: 4) { _ in
                while true {
                    let i = next.withLock { n in
                        defer { n += 1 }
                        return n
                    }
                    guard i < count else { return }
                    body(i)
                }
            }
        }
        for _ in 0..<5 {
            #expect(loader.load(files, eachFile: threads).diagnostics == r.diagnostics)
        }
    }
}

/// YAML numbers JSON lacks: `.nan` passed every bound (it compares with nothing) and an
/// infinity (`1e400`) was reported as "found null".
@Suite("Config loader: non-finite numbers")
struct ConfigLoaderNonFiniteTests {
    static func errors(_ jitter: String) -> [String] {
        let yaml = "version: 1\njobs:\n  a:\n    every: 1h\n    command: [x]\n    retry: { attempts: 2, delay: 1s, jitter: \(jitter) }\n"
        return ConfigLoader().load([.init(path: "a.yaml", bytes: Array(yaml.utf8))]).diagnostics.map(\.message)
    }

    @Test func nanIsOutsideEveryBound() {
        #expect(Self.errors(".nan").contains { $0.contains("(found .nan)") })
        #expect(Self.errors("0.5").isEmpty)
    }

    @Test func infinityIsShownAsYAMLWritesIt() {
        #expect(Self.errors("1e400") == ["`jitter`: must be at most 1 (found .inf)"])
        #expect(Self.errors("-.inf") == ["`jitter`: must be at least 0 (found -.inf)"])
    }
}
