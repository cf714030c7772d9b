import OrderedCollections
import SundialCore

/// A job set in the loader child's binary answer (``LoaderWire``, written with ``WireWriter``).
///
/// Every field of ``JobSpec`` round-trips exactly, positions included, so the set the agent runs
/// is the set the child validated. The fields follow one another in a fixed order, the same in
/// ``write(_:into:)-(JobSpec,_)`` and ``decodeJob(_:shared:)``; both ends are one build, and the
/// answer's version refuses any other. Decoding treats its input as untrusted — a crashed or
/// compromised child can send anything — so every value is range-checked where the agent
/// would act on it (sizes, limits, URLs, header values), and a wrong one is an error, never a
/// trap.
enum JobWire {
    struct DecodeError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    // MARK: - Writing

    static func write(_ set: JobSet, into w: inout WireWriter) {
        w.string(set.revision)
        w.count(set.files.count)
        for f in set.files { w.string(f) }
        w.count(set.jobs.count)
        for j in set.jobs.values { write(j, into: &w) }
    }

    static func write(_ j: JobSpec, into w: inout WireWriter) {
        w.string(j.id)
        w.string(j.description)
        write(j.schedule, into: &w)
        w.string(j.timezone)
        w.choice(j.dst.gap)
        w.choice(j.dst.overlap)
        w.int(j.jitterMs)
        switch j.command {
        case let .argv(a):
            w.bool(true)
            w.count(a.count)
            for arg in a { w.string(arg) }
        case let .shell(s):
            w.bool(false)
            w.string(s)
        }
        w.string(j.workdir)
        w.count(j.env.count)
        for (k, v) in j.env {
            w.string(k)
            w.string(v)
        }
        w.string(j.envFile)
        w.string(j.user)
        w.string(j.group)
        w.int(j.umask.map { Int64($0) })
        w.int(j.timeoutMs)
        w.int(j.killGraceMs)
        // One copy of the policy (each `j.retry` is a copy out of its box).
        let retry = j.retry
        w.int(retry.attempts)
        w.choice(retry.backoff)
        w.int(retry.delayMs)
        w.int(retry.maxDelayMs)
        // The exact bits: `-0.0` stays `-0.0`.
        w.uint(retry.jitter.bitPattern)
        let on = RetryPolicy.Condition.allCases.filter { retry.on.contains($0) }
        w.count(on.count)
        for c in on { w.choice(c) }
        w.bool(retry.exitCodes != nil)
        if let codes = retry.exitCodes {
            w.count(codes.count)
            for c in codes { w.int(Int64(c)) }
        }
        w.count(j.successExitCodes.count)
        for c in j.successExitCodes { w.int(Int64(c)) }
        w.count(j.needs.count)
        for n in j.needs {
            w.string(n.job)
            w.choice(n.on)
            write(n.location, into: &w)
        }
        w.choice(j.concurrency)
        w.choice(j.onAgentRestart)
        w.choice(j.reboot)
        w.choice(j.lock)
        w.choice(j.onLost)
        w.choice(j.fleetUnavailable)
        w.int(j.leaseMs)
        w.choice(j.catchup)
        w.int(j.catchupWindowMs)
        w.bool(j.enabled)
        w.int(j.output.maxLineBytes)
        w.int(j.output.maxBytes)
        w.int(j.output.keepBytes)
        w.count(j.secrets.count)
        for s in j.secrets { w.string(s) }
        w.int(j.limits.memoryBytes)
        w.int(j.limits.cpuPercent.map { Int64($0) })
        w.int(j.limits.tasks.map { Int64($0) })
        w.count(j.notify.count)
        for n in j.notify { write(n, into: &w) }
        write(j.location, into: &w)
    }

    static func write(_ n: NotifySpec, into w: inout WireWriter) {
        let on = NotifyEvent.allCases.filter { n.on.contains($0) }
        w.count(on.count)
        for e in on { w.choice(e) }
        switch n.target {
        case let .command(argv):
            w.bool(false)
            w.count(argv.count)
            for a in argv { w.string(a) }
        case let .webhook(hook):
            w.bool(true)
            w.string(hook.url)
            w.count(hook.headers.count)
            for (k, v) in hook.headers {
                w.string(k)
                w.string(v)
            }
            w.string(hook.secretEnv)
            w.string(hook.caFile)
            w.int(hook.timeoutMs)
            w.int(hook.retries)
        }
        write(n.location, into: &w)
    }

