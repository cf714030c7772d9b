import OrderedCollections
import SundialTesting
import Testing

@testable import SundialConfig
@testable import SundialCore

/// The loader child's answer (``LoaderWire``): every job field survives the trip exactly, and
/// an answer that is not exactly right is an error, never a trap or a partial set.
@Suite("Loader wire format: round trip and hostile answers", .offPool)
struct LoaderWireTests {
    let loader = ConfigLoader(environment: ConfigEnvironment(zoneExists: { _ in true }, fileReadable: { _ in true }))

    /// A set that uses every field of `JobSpec` with a non-default value.
    static let everyField = """
        version: 1
        defaults:
          timezone: Europe/Berlin
          env: { A: "1", B: "2" }
          notify: [{ on: missed, command: [/bin/true] }]
        jobs:
          dump:
            description: "Dump \\"it\\" – ünïcode\\n second line"
            schedule: "30 2 * * 1-5"
            dst: { gap: skip, overlap: both }
            jitter: 90s
            command: [pg_dump, "--file=/tmp/a b", app]
            workdir: /srv
            env: { B: "3", PORT: 8080 }
            env_file: /etc/secret.env
            user: nobody
            group: nogroup
            umask: "0027"
            timeout: 30m
            kill_grace: 3s
            retry: { attempts: 4, backoff: linear, delay: 10s, max_delay: 5m, jitter: 0.3, on: [timeout, signal], exit_codes: [75, 3] }
            success_exit_codes: [0, 1]
            concurrency: queue
            on_agent_restart: kill
            lock: fleet
            on_lost: rerun
            fleet_unavailable: run-locally
            lease: 45s
            catchup: all
            catchup_window: 2h
            enabled: false
            output: { max_line_bytes: 1000, max_bytes: 20000, keep_bytes: 4096 }
            secrets: [PGPASSWORD]
            limits: { memory: 256M, cpu: 50%, tasks: 64 }
            notify:
              - { on: [failure, recovered], command: [/usr/bin/logger, -t, "sundial ü"] }
              - on: timeout
                webhook: { url: "https://127.0.0.1:9/hook?x=1", headers: { Authorization: "Bearer t", X-B: "" }, secret_env: HOOK_KEY, ca_file: /etc/ssl/hooks-ca.pem, timeout: 3s, retries: 2 }
          up:
            needs: [dump, { job: dump, on: completion }]
            shell: echo up
            at: ["2026-12-24T18:00:00+01:00", "2026-12-24T16:00:00Z"]
          tick:
            every: 90s
            offset: 15s
            command: [/bin/true]
          boot:
            schedule: "@reboot"
            reboot: every-start
            command: [/bin/true]
          manual:
            command: [/bin/true]
        """

    func load(_ text: String, path: String = "jobs/a.yaml") -> ConfigLoadResult {
        loader.load([.init(path: path, bytes: Array(text.utf8))])
    }

