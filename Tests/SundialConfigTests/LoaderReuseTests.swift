import OrderedCollections
import SundialTesting
import Synchronization
import Testing

@testable import SundialConfig
@testable import SundialCore

/// A reload parses only the files that changed (``LoaderMemo``), and its result is always the
/// one a fresh load of the same files would give: the same set, positions and revision, the
/// same diagnostics, whatever changed — a file's bytes, another file's jobs, the machine.
@Suite("Loader reuse: a reload parses only what changed, and gives what a fresh load gives", .offPool)
struct LoaderReuseTests {
    /// The machine as the loader sees it, changed by the tests between loads.
    final class Machine: Sendable {
        let zones = Mutex<Set<String>>(["UTC", "Europe/Berlin"])
        let readable = Mutex<Set<String>>(["/etc/app.env"])
        var environment: ConfigEnvironment {
            ConfigEnvironment(
                zoneExists: { name in self.zones.withLock { $0.contains(name) } },
                fileReadable: { path in self.readable.withLock { $0.contains(path) } })
        }
    }

    let machine = Machine()
    var loader: ConfigLoader { ConfigLoader(environment: machine.environment) }

    /// The set of files, edited by the tests.
    final class Files {
        var contents: OrderedDictionary<String, String> = [:]
        var sources: [ConfigLoader.SourceFile] { contents.map { .init(path: $0.key, bytes: Array($0.value.utf8)) } }
    }

    static let a = """
        version: 1
        defaults:
          timezone: Europe/Berlin
        jobs:
          report:
            schedule: "0 6 * * *"
            needs: [fetch]
            command: [/usr/bin/report]
            notify: [{ on: failure, command: [/usr/bin/logger, report failed] }]
        """
    static let b = """
        version: 1
        jobs:
          fetch:
            every: 1h
            env_file: /etc/app.env
            command: [/usr/bin/fetch]
          prune:
            every: 1d
            needs: [{ job: fetch, on: completion }]
            command: [/usr/bin/prune]
        """
    static let c = """
        version: 1
        jobs:
          tick:
            every: 30s
            command: [/bin/true]
        """

    /// One reload as the agent and its child make it: the memo's request decoded by the child,
    /// the child's load with the files offered, its answer decoded and assembled by the agent.
    /// Returns the result and the files the child parsed.
    func reload(_ files: Files, _ memo: inout LoaderMemo) throws -> (result: ConfigLoadResult, parsed: [String]) {
        let offered = try LoaderMemo.reusableFiles(from: memo.request())
        let (result, outcomes) = loader.load(files.sources, reusing: offered)
        let answer = try LoaderWire.decodeAnswer(LoaderWire.encode(result, files: outcomes), maxBytes: 1 << 24)
        return (try memo.result(of: answer), outcomes.filter { !$0.reused }.map(\.path))
    }

    /// `result` is what a fresh load of `files` gives, to every field and position.
    func expectFresh(_ result: ConfigLoadResult, _ files: Files, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        let fresh = loader.load(files.sources)
        #expect(result.diagnostics == fresh.diagnostics, sourceLocation: sourceLocation)
        #expect(result.jobSet == fresh.jobSet, sourceLocation: sourceLocation)
        #expect(result.jobSet?.revision == fresh.jobSet?.revision, sourceLocation: sourceLocation)
        #expect(result.jobSet?.files == fresh.jobSet?.files, sourceLocation: sourceLocation)
        #expect(Array(result.jobSet?.jobs.keys ?? []) == Array(fresh.jobSet?.jobs.keys ?? []), sourceLocation: sourceLocation)
        // `==` on jobs ignores positions; the agent's events, `why` and notifications use them.
        func positions(_ r: ConfigLoadResult) -> [[SundialCore.SourceLocation?]]? {
            r.jobSet?.jobs.values.map { [$0.location] + $0.needs.map(\.location) + $0.notify.map(\.location) }
        }
        #expect(positions(result) == positions(fresh), sourceLocation: sourceLocation)
    }