    static func write(_ s: ScheduleSpec, into w: inout WireWriter) {
        switch s {
        case .manual: w.uint(0)
        case let .cron(e):
            w.uint(1)
            w.string(e)
        case .reboot: w.uint(2)
        case let .every(interval, offset):
            w.uint(3)
            w.int(interval)
            w.int(offset)
        case let .at(instants):
            w.uint(4)
            w.count(instants.count)
            for i in instants { w.int(i.unixMillis) }
        }
    }

    static func write(_ l: SourceLocation?, into w: inout WireWriter) {
        w.bool(l != nil)
        guard let l else { return }
        w.string(l.file)
        w.int(l.line)
        w.int(l.column)
    }

    // MARK: - Decoding

    static func decodeSet(_ r: inout WireReader) throws(DecodeError) -> JobSet {
        let revision = try r.string("revision")
        var files: [String] = []
        for _ in 0..<(try r.count("files")) { files.append(try r.string("files")) }
        let n = try r.count("jobs")
        var jobs: OrderedDictionary<JobID, JobSpec> = [:]
        jobs.reserveCapacity(n)
        let shared = SharedValues()
        for _ in 0..<n {
            let job = try decodeJob(&r, shared: shared)
            guard jobs.updateValue(job, forKey: job.id) == nil else { throw DecodeError("job `\(job.id)` appears twice") }
        }
        return JobSet(jobs: jobs, files: files, revision: revision)
    }