    @Test func everyFieldAndEveryPositionRoundTrips() throws {
        let original = load(Self.everyField)
        #expect(original.diagnostics.filter { $0.severity == .error }.isEmpty, "\(original.diagnostics)")
        let set = try #require(original.jobSet)
        #expect(set.jobs.count == 5)
        let decoded = try LoaderWire.decode(LoaderWire.encode(original), maxBytes: 1 << 20)
        let back = try #require(decoded.jobSet)
        #expect(back == set)
        #expect(back.revision == set.revision && back.files == set.files)
        #expect(Array(back.jobs.keys) == Array(set.jobs.keys))
        for (id, job) in set.jobs {
            let other = try #require(back.jobs[id])
            // `==` ignores positions; the agent's events and `why` need them too.
            #expect(other.location == job.location, "\(id)")
            #expect(other.needs.map(\.location) == job.needs.map(\.location), "\(id)")
            #expect(other.retry.jitter.bitPattern == job.retry.jitter.bitPattern, "\(id)")
            #expect(other.notify.map(\.location) == job.notify.map(\.location), "\(id)")
        }
        let hook = WebhookSpec(
            url: "https://127.0.0.1:9/hook?x=1", headers: ["Authorization": "Bearer t", "X-B": ""],
            secretEnv: "HOOK_KEY", caFile: "/etc/ssl/hooks-ca.pem", timeoutMs: 3000, retries: 2)
        #expect(
            back.jobs["dump"]?.notify == [
                NotifySpec(on: [.failure, .recovered], target: .command(["/usr/bin/logger", "-t", "sundial ü"])),
                NotifySpec(on: [.timeout], target: .webhook(hook)),
            ])
        #expect(back.jobs["up"]?.notify == [NotifySpec(on: [.missed], target: .command(["/bin/true"]))])
        #expect(back.jobs["dump"]?.notify.allSatisfy { $0.location != nil } == true)
        #expect(back.jobs["dump"]?.enabled == false && back.jobs["dump"]?.umask == 0o027)
        #expect(back.jobs["dump"]?.limits == ResourceLimits(memoryBytes: 256 << 20, cpuPercent: 50, tasks: 64))
        #expect(set.jobs["dump"]?.onAgentRestart == .kill && back.jobs["dump"]?.onAgentRestart == .kill)
        #expect(back.jobs["up"]?.onAgentRestart == .adopt)
        #expect(set.jobs["dump"]?.lock == .fleet && set.jobs["dump"]?.onLost == .rerun)
        #expect(set.jobs["dump"]?.fleetUnavailable == .runLocally && set.jobs["dump"]?.leaseMs == 45_000)
        #expect(back.jobs["up"]?.lock == .local)
    }

    /// Writes and reads a job set as the answer carries it.
    func roundTrip(_ set: JobSet) throws -> JobSet {
        var w = WireWriter()
        JobWire.write(set, into: &w)
        var r = WireReader(w.bytes)
        let back = try JobWire.decodeSet(&r)
        #expect(r.isAtEnd)
        return back
    }

    /// Each distinct string crosses the pipe once: a file name shared by 200 jobs is in the
    /// answer once, and so is the cron expression they share; the rest are references.
    @Test func eachDistinctStringIsInTheAnswerOnce() throws {
        let file = "/etc/sundial/jobs.d/a-file-name-longer-than-fifteen-bytes.yaml"
        var set: OrderedDictionary<JobID, JobSpec> = [:]
        for i in 0..<200 {
            var j = JobSpec(id: "job-\(i)", schedule: .cron("*/7 * * * MON-FRI"), command: .argv(["/usr/local/bin/report", "--part=\(i)"]))
            j.location = SourceLocation(file: file, line: 3 + i, column: 3)
            set[j.id] = j
        }
        let answer = LoaderWire.encode(ConfigLoadResult(jobSet: JobSet(jobs: set, files: [file], revision: "0123456789abcdef0"), diagnostics: []))
        func occurrences(_ needle: String) -> Int {
            let n = Array(needle.utf8)
            return (0...(answer.count - n.count)).count { answer[$0..<($0 + n.count)].elementsEqual(n) }
        }
        #expect(occurrences(file) == 1)
        #expect(occurrences("*/7 * * * MON-FRI") == 1)
        #expect(occurrences("/usr/local/bin/report") == 1)
        #expect(occurrences("--part=199") == 1)
        // Under 100 bytes a job (its id and argument are new; each field is a byte or two);
        // the JSON answer was about 850.
        #expect(answer.count < 200 * 100, "\(answer.count) bytes")
        let back = try #require(try LoaderWire.decode(answer, maxBytes: 1 << 20).jobSet)
        #expect(Array(back.jobs.values) == Array(set.values))
        #expect(back.jobs.values.map(\.location) == set.values.map(\.location))
    }

    /// Values that jobs have in common are decoded once and shared (``WireReader``'s string
    /// table, ``SharedValues``): each file name, zone name and cron expression once, not once
    /// per job; an `env` given by
    /// `defaults:` and a retry policy once per distinct value; different values stay different.
    @Test func valuesJobsHaveInCommonShareOneCopy() throws {
        let file = "/etc/sundial/jobs.d/a-file-name-longer-than-fifteen-bytes.yaml"
        func job(_ id: String, env: OrderedDictionary<String, String>, codes: [Int32], attempts: Int) -> JobSpec {
            var j = JobSpec(id: id, schedule: .cron("30 2 * * MON-FRI,SAT"), command: .argv(["/bin/true"]))
            j.location = SourceLocation(file: file, line: 3, column: 3)
            j.timezone = "America/Los_Angeles"
            j.env = env
            j.successExitCodes = codes
            j.retry.on = [.failure, .timeout]
            j.retry.attempts = attempts
            return j
        }
        let shared: OrderedDictionary<String, String> = ["APP_ENV": "production-environment-value", "REGION": "eu-0"]
        let jobs = [
            job("a", env: shared, codes: [0, 3], attempts: 3), job("b", env: shared, codes: [0, 3], attempts: 3),
            job("c", env: ["APP_ENV": "staging"], codes: [0], attempts: 5),
        ]
        var set: OrderedDictionary<JobID, JobSpec> = [:]
        for j in jobs { set[j.id] = j }
        let decoded = try roundTrip(JobSet(jobs: set, files: [file], revision: "0123456789abcdef0")).jobs
        #expect(Array(decoded.values) == jobs)
        let a = try #require(decoded["a"])
        let b = try #require(decoded["b"])
        let c = try #require(decoded["c"])

        func storage(_ s: String) -> UnsafeRawPointer? {
            var copy = s
            return copy.withUTF8 { UnsafeRawPointer($0.baseAddress) }
        }
        func storage<T>(_ a: [T]) -> UnsafeRawPointer? { a.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) } }
        #expect(storage(try #require(a.location?.file)) == storage(try #require(b.location?.file)))
        #expect(storage(try #require(a.location?.file)) == storage(try #require(c.location?.file)))
        #expect(storage(a.env.values.elements) == storage(b.env.values.elements))
        #expect(storage(a.env.values.elements) != storage(c.env.values.elements))
        #expect(storage(a.successExitCodes) == storage(b.successExitCodes))
        #expect(storage(a.successExitCodes) != storage(c.successExitCodes))
        #expect(storage(try #require(a.timezone)) == storage(try #require(c.timezone)))
        guard case let .cron(ea) = a.schedule, case let .cron(ec) = c.schedule else {
            Issue.record("not cron schedules")
            return
        }
        #expect(storage(ea) == storage(ec))
        #expect(a.sharesRetry(with: b))
        #expect(!a.sharesRetry(with: c))
        #expect(a.retry.attempts == 3 && c.retry.attempts == 5)
    }

    /// Retry policies are shared only when identical: -0.0 and 0.0 are `==`, but the answer
    /// promises every field exactly (`jitter_bits`).
    @Test func retryPoliciesAreSharedOnlyWhenIdentical() throws {
        func job(_ id: String, jitter: Double) -> JobSpec {
            var j = JobSpec(id: id, schedule: .cron("*/5 * * * *"), command: .argv(["/bin/true"]))
            j.retry.attempts = 3
            j.retry.jitter = jitter
            return j
        }
        var set: OrderedDictionary<JobID, JobSpec> = [:]
        for j in [job("a", jitter: 0.0), job("b", jitter: -0.0), job("c", jitter: 0.0)] { set[j.id] = j }
        let decoded = try roundTrip(JobSet(jobs: set, files: [], revision: "0123456789abcdef0")).jobs
        let a = try #require(decoded["a"])
        let b = try #require(decoded["b"])
        let c = try #require(decoded["c"])
        #expect(b.retry.jitter.sign == .minus && a.retry.jitter.sign == .plus)
        #expect(!a.sharesRetry(with: b) && a.sharesRetry(with: c))
    }

    /// Shared only when the bytes are the same: a precomposed "é" and "e" + U+0301 are equal
    /// to Swift's `==` but are different file names on Linux and different env values to a job.
    @Test func canonicallyEquivalentValuesAreNotMerged() throws {
        let composed = "caf\u{E9}"
        let decomposed = "cafe\u{301}"
        try #require(composed == decomposed)  // what makes the keying matter
        func job(_ id: String, _ word: String) -> JobSpec {
            var j = JobSpec(id: id, schedule: .cron("*/5 * * * *"), command: .argv(["/bin/true"]))
            j.location = SourceLocation(file: "/etc/sundial/jobs.d/\(word).yaml", line: 3, column: 3)
            j.env = ["WORD": word]
            return j
        }
        var set: OrderedDictionary<JobID, JobSpec> = [:]
        for j in [job("a", composed), job("b", decomposed)] { set[j.id] = j }
        let files = ["/etc/sundial/jobs.d/\(composed).yaml", "/etc/sundial/jobs.d/\(decomposed).yaml"]
        let decoded = try roundTrip(JobSet(jobs: set, files: files, revision: "0123456789abcdef0")).jobs
        for (id, word) in [("a", composed), ("b", decomposed)] {
            let j = try #require(decoded[JobID(id)])
            #expect(Array(try #require(j.env["WORD"]).utf8) == Array(word.utf8), "job \(id)")
            #expect(Array(try #require(j.location?.file).utf8) == Array("/etc/sundial/jobs.d/\(word).yaml".utf8), "job \(id)")
        }
    }

    /// The writer's string table past its first growth: every string written once as bytes,
    /// every repeat as a reference to it, and the reader gives back exactly what was written
    /// (the empty string, a long one, and canonically equivalent spellings included).
    @Test func theStringTableKeepsEveryStringThroughItsGrowth() throws {
        var strings = (0..<1_000).map { "job-\($0)" }
        strings += ["", String(repeating: "x", count: 300), "caf\u{E9}", "cafe\u{301}"]
        var w = WireWriter()
        for s in strings { w.string(s) }
        let once = w.bytes.count
        for s in strings.reversed() { w.string(s) }
        // A repeat is a reference of at most two bytes (up to 16,383 entries).
        #expect(w.bytes.count - once <= 2 * strings.count)
        var r = WireReader(w.bytes)
        for s in strings + strings.reversed() { #expect(Array(try r.string("s").utf8) == Array(s.utf8)) }
        #expect(r.isAtEnd)
    }

    @Test func diagnosticsRoundTripWithSeverityAndHint() throws {
        let original = load("version: 1\njobs:\n  a:\n    every: 5m\n    command: [x]\n    timout: 5m\n")
        #expect(!original.diagnostics.isEmpty)
        let decoded = try LoaderWire.decode(LoaderWire.encode(original), maxBytes: 1 << 20)
        #expect(decoded.jobSet == nil)
        #expect(decoded.diagnostics == original.diagnostics)
        #expect(decoded.diagnostics.map(\.description) == original.diagnostics.map(\.description))
    }

    @Test func atMostAThousandDiagnosticsAndANoteForTheRest() throws {
        let diagnostics = (1...1500).map { Diagnostic(at: SourceLocation(file: "a.yaml", line: $0, column: 1), "bad \($0)") }
        let decoded = try LoaderWire.decode(LoaderWire.encode(ConfigLoadResult(jobSet: nil, diagnostics: diagnostics)), maxBytes: 1 << 20)
        #expect(decoded.diagnostics.filter { $0.severity == .error }.count == 1000)
        #expect(decoded.diagnostics.last?.message == "500 more problems not shown")
    }

    func rejects(
        _ bytes: [UInt8], maxBytes: Int = 1 << 20, _ fragment: String,
        sourceLocation: Testing.SourceLocation = #_sourceLocation
    ) {
        do {
            _ = try LoaderWire.decode(bytes, maxBytes: maxBytes)
            Issue.record("accepted", sourceLocation: sourceLocation)
        } catch {
            #expect(error.description.contains(fragment), "\(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func hostileOrBrokenAnswersAreErrors() throws {
        let good = LoaderWire.encode(load(Self.everyField))
        rejects([], "no header")
        rejects(Array("hello world\n".utf8), "not a loader answer")
        rejects(Array("SUNDIAL-LOADER 1 2\n{}".utf8), "version 1")
        rejects(Array("SUNDIAL-LOADER \(LoaderWire.version) x\n{}".utf8), "bad length")
        rejects(Array(good.dropLast(10)), "truncated")
        rejects(good + [0x20], "bytes after the answer")
        rejects(good, maxBytes: 100, "larger than 100 bytes")
        rejects(answer([0, 0, 0, 0]), "bytes after the diagnostics")
        rejects(answer([2]), "expected a boolean")
        rejects(answer([0, 0xFF, 0xFF]), "ends inside a number")
        rejects(answer([0] + Array(repeating: 0xFF, count: 10) + [0x01]), "past 64 bits")
        rejects(answer([0, 100, 0]), "100 elements in 1 bytes")
        rejects(answer([0, 0x90, 0x4E] + Array(repeating: 0, count: 10_001)), "more than 1000 diagnostics")
        // A job set whose revision refers to a string not yet written; one that is not UTF-8.
        rejects(answer([1, 3]), "a reference to string 3 of 0")
        rejects(answer([1, 0, 2, 0xC3, 0x28]), "not UTF-8")

        // Every prefix of the body, given a header that matches it, is an error: the answer
        // cannot end early and still look whole. Every byte changed is a valid answer or an
        // error; none may trap.
        let headerEnd = good.firstIndex(of: 0x0A)! + 1
        let body = Array(good[headerEnd...])
        for n in 0..<body.count {
            rejects(answer(Array(body[..<n])), "")
        }
        for i in body.indices {
            for replacement: UInt8 in [0, 1, 0x7F, 0x80, 0xFF, body[i] ^ 0x01] {
                var bad = body
                bad[i] = replacement
                _ = try? LoaderWire.decode(answer(bad), maxBytes: 1 << 20)
            }
        }
    }

    /// `body` as a whole answer, with the header that says its length.
    func answer(_ body: [UInt8]) -> [UInt8] { Array("SUNDIAL-LOADER \(LoaderWire.version) \(body.count)\n".utf8) + body }

    /// An answer carrying `jobs` as they are, without the loader's checks.
    func answer(jobs: [JobSpec]) -> [UInt8] {
        var w = WireWriter()
        w.bool(true)
        w.string("r")
        w.count(1)
        w.string("jobs/a.yaml")
        w.count(0)
        w.uint(0)
        w.bool(false)
        w.bool(false)
        w.count(0)
        w.count(jobs.count)
        for j in jobs { JobWire.write(j, into: &w) }
        w.count(0)
        w.count(0)
        return answer(w.bytes)
    }

    /// The loader never sends these values, so the agent must not trust that it did: each is
    /// checked again where the agent would act on it (a size, a cgroup file, a socket).
    @Test func valuesTheAgentActsOnAreCheckedAgain() throws {
        let job = JobSpec(id: "a", command: .argv(["x"]))
        #expect((try? LoaderWire.decode(answer(jobs: [job]), maxBytes: 1 << 20))?.jobSet?.jobs["a"] == job)
        rejects(answer(jobs: [job, job]), "job `a` appears twice")
        var bad = job
        bad.output.maxBytes = -5
        rejects(answer(jobs: [bad]), "output.max_bytes: -5 is out of range")
        bad = job
        bad.umask = 0o1000
        rejects(answer(jobs: [bad]), "umask out of range")
        bad = job
        bad.limits = ResourceLimits(memoryBytes: 5)
        rejects(answer(jobs: [bad]), "limits.memory_bytes: 5 is out of range")
        bad = job
        bad.notify = [NotifySpec(on: [.failure], target: .command([]))]
        rejects(answer(jobs: [bad]), "notify.command: empty")
        bad.notify = [NotifySpec(on: [.failure], target: .webhook(WebhookSpec(url: "gopher://x")))]
        rejects(answer(jobs: [bad]), "notify.webhook.url")
        bad.notify = [NotifySpec(on: [.failure], target: .webhook(WebhookSpec(url: "http://127.0.0.1/", headers: ["X": "a\r\nHost: y"])))]
        rejects(answer(jobs: [bad]), "a line break in `X`")
        bad.notify = [NotifySpec(on: [.failure], target: .webhook(WebhookSpec(url: "http://127.0.0.1/", timeoutMs: 0)))]
        rejects(answer(jobs: [bad]), "timeout_ms: must be positive")
    }

    @Test func unknownNamesAreErrors() throws {
        var w = WireWriter()
        w.uint(5)
        w.uint(UInt64(ConcurrencyPolicy.allCases.count))
        w.choice(ConcurrencyPolicy.queue)
        w.string("maybe")
        var r = WireReader(w.bytes)
        #expect(throws: JobWire.DecodeError.self) { try JobWire.decodeSchedule(&r) }
        do {
            let _: ConcurrencyPolicy = try r.choice("concurrency")
            Issue.record("accepted")
        } catch {
            #expect(error.description == "concurrency: unknown value 4")
        }
        #expect(try r.choice("concurrency") as ConcurrencyPolicy == .queue)
        do {
            let _: Diagnostic.Severity = try r.enumValue("severity")
            Issue.record("accepted")
        } catch {
            #expect(error.description == "severity: unknown value `maybe`")
        }
    }

    /// Every case of every enumeration the answer carries survives the trip as its index.
    @Test func everyCaseOfEveryChoiceRoundTrips() throws {
        func check<E: CaseIterable & Equatable>(_: E.Type) throws {
            var w = WireWriter()
            for c in E.allCases { w.choice(c) }
            var r = WireReader(w.bytes)
            for c in E.allCases { #expect(try r.choice("x") as E == c) }
            #expect(r.isAtEnd)
        }
        try check(DSTPolicy.Gap.self)
        try check(DSTPolicy.Overlap.self)
        try check(RetryPolicy.Backoff.self)
        try check(RetryPolicy.Condition.self)
        try check(Need.Condition.self)
        try check(ConcurrencyPolicy.self)
        try check(AgentRestartPolicy.self)
        try check(RebootPolicy.self)
        try check(JobLock.self)
        try check(FleetLostAction.self)
        try check(FleetUnavailablePolicy.self)
        try check(CatchupPolicy.self)
        try check(NotifyEvent.self)
    }

    /// Integers of every size and sign survive the trip, at the edges of each encoded length.
    @Test func integersRoundTripAtEveryLength() throws {
        var values: [Int64] = [0, 1, -1, .max, .min, .max - 1, .min + 1]
        for shift in stride(from: 6, to: 63, by: 7) {
            let edge = Int64(1) << Int64(shift)
            values += [edge - 1, edge, -edge, -edge - 1]
        }
        var w = WireWriter()
        for v in values { w.int(v) }
        w.uint(.max)
        var r = WireReader(w.bytes)
        for v in values { #expect(try r.int("n") == v) }
        #expect(try r.uint("n") == .max)
        #expect(r.isAtEnd)
    }
}