    @Test func aReloadParsesOnlyWhatChangedAndMatchesAFreshLoad() throws {
        let files = Files()
        files.contents = ["jobs/a.yaml": Self.a, "jobs/b.yaml": Self.b, "jobs/c.yaml": Self.c]
        var memo = LoaderMemo()

        var (result, parsed) = try reload(files, &memo)
        #expect(parsed == ["jobs/a.yaml", "jobs/b.yaml", "jobs/c.yaml"])
        #expect(result.isValid && memo.count == 3 && memo.reusedInLastLoad == 0)
        #expect(result.jobSet?.jobs["report"]?.notify.first?.location != nil)
        expectFresh(result, files)

        // Nothing changed: nothing parsed, the same set.
        (result, parsed) = try reload(files, &memo)
        #expect(parsed.isEmpty && memo.reusedInLastLoad == 3)
        expectFresh(result, files)

        // One edit: that file alone.
        files.contents["jobs/a.yaml"] = Self.a.replacing("[/usr/bin/report]", with: "[/usr/bin/report, --daily]")
        (result, parsed) = try reload(files, &memo)
        #expect(parsed == ["jobs/a.yaml"])
        #expect(result.jobSet?.jobs["report"]?.command == .argv(["/usr/bin/report", "--daily"]))
        expectFresh(result, files)

        // A job another file needs goes: the error is in the unchanged file that needs it, as a
        // fresh load reports it; the memo stays that of the last valid load.
        files.contents["jobs/b.yaml"] = Self.b.replacing("fetch:", with: "fetch-all:")
        (result, parsed) = try reload(files, &memo)
        #expect(parsed == ["jobs/b.yaml"])
        #expect(!result.isValid && result.diagnostics.contains { $0.location.file == "jobs/a.yaml" })
        expectFresh(result, files)
        #expect(memo.count == 3)

        // Back as it was: taken from the memo again.
        files.contents["jobs/b.yaml"] = Self.b
        (result, parsed) = try reload(files, &memo)
        #expect(parsed.isEmpty)
        expectFresh(result, files)

        // A new file defines an id an unchanged file has: the duplicate is found.
        files.contents["jobs/d.yaml"] = Self.c.replacing("tick:", with: "report:")
        (result, parsed) = try reload(files, &memo)
        #expect(parsed == ["jobs/d.yaml"])
        #expect(result.diagnostics.contains { $0.message.contains("`report` is already defined at jobs/a.yaml") })
        expectFresh(result, files)

        // A file removed, and one of its ids now defined by a new one: no stale job stays.
        files.contents["jobs/d.yaml"] = nil
        files.contents["jobs/c.yaml"] = nil
        files.contents["jobs/e.yaml"] = Self.c
        (result, parsed) = try reload(files, &memo)
        #expect(parsed == ["jobs/e.yaml"])
        #expect(result.jobSet?.jobs["tick"]?.location?.file == "jobs/e.yaml")
        expectFresh(result, files)

        // A cycle closed by an edit of one file through the `needs` of an unchanged one.
        files.contents["jobs/b.yaml"] = Self.b.replacing("every: 1h", with: "every: 1h\n    needs: [report]")
        (result, parsed) = try reload(files, &memo)
        #expect(parsed == ["jobs/b.yaml"])
        #expect(result.diagnostics.contains { $0.message.contains("dependency cycle") })
        expectFresh(result, files)
    }

    /// The machine changes, the files do not: each file whose load asked about what changed is
    /// parsed again and gets its error, as a fresh load would; the others are still reused.
    @Test func aChangeOfTheMachineIsSeenThoughNoFileChanged() throws {
        let files = Files()
        files.contents = ["jobs/a.yaml": Self.a, "jobs/b.yaml": Self.b, "jobs/c.yaml": Self.c]
        var memo = LoaderMemo()
        _ = try reload(files, &memo)

        machine.readable.withLock { $0.remove("/etc/app.env") }
        var (result, parsed) = try reload(files, &memo)
        #expect(parsed == ["jobs/b.yaml"])
        #expect(result.diagnostics.contains { $0.message.contains("/etc/app.env") })
        expectFresh(result, files)

        machine.readable.withLock { _ = $0.insert("/etc/app.env") }
        machine.zones.withLock { _ = $0.remove("Europe/Berlin") }
        (result, parsed) = try reload(files, &memo)
        #expect(parsed == ["jobs/a.yaml", "jobs/b.yaml"])
        #expect(result.diagnostics.contains { $0.message.contains("Europe/Berlin") })
        expectFresh(result, files)

        machine.zones.withLock { _ = $0.insert("Europe/Berlin") }
        (result, parsed) = try reload(files, &memo)
        #expect(result.isValid)
        expectFresh(result, files)
        #expect(memo.count == 3)
    }