    static func decodeJob(_ r: inout WireReader, shared: SharedValues = SharedValues()) throws(DecodeError) -> JobSpec {
        let id = try r.string("id")
        let description = try r.optionalString("description")
        let schedule = try decodeSchedule(&r)
        let timezone = try r.optionalString("timezone")
        let dst = DSTPolicy(gap: try r.choice("dst.gap"), overlap: try r.choice("dst.overlap"))
        let jitterMs = try r.int("jitter_ms")
        let command: CommandSpec
        if try r.bool("command") {
            let n = try r.count("argv")
            var argv: [String] = []
            argv.reserveCapacity(reservation(n))
            for _ in 0..<n { argv.append(try r.string("argv")) }
            command = .argv(argv)
        } else {
            command = .shell(try r.string("shell"))
        }
        var j = JobSpec(id: id, schedule: schedule, command: command)
        j.description = description
        j.timezone = timezone
        j.dst = dst
        j.jitterMs = jitterMs
        j.workdir = try r.optionalString("workdir")
        // An `env` from `defaults:` is the same for every job of a file: one dictionary for all
        // of them, recognised by the table indexes of its names and values.
        let pairs = try r.count("env")
        if pairs > 0 {
            // The dictionary is built only for the first job with these bytes (building it
            // for every job was a tenth of decoding one).
            var key: [Int] = []
            var strings: [String] = []
            key.reserveCapacity(reservation(2 * pairs))
            strings.reserveCapacity(reservation(2 * pairs))
            for _ in 0..<pairs {
                let (name, i) = try r.indexedString("env name")
                let (value, k) = try r.indexedString("env value")
                key.append(i)
                key.append(k)
                strings.append(name)
                strings.append(value)
            }
            if let known = shared.envs[key] {
                j.env = known
            } else {
                var env: OrderedDictionary<String, String> = [:]
                for p in stride(from: 0, to: strings.count, by: 2) { env[strings[p]] = strings[p + 1] }
                shared.envs[key] = env
                j.env = env
            }
        }
        j.envFile = try r.optionalString("env_file")
        j.user = try r.optionalString("user")
        j.group = try r.optionalString("group")
        if let u = try r.optionalInt("umask") {
            guard let mask = UInt16(exactly: u), mask <= 0o777 else { throw DecodeError("umask out of range") }
            j.umask = mask
        }
        j.timeoutMs = try r.optionalInt("timeout_ms")
        j.killGraceMs = try r.int("kill_grace_ms")
        // A policy already decoded from the very same bytes is the same policy: its box is
        // shared without building a second one (the set of conditions and the hashing of the
        // policy were a quarter of decoding a job; most jobs take the policy from `defaults`).
        let retryStart = r.offset
        let attempts = try r.smallInt("retry.attempts")
        let backoff: RetryPolicy.Backoff = try r.choice("retry.backoff")
        let delayMs = try r.int("retry.delay_ms")
        let maxDelayMs = try r.optionalInt("retry.max_delay_ms")
        let jitter = Double(bitPattern: try r.uint("retry.jitter"))
        var conditions: [RetryPolicy.Condition] = []
        for _ in 0..<(try r.count("retry.on")) { conditions.append(try r.choice("retry.on")) }
        var exitCodes: [Int32]?
        if try r.bool("retry.exit_codes") {
            var codes: [Int32] = []
            for _ in 0..<(try r.count("retry.exit_codes")) { codes.append(try r.int32("retry.exit_codes")) }
            exitCodes = codes
        }
        let retryBytes = r.bytes(from: retryStart)
        let knownRetry = shared.retriesByBytes[retryBytes]
        if let knownRetry {
            j.useRetry(of: knownRetry)
        } else {
            var retry = RetryPolicy()
            retry.attempts = attempts
            retry.backoff = backoff
            retry.delayMs = delayMs
            retry.maxDelayMs = maxDelayMs
            retry.jitter = jitter
            retry.on = Set(conditions)
            retry.exitCodes = exitCodes
            j.retry = retry
        }
        let codeCount = try r.count("success_exit_codes")
        var codes: [Int32] = []
        codes.reserveCapacity(reservation(codeCount))
        for _ in 0..<codeCount { codes.append(try r.int32("success_exit_codes")) }
        if let known = shared.codes[codes] {
            j.successExitCodes = known
        } else {
            shared.codes[codes] = codes
            j.successExitCodes = codes
        }
        let needs = try r.count("needs")
        if needs > 0 {
            var list: [Need] = []
            list.reserveCapacity(reservation(needs))
            for _ in 0..<needs {
                list.append(Need(job: try r.string("needs.job"), on: try r.choice("needs.on"), location: try decodeLocation(&r)))
            }
            j.needs = list
        }
        j.concurrency = try r.choice("concurrency")
        j.onAgentRestart = try r.choice("on_agent_restart")
        j.reboot = try r.choice("reboot")
        j.lock = try r.choice("lock")
        j.onLost = try r.choice("on_lost")
        j.fleetUnavailable = try r.choice("fleet_unavailable")
        j.leaseMs = try r.int("lease_ms")
        j.catchup = try r.choice("catchup")
        j.catchupWindowMs = try r.int("catchup_window_ms")
        j.enabled = try r.bool("enabled")
        j.output = OutputLimits(
            maxLineBytes: try r.smallInt("output.max_line_bytes"), maxBytes: try r.smallInt("output.max_bytes"),
            keepBytes: try r.smallInt("output.keep_bytes"))
        let secrets = try r.count("secrets")
        if secrets > 0 {
            var list: [String] = []
            list.reserveCapacity(reservation(secrets))
            for _ in 0..<secrets { list.append(try r.string("secrets")) }
            j.secrets = list
        }
        j.limits = try decodeLimits(&r)
        let notify = try r.count("notify")
        if notify > 0 {
            var list: [NotifySpec] = []
            for _ in 0..<notify { list.append(try decodeNotify(&r)) }
            j.notify = list
        }
        j.location = try decodeLocation(&r)
        // One box per distinct policy in the set (see `JobSpec.shareRetry(with:)`); kept from a
        // finished job, so that no later change copies the job's fields.
        if knownRetry == nil {
            let key = SharedValues.RetryKey(j.retry)
            if let known = shared.retries[key] {
                j.shareRetry(with: known)
            } else {
                shared.retries[key] = j
            }
            shared.retriesByBytes[retryBytes] = shared.retries[key]
        }
        return j
    }

    /// Room to reserve for `count` elements before reading them: the regrowths of arrays
    /// filled from empty were about a seventh of decoding a job's instructions (`[String]`
    /// and `[Int]`; reserving saves the regrowths, not the first allocation).
    /// Capped: `count` is only known to fit the answer's remaining bytes, and a hostile child
    /// must not make the agent allocate ahead of what it actually sends.
    private static func reservation(_ count: Int) -> Int { min(count, 64) }

    static func decodeSchedule(_ r: inout WireReader) throws(DecodeError) -> ScheduleSpec {
        switch try r.uint("schedule.kind") {
        case 0: return .manual
        case 2: return .reboot
        case 1: return .cron(try r.string("schedule.expression"))
        case 3: return .every(intervalMs: try r.int("schedule.interval_ms"), offsetMs: try r.optionalInt("schedule.offset_ms"))
        case 4:
            var instants: [Instant] = []
            for _ in 0..<(try r.count("schedule.instants_ms")) { instants.append(Instant(unixMillis: try r.int("schedule.instants_ms"))) }
            return .at(instants)
        case let other: throw DecodeError("schedule.kind: unknown kind \(other)")
        }
    }

