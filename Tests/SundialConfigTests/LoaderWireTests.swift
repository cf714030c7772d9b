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

    /// The answer is written field by field (``JSONWriter``) for speed; it must stay the very
    /// bytes the value tree encodes to, for every field and every schedule kind.
    @Test func writtenAnswerIsTheEncodedTreeByteForByte() throws {
        let result = load(Self.everyField)
        let set = try #require(result.jobSet)
        var tree: [UInt8] = []
        JobWire.encode(set).encode(into: &tree)
        var w = JSONWriter()
        JobWire.write(set, into: &w)
        #expect(String(decoding: w.bytes, as: UTF8.self) == String(decoding: tree, as: UTF8.self))

        let invalid = load("version: 1\njobs:\n  a: { command: [x], timeout: 5 }\n")
        let body: JSONValue = [
            "job_set": .null,
            "diagnostics": .array(invalid.diagnostics.map(LoaderWire.encode)),
            "omitted": .int(0),
        ]
        var expected: [UInt8] = []
        body.encode(into: &expected)
        let answer = LoaderWire.encode(invalid)
        #expect(!invalid.diagnostics.isEmpty)
        #expect(Array(answer.drop { $0 != 0x0A }.dropFirst()) == expected)
    }

    /// A decoded job set must not share a string's storage with the JSON tree it came from:
    /// the tree is freed at once, the set lives for hours, and every shared string pins one of
    /// the tree's malloc pages (JobWire.detached says how much that was).
    @Test func decodedStringsShareNoStorageWithTheTree() throws {
        let long = "/usr/local/bin/a-command-name-longer-than-fifteen-bytes"
        let file = "/etc/sundial/jobs.d/a-file-name-longer-than-fifteen-bytes.yaml"
        var job = JobSpec(id: "a-job-id-that-is-long-enough", schedule: .cron("*/5 * * * *"), command: .argv([long, "short"]))
        job.description = "a description that is longer than fifteen bytes"
        job.location = SourceLocation(file: file, line: 3, column: 3)
        let tree = JobWire.encode(JobSet(jobs: [job.id: job], files: [file], revision: "0123456789abcdef0"))
        let decoded = try #require(try JobWire.decodeSet(tree).jobs[job.id])

        func storage(_ s: String) -> UnsafeRawPointer? {
            var copy = s
            return copy.withUTF8 { UnsafeRawPointer($0.baseAddress) }
        }
        func treeStrings(_ v: JSONValue, into out: inout [String]) {
            switch v {
            case let .string(s): out.append(s)
            case let .array(a): for e in a { treeStrings(e, into: &out) }
            case let .object(o): for (_, e) in o { treeStrings(e, into: &out) }
            default: break
            }
        }
        var inTree: [String] = []
        treeStrings(tree, into: &inTree)
        let treeStorage = Set(inTree.filter { $0.utf8.count > 15 }.compactMap(storage))
        #expect(treeStorage.count >= 4)
        guard case let .argv(argv) = decoded.command else {
            Issue.record("argv expected")
            return
        }
        for s in [decoded.id, argv[0], decoded.description ?? "", decoded.location?.file ?? ""] {
            #expect(s.utf8.count > 15)
            #expect(!treeStorage.contains(try #require(storage(s))), "\(s) shares the tree's storage")
        }
    }

    /// Values that jobs have in common are decoded once and shared (``SharedValues``): each
    /// file name, zone name and cron expression once, not once per job; an `env` given by
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
        let decoded = try JobWire.decodeSet(JobWire.encode(JobSet(jobs: set, files: [file], revision: "0123456789abcdef0"))).jobs
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
        let decoded = try JobWire.decodeSet(JobWire.encode(JobSet(jobs: set, files: [], revision: "0123456789abcdef0"))).jobs
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
        let decoded = try JobWire.decodeSet(JobWire.encode(JobSet(jobs: set, files: files, revision: "0123456789abcdef0"))).jobs
        for (id, word) in [("a", composed), ("b", decomposed)] {
            let j = try #require(decoded[JobID(id)])
            #expect(Array(try #require(j.env["WORD"]).utf8) == Array(word.utf8), "job \(id)")
            #expect(Array(try #require(j.location?.file).utf8) == Array("/etc/sundial/jobs.d/\(word).yaml".utf8), "job \(id)")
        }
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
        rejects(Array("SUNDIAL-LOADER 2 2\n{}".utf8), "version 2")
        rejects(Array("SUNDIAL-LOADER 1 x\n{}".utf8), "bad length")
        rejects(Array(good.dropLast(10)), "truncated")
        rejects(good + [0x20], "bytes after the answer")
        rejects(good, maxBytes: 100, "larger than 100 bytes")
        rejects(Array("SUNDIAL-LOADER 1 2\n[]".utf8), "expected an object")
        rejects(Array("SUNDIAL-LOADER 1 5\n{\"a\":".utf8), "invalid JSON")
        // Every single-byte corruption of a good answer is either still a valid answer or an
        // error; none may trap. (Changing a digit can keep the JSON valid.)
        let headerEnd = good.firstIndex(of: 0x0A)! + 1
        for i in stride(from: headerEnd, to: good.count, by: 7) {
            var bad = good
            bad[i] = bad[i] == UInt8(ascii: "\"") ? UInt8(ascii: "x") : UInt8(ascii: "\"")
            _ = try? LoaderWire.decode(bad, maxBytes: 1 << 20)
        }
    }

    @Test func wrongTypesInAJobAreErrors() {
        func answer(_ json: String) -> [UInt8] { Array("SUNDIAL-LOADER 1 \(json.utf8.count)\n\(json)".utf8) }
        let job =
            #"{"id":"a","schedule":{"kind":"manual"},"argv":["x"],"dst":{"gap":"shift","overlap":"first"},"jitter_ms":0,"env":[],"kill_grace_ms":1,"retry":{"attempts":1,"backoff":"fixed","delay_ms":1,"jitter_bits":"0","on":[]},"success_exit_codes":[0],"needs":[],"concurrency":"forbid","catchup":"none","catchup_window_ms":1,"enabled":true,"output":{"max_line_bytes":1,"max_bytes":1,"keep_bytes":1},"secrets":[],"limits":{"memory_bytes":null}}"#
        func set(_ job: String) -> String { #"{"job_set":{"revision":"r","files":[],"jobs":["# + job + #"]},"diagnostics":[],"omitted":0}"# }
        #expect((try? LoaderWire.decode(answer(set(job)), maxBytes: 1 << 20))?.jobSet?.jobs["a"] != nil)
        rejects(answer(set(job.replacingFirst(#""enabled":true"#, #""enabled":1"#))), "enabled")
        rejects(answer(set(job.replacingFirst(#""concurrency":"forbid""#, #""concurrency":"sometimes""#))), "unknown value")
        rejects(answer(set(job.replacingFirst(#""kind":"manual""#, #""kind":"lunar""#))), "unknown kind")
        rejects(answer(set(job.replacingFirst(#""catchup":"none""#, #""on_agent_restart":"maybe","catchup":"none""#))), "unknown value")
        let killing = try? LoaderWire.decode(
            answer(set(job.replacingFirst(#""catchup":"none""#, #""on_agent_restart":"kill","catchup":"none""#))), maxBytes: 1 << 20)
        #expect(killing?.jobSet?.jobs["a"]?.onAgentRestart == .kill)
        rejects(answer(set(job.replacingFirst(#""max_bytes":1"#, #""max_bytes":-5"#))), "out of range")
        rejects(answer(set(job.replacingFirst(#""memory_bytes":null"#, #""memory_bytes":5"#))), "limits.memory_bytes: 5 is out of range")
        rejects(answer(set(job.replacingFirst(#""limits":{"memory_bytes":null}"#, #""limits":[]"#))), "limits: expected an object")
        rejects(answer(set(job.replacingFirst(#""success_exit_codes":[0]"#, #""success_exit_codes":[99999999999]"#))), "out of range")
        rejects(answer(#"{"job_set":{"revision":"r","files":[],"jobs":["# + job + "," + job + #"]},"diagnostics":[],"omitted":0}"#), "twice")
    }
}

extension String {
    func replacingFirst(_ a: String, _ b: String) -> String {
        guard let r = firstRange(of: a) else { return self }
        var s = self
        s.replaceSubrange(r, with: b)
        return s
    }
}