    /// Only files loaded without any diagnostic are remembered: a file with a warning is parsed
    /// every time, so its warning is reported every time.
    @Test func aFileWithAWarningIsNotRemembered() throws {
        let files = Files()
        files.contents = ["jobs/a.yaml": Self.c, "jobs/w.yaml": "version: 1\njobs:\n  w:\n    every: 1h\n    env_file: /etc/missing.env\n    shell: echo\n"]
        var memo = LoaderMemo()
        var (result, _) = try reload(files, &memo)
        try #require(result.isValid && !result.diagnostics.isEmpty, "the fixture should load with a warning: \(result.diagnostics)")
        var parsed: [String]
        (result, parsed) = try reload(files, &memo)
        #expect(parsed == ["jobs/w.yaml"])
        #expect(memo.count == 1)
        expectFresh(result, files)
    }

    /// The child's answer is untrusted: a file marked unchanged that the agent did not offer,
    /// or offered with another digest, is a bad answer, and the memo stays as it was.
    @Test func aReuseMarkTheAgentDidNotOfferIsABadAnswer() throws {
        let files = Files()
        files.contents = ["jobs/c.yaml": Self.c]
        var memo = LoaderMemo()
        _ = try reload(files, &memo)
        for (path, digest) in [("jobs/x.yaml", FileDigest(of: Array(Self.c.utf8))), ("jobs/c.yaml", FileDigest(size: 1, hash: 2))] {
            var answer = LoaderAnswer()
            answer.revision = "r"
            answer.files = [LoaderAnswer.File(path: path, digest: digest, reused: true)]
            var copy = memo
            #expect(throws: LoaderWire.DecodeError.self) { try copy.result(of: answer) }
            #expect(copy.count == 1)
        }
        var twice = LoaderAnswer()
        twice.revision = "r"
        let job = JobSpec(id: "tick", command: .argv(["/bin/true"]))
        twice.files = [
            LoaderAnswer.File(path: "jobs/c.yaml", digest: FileDigest(of: Array(Self.c.utf8)), reused: true),
            LoaderAnswer.File(path: "jobs/d.yaml", digest: FileDigest(size: 0, hash: 0), jobs: [job]),
        ]
        var copy = memo
        #expect(throws: LoaderWire.DecodeError.self) { try copy.result(of: twice) }
    }

    /// A hostile answer that marks one remembered file reused a million times is refused like a
    /// job twice, without the agent first reserving room for every claimed copy (10,000 jobs a
    /// mark: 10¹⁰ entries, an allocation that traps).
    @Test func aMillionReuseMarksAreRefusedWithoutReservingForThem() throws {
        let files = Files()
        var text = "version: 1\njobs:\n"
        for i in 0..<10_000 { text += "  j\(i): { every: 1h, command: [/bin/true] }\n" }
        files.contents = ["jobs/big.yaml": text]
        var memo = LoaderMemo()
        _ = try reload(files, &memo)
        #expect(memo.count == 1)
        var answer = LoaderAnswer()
        answer.revision = "r"
        let mark = LoaderAnswer.File(path: "jobs/big.yaml", digest: FileDigest(of: Array(text.utf8)), reused: true)
        answer.files = Array(repeating: mark, count: 1_000_000)
        #expect(throws: LoaderWire.DecodeError.self) { try memo.result(of: answer) }
        #expect(memo.count == 1)
    }