    /// The URL and header values are checked again: they go onto a socket as they are.
    static func decodeNotify(_ r: inout WireReader) throws(DecodeError) -> NotifySpec {
        var on: Set<NotifyEvent> = []
        for _ in 0..<(try r.count("notify.on")) { on.insert(try r.choice("notify.on")) }
        let target: NotifyTarget
        if try r.bool("notify.target") {
            var spec = WebhookSpec(url: try r.string("notify.webhook.url"))
            do throws(WebhookURL.ParseError) { _ = try WebhookURL.parse(spec.url) } catch {
                throw DecodeError("notify.webhook.url: \(error.description)")
            }
            for _ in 0..<(try r.count("notify.webhook.headers")) {
                let name = try r.string("header name")
                let value = try r.string("header value")
                guard !(name + value).unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }) else {
                    throw DecodeError("notify.webhook.headers: a line break in `\(name)`")
                }
                spec.headers[name] = value
            }
            spec.secretEnv = try r.optionalString("notify.webhook.secret_env")
            spec.caFile = try r.optionalString("notify.webhook.ca_file")
            spec.timeoutMs = try r.int("notify.webhook.timeout_ms")
            guard spec.timeoutMs > 0 else { throw DecodeError("notify.webhook.timeout_ms: must be positive") }
            spec.retries = try r.smallInt("notify.webhook.retries")
            guard spec.retries <= WebhookSpec.maxRetries else { throw DecodeError("notify.webhook.retries: out of range") }
            target = .webhook(spec)
        } else {
            var argv: [String] = []
            for _ in 0..<(try r.count("notify.command")) { argv.append(try r.string("notify.command")) }
            guard !argv.isEmpty else { throw DecodeError("notify.command: empty") }
            target = .command(argv)
        }
        return NotifySpec(on: on, target: target, location: try decodeLocation(&r))
    }

    /// The ranges are checked again: the values go to cgroup files as they are.
    static func decodeLimits(_ r: inout WireReader) throws(DecodeError) -> ResourceLimits {
        var l = ResourceLimits()
        if let m = try r.optionalInt("limits.memory_bytes") {
            guard m >= ResourceLimits.minMemoryBytes, m <= ResourceLimits.maxMemoryBytes else { throw DecodeError("limits.memory_bytes: \(m) is out of range") }
            l.memoryBytes = m
        }
        if let c = try r.optionalInt("limits.cpu_percent") {
            guard let c = Int(exactly: c), ResourceLimits.cpuPercentRange.contains(c) else { throw DecodeError("limits.cpu_percent: \(c) is out of range") }
            l.cpuPercent = c
        }
        if let t = try r.optionalInt("limits.tasks") {
            guard let t = Int(exactly: t), ResourceLimits.tasksRange.contains(t) else { throw DecodeError("limits.tasks: \(t) is out of range") }
            l.tasks = t
        }
        return l
    }

    static func decodeLocation(_ r: inout WireReader) throws(DecodeError) -> SourceLocation? {
        guard try r.bool("location") else { return nil }
        return SourceLocation(file: try r.string("location"), line: try r.smallInt("location.line"), column: try r.smallInt("location.column"))
    }
}

/// Values that many jobs of one set have in common, decoded once and then shared by every job
/// that has them (strings already are, through ``WireReader``'s table): the `env` that
/// `defaults:` gives a whole file, `success_exit_codes`, the retry policy. A decoded set lives
/// as long as it runs; 1,000 jobs of ten files held 1,000 copies of ten `env` dictionaries.
/// Used by one decode at a time (not Sendable).
final class SharedValues {
    /// Keyed by the table indexes of the names and values: equal only for the same bytes.
    var envs: [[Int]: OrderedDictionary<String, String>] = [:]
    var codes: [[Int32]: [Int32]] = [:]
    /// A job holding each distinct retry policy decoded so far (its box is the one to share).
    var retries: [RetryKey: JobSpec] = [:]
    /// The same jobs by the wire bytes of their policy: equal bytes are an identical policy.
    var retriesByBytes: [ArraySlice<UInt8>: JobSpec] = [:]

    /// A retry policy as a key equal only to an identical one (`jitter` to the bit: `==` takes
    /// -0.0 for 0.0, and the answer promises every field exactly).
    struct RetryKey: Hashable {
        let policy: RetryPolicy
        init(_ policy: RetryPolicy) { self.policy = policy }
        static func == (a: RetryKey, b: RetryKey) -> Bool { a.policy.isIdentical(to: b.policy) }
        func hash(into h: inout Hasher) {
            h.combine(policy)
            h.combine(policy.jitter.bitPattern)
        }
    }
}