    /// A request that is not exactly right is refused (the child then parses everything), and a
    /// request round-trips every file, question and outline.
    @Test func theRequestRoundTripsAndBrokenRequestsAreRefused() throws {
        let files = Files()
        files.contents = ["jobs/a.yaml": Self.a, "jobs/b.yaml": Self.b]
        var memo = LoaderMemo()
        _ = try reload(files, &memo)
        let request = memo.request()
        let offered = try LoaderMemo.reusableFiles(from: request)
        #expect(Set(offered.keys) == ["jobs/a.yaml", "jobs/b.yaml"])
        let b = try #require(offered["jobs/b.yaml"])
        #expect(b.digest == FileDigest(of: Array(Self.b.utf8)))
        #expect(b.queries == [EnvironmentQuery(.fileReadable, "/etc/app.env", answer: true)])
        #expect(b.outline.map(\.id) == ["fetch", "prune"])
        #expect(b.outline[1].needs == [Need(job: "fetch", on: .completion)])
        #expect(b.outline[1].needs.first?.location != nil && b.outline[0].location?.line == 3)
        #expect(try LoaderMemo.reusableFiles(from: []).isEmpty)
        // Every prefix of the body, under a header that matches it, is refused (the decoder
        // itself, not the header's length check); so are bytes after it. Every byte changed
        // is a request or an error, never a trap.
        let body = Array(request[(request.firstIndex(of: 0x0A)! + 1)...])
        func framed(_ body: [UInt8]) -> [UInt8] { Array("SUNDIAL-REUSE 1 \(body.count)\n".utf8) + body }
        #expect(try LoaderMemo.reusableFiles(from: framed(body)) == offered)
        for n in 0..<body.count {
            #expect(throws: LoaderWire.DecodeError.self) { try LoaderMemo.reusableFiles(from: framed(Array(body[..<n]))) }
        }
        #expect(throws: LoaderWire.DecodeError.self) { try LoaderMemo.reusableFiles(from: framed(body + [0])) }
        #expect(throws: LoaderWire.DecodeError.self) { try LoaderMemo.reusableFiles(from: request + [0]) }
        for i in body.indices {
            for replacement: UInt8 in [0, 1, 0x7F, 0x80, 0xFF, body[i] ^ 0x01] {
                var bad = body
                bad[i] = replacement
                _ = try? LoaderMemo.reusableFiles(from: framed(bad))
            }
        }
    }

    /// The string table lets a byte stand for a string of any length; the reader charges
    /// every string it returns, references included, against a budget, so a small answer
    /// cannot make the agent do unbounded work (a long URL parsed once per reference).
    @Test func referencesCannotMultiplyTheWorkPastTheBudget() throws {
        let url = "https://127.0.0.1/" + String(repeating: "a", count: 10_000)
        var w = WireWriter()
        for _ in 0..<200 { w.string(url) }
        var r = WireReader(w.bytes, stringBudget: 1 << 20)
        var read = 0
        do {
            while true {
                _ = try r.string("notify.webhook.url")
                read += 1
            }
        } catch {
            #expect(error.description.contains("more string bytes than the answer may carry"))
        }
        #expect(read == (1 << 20) / url.utf8.count)
        #expect(w.bytes.count < 11_000, "the 200 references cost \(w.bytes.count) bytes")
        // An answer carries the limit it is decoded with as its budget.
        var set: OrderedDictionary<JobID, JobSpec> = [:]
        for i in 0..<200 {
            var j = JobSpec(id: "j\(i)", command: .argv([url]))
            j.location = SourceLocation(file: "a.yaml", line: i + 1, column: 1)
            set[j.id] = j
        }
        let answer = LoaderWire.encode(ConfigLoadResult(jobSet: JobSet(jobs: set, files: ["a.yaml"], revision: "r"), diagnostics: []))
        #expect(answer.count < 1 << 20)
        #expect((try? LoaderWire.decode(answer, maxBytes: 4 << 20))?.jobSet?.jobs.count == 200)
        #expect(throws: LoaderWire.DecodeError.self) { try LoaderWire.decode(answer, maxBytes: 1 << 20) }
    }
}
