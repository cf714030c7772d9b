import OrderedCollections
import SundialCore

/// A job set as JSON, for the loader child's answer (``LoaderWire``).
///
/// Every field of ``JobSpec`` round-trips exactly, positions included, so the set the agent runs
/// is the set the child validated. Hand-written rather than `Codable`: the shipped binary has no
/// Foundation (and so no `JSONEncoder`), and decoding must treat its input as untrusted — a
/// crashed or compromised child can send anything, so every field is type-checked and a wrong
/// one is an error, never a trap.
enum JobWire {
    struct DecodeError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    // MARK: - Encoding

    static func encode(_ set: JobSet) -> JSONValue {
        [
            "revision": .string(set.revision),
            "files": .array(set.files.map(JSONValue.string)),
            "jobs": .array(set.jobs.values.map(encode)),
        ]
    }

    static func encode(_ j: JobSpec) -> JSONValue {
        var o: OrderedDictionary<String, JSONValue> = [:]
        o["id"] = .string(j.id)
        o["description"] = j.description.map(JSONValue.string) ?? .null
        o["schedule"] = encode(j.schedule)
        o["timezone"] = j.timezone.map(JSONValue.string) ?? .null
        o["dst"] = ["gap": .string(j.dst.gap.rawValue), "overlap": .string(j.dst.overlap.rawValue)]
        o["jitter_ms"] = .int(j.jitterMs)
        switch j.command {
        case let .argv(a): o["argv"] = .array(a.map(JSONValue.string))
        case let .shell(s): o["shell"] = .string(s)
        }
        o["workdir"] = j.workdir.map(JSONValue.string) ?? .null
        o["env"] = .array(j.env.map { [.string($0.key), .string($0.value)] })
        o["env_file"] = j.envFile.map(JSONValue.string) ?? .null
        o["user"] = j.user.map(JSONValue.string) ?? .null
        o["group"] = j.group.map(JSONValue.string) ?? .null
        o["umask"] = j.umask.map { .int(Int64($0)) } ?? .null
        o["timeout_ms"] = j.timeoutMs.map(JSONValue.int) ?? .null
        o["kill_grace_ms"] = .int(j.killGraceMs)
        o["retry"] = [
            "attempts": .int(Int64(j.retry.attempts)), "backoff": .string(j.retry.backoff.rawValue),
            "delay_ms": .int(j.retry.delayMs), "max_delay_ms": j.retry.maxDelayMs.map(JSONValue.int) ?? .null,
            // The exact bits: a `Double` printed in decimal could round differently.
            "jitter_bits": .string(String(j.retry.jitter.bitPattern)),
            "on": .array(RetryPolicy.Condition.allCases.filter { j.retry.on.contains($0) }.map { .string($0.rawValue) }),
            "exit_codes": j.retry.exitCodes.map { .array($0.map { .int(Int64($0)) }) } ?? .null,
        ]
        o["success_exit_codes"] = .array(j.successExitCodes.map { .int(Int64($0)) })
        o["needs"] = .array(
            j.needs.map { n in
                ["job": .string(n.job), "on": .string(n.on.rawValue), "location": encode(n.location)]
            })
        o["concurrency"] = .string(j.concurrency.rawValue)
        o["on_agent_restart"] = .string(j.onAgentRestart.rawValue)
        o["reboot"] = .string(j.reboot.rawValue)
        o["lock"] = .string(j.lock.rawValue)
        o["on_lost"] = .string(j.onLost.rawValue)
        o["fleet_unavailable"] = .string(j.fleetUnavailable.rawValue)
        o["lease_ms"] = .int(j.leaseMs)
        o["catchup"] = .string(j.catchup.rawValue)
        o["catchup_window_ms"] = .int(j.catchupWindowMs)
        o["enabled"] = .bool(j.enabled)
        o["output"] = [
            "max_line_bytes": .int(Int64(j.output.maxLineBytes)), "max_bytes": .int(Int64(j.output.maxBytes)),
            "keep_bytes": .int(Int64(j.output.keepBytes)),
        ]
        o["secrets"] = .array(j.secrets.map(JSONValue.string))
        o["limits"] = [
            "memory_bytes": j.limits.memoryBytes.map(JSONValue.int) ?? .null,
            "cpu_percent": j.limits.cpuPercent.map { .int(Int64($0)) } ?? .null,
            "tasks": j.limits.tasks.map { .int(Int64($0)) } ?? .null,
        ]
        o["notify"] = .array(j.notify.map(encode))
        o["location"] = encode(j.location)
        return .object(o)
    }

    static func encode(_ n: NotifySpec) -> JSONValue {
        var o: OrderedDictionary<String, JSONValue> = [:]
        o["on"] = .array(NotifyEvent.allCases.filter { n.on.contains($0) }.map { .string($0.rawValue) })
        switch n.target {
        case let .command(argv): o["command"] = .array(argv.map(JSONValue.string))
        case let .webhook(w):
            o["webhook"] = [
                "url": .string(w.url), "headers": .array(w.headers.map { [.string($0.key), .string($0.value)] }),
                "secret_env": w.secretEnv.map(JSONValue.string) ?? .null, "ca_file": w.caFile.map(JSONValue.string) ?? .null,
                "timeout_ms": .int(w.timeoutMs),
                "retries": .int(Int64(w.retries)),
            ]
        }
        o["location"] = encode(n.location)
        return .object(o)
    }

    static func encode(_ s: ScheduleSpec) -> JSONValue {
        switch s {
        case .manual: ["kind": "manual"]
        case let .cron(e): ["kind": "cron", "expression": .string(e)]
        case .reboot: ["kind": "reboot"]
        case let .every(interval, offset):
            ["kind": "every", "interval_ms": .int(interval), "offset_ms": offset.map(JSONValue.int) ?? .null]
        case let .at(instants): ["kind": "at", "instants_ms": .array(instants.map { .int($0.unixMillis) })]
        }
    }

    static func encode(_ l: SourceLocation?) -> JSONValue {
        guard let l else { return .null }
        return [.string(l.file), .int(Int64(l.line)), .int(Int64(l.column))]
    }

    // MARK: - Writing (the same bytes as `encode(_:)` then `JSONValue.encode(into:)`)

    /// Writes `set` as ``encode(_:)-(JobSet)`` would encode it, without the intermediate tree
    /// (the loader child's answer; see ``JSONWriter``).
    static func write(_ set: JobSet, into w: inout JSONWriter) {
        w.beginObject()
        w.key("revision")
        w.string(set.revision)
        w.key("files")
        w.beginArray()
        for f in set.files { w.string(f) }
        w.endArray()
        w.key("jobs")
        w.beginArray()
        for j in set.jobs.values { write(j, into: &w) }
        w.endArray()
        w.endObject()
    }

    static func write(_ j: JobSpec, into w: inout JSONWriter) {
        w.beginObject()
        w.key("id")
        w.string(j.id)
        w.key("description")
        w.string(j.description)
        w.key("schedule")
        write(j.schedule, into: &w)
        w.key("timezone")
        w.string(j.timezone)
        w.key("dst")
        w.beginObject()
        w.key("gap")
        w.string(j.dst.gap.rawValue)
        w.key("overlap")
        w.string(j.dst.overlap.rawValue)
        w.endObject()
        w.key("jitter_ms")
        w.int(j.jitterMs)
        switch j.command {
        case let .argv(a):
            w.key("argv")
            w.beginArray()
            for arg in a { w.string(arg) }
            w.endArray()
        case let .shell(s):
            w.key("shell")
            w.string(s)
        }
        w.key("workdir")
        w.string(j.workdir)
        w.key("env")
        w.beginArray()
        for (k, v) in j.env {
            w.beginArray()
            w.string(k)
            w.string(v)
            w.endArray()
        }
        w.endArray()
        w.key("env_file")
        w.string(j.envFile)
        w.key("user")
        w.string(j.user)
        w.key("group")
        w.string(j.group)
        w.key("umask")
        w.int(j.umask.map { Int64($0) })
        w.key("timeout_ms")
        w.int(j.timeoutMs)
        w.key("kill_grace_ms")
        w.int(j.killGraceMs)
        w.key("retry")
        w.beginObject()
        w.key("attempts")
        w.int(Int64(j.retry.attempts))
        w.key("backoff")
        w.string(j.retry.backoff.rawValue)
        w.key("delay_ms")
        w.int(j.retry.delayMs)
        w.key("max_delay_ms")
        w.int(j.retry.maxDelayMs)
        w.key("jitter_bits")
        w.string(String(j.retry.jitter.bitPattern))
        w.key("on")
        w.beginArray()
        for c in RetryPolicy.Condition.allCases where j.retry.on.contains(c) { w.string(c.rawValue) }
        w.endArray()
        w.key("exit_codes")
        if let codes = j.retry.exitCodes {
            w.beginArray()
            for c in codes { w.int(Int64(c)) }
            w.endArray()
        } else {
            w.null()
        }
        w.endObject()
        w.key("success_exit_codes")
        w.beginArray()
        for c in j.successExitCodes { w.int(Int64(c)) }
        w.endArray()
        w.key("needs")
        w.beginArray()
        for n in j.needs {
            w.beginObject()
            w.key("job")
            w.string(n.job)
            w.key("on")
            w.string(n.on.rawValue)
            w.key("location")
            write(n.location, into: &w)
            w.endObject()
        }
        w.endArray()
        w.key("concurrency")
        w.string(j.concurrency.rawValue)
        w.key("on_agent_restart")
        w.string(j.onAgentRestart.rawValue)
        w.key("reboot")
        w.string(j.reboot.rawValue)
        w.key("lock")
        w.string(j.lock.rawValue)
        w.key("on_lost")
        w.string(j.onLost.rawValue)
        w.key("fleet_unavailable")
        w.string(j.fleetUnavailable.rawValue)
        w.key("lease_ms")
        w.int(j.leaseMs)
        w.key("catchup")
        w.string(j.catchup.rawValue)
        w.key("catchup_window_ms")
        w.int(j.catchupWindowMs)
        w.key("enabled")
        w.bool(j.enabled)
        w.key("output")
        w.beginObject()
        w.key("max_line_bytes")
        w.int(Int64(j.output.maxLineBytes))
        w.key("max_bytes")
        w.int(Int64(j.output.maxBytes))
        w.key("keep_bytes")
        w.int(Int64(j.output.keepBytes))
        w.endObject()
        w.key("secrets")
        w.beginArray()
        for s in j.secrets { w.string(s) }
        w.endArray()
        w.key("limits")
        w.beginObject()
        w.key("memory_bytes")
        w.int(j.limits.memoryBytes)
        w.key("cpu_percent")
        w.int(j.limits.cpuPercent.map { Int64($0) })
        w.key("tasks")
        w.int(j.limits.tasks.map { Int64($0) })
        w.endObject()
        // A few entries at most: through the tree, so there is one encoder of their shape.
        w.key("notify")
        w.value(.array(j.notify.map(encode)))
        w.key("location")
        write(j.location, into: &w)
        w.endObject()
    }

    static func write(_ s: ScheduleSpec, into w: inout JSONWriter) {
        w.beginObject()
        switch s {
        case .manual:
            w.key("kind")
            w.string("manual")
        case let .cron(e):
            w.key("kind")
            w.string("cron")
            w.key("expression")
            w.string(e)
        case .reboot:
            w.key("kind")
            w.string("reboot")
        case let .every(interval, offset):
            w.key("kind")
            w.string("every")
            w.key("interval_ms")
            w.int(interval)
            w.key("offset_ms")
            w.int(offset)
        case let .at(instants):
            w.key("kind")
            w.string("at")
            w.key("instants_ms")
            w.beginArray()
            for i in instants { w.int(i.unixMillis) }
            w.endArray()
        }
        w.endObject()
    }

    static func write(_ l: SourceLocation?, into w: inout JSONWriter) {
        guard let l else { return w.null() }
        w.beginArray()
        w.string(l.file)
        w.int(Int64(l.line))
        w.int(Int64(l.column))
        w.endArray()
    }

    // MARK: - Decoding

    static func decodeSet(_ v: JSONValue) throws(DecodeError) -> JobSet {
        let o = try object(v, "job set")
        var jobs: OrderedDictionary<JobID, JobSpec> = [:]
        let shared = SharedValues()
        for item in try array(o["jobs"], "jobs") {
            let job = try decodeJob(item, shared: shared)
            guard jobs.updateValue(job, forKey: job.id) == nil else { throw DecodeError("job `\(job.id)` appears twice") }
        }
        return JobSet(
            jobs: jobs, files: try array(o["files"], "files").map { v throws(DecodeError) in try string(v, "files") },
            revision: try string(o["revision"], "revision"))
    }

    static func decodeJob(_ v: JSONValue, shared: SharedValues = SharedValues()) throws(DecodeError) -> JobSpec {
        let o = try object(v, "job")
        let id = try string(o["id"], "id")
        let command: CommandSpec
        if let argv = o["argv"] {
            command = .argv(try array(argv, "argv").map { v throws(DecodeError) in try string(v, "argv") })
        } else {
            command = .shell(try string(o["shell"], "shell"))
        }
        var j = JobSpec(id: id, schedule: try decodeSchedule(o["schedule"], shared: shared), command: command)
        j.description = try optionalString(o["description"], "description")
        // Zone names longer than 15 bytes ("America/Los_Angeles") are heap strings: one copy
        // per name in the set rather than one per job.
        j.timezone = try optionalString(o["timezone"], "timezone").map { shared.intern($0) }
        let dst = try object(o["dst"], "dst")
        j.dst = DSTPolicy(gap: try enumValue(dst["gap"], "dst.gap"), overlap: try enumValue(dst["overlap"], "dst.overlap"))
        j.jitterMs = try int(o["jitter_ms"], "jitter_ms")
        j.workdir = try optionalString(o["workdir"], "workdir")
        if let env = o["env"], let known = shared.envs[.init(env)] {
            j.env = known
        } else {
            for pair in try array(o["env"], "env") {
                let kv = try array(pair, "env entry")
                guard kv.count == 2 else { throw DecodeError("env entry: expected [name, value]") }
                j.env[try string(kv[0], "env name")] = try string(kv[1], "env value")
            }
            if let env = o["env"], !j.env.isEmpty { shared.envs[.init(env)] = j.env }
        }
        j.envFile = try optionalString(o["env_file"], "env_file")
        j.user = try optionalString(o["user"], "user")
        j.group = try optionalString(o["group"], "group")
        if let u = try optionalInt(o["umask"], "umask") {
            guard let mask = UInt16(exactly: u), mask <= 0o777 else { throw DecodeError("umask out of range") }
            j.umask = mask
        }
        j.timeoutMs = try optionalInt(o["timeout_ms"], "timeout_ms")
        j.killGraceMs = try int(o["kill_grace_ms"], "kill_grace_ms")
        let r = try object(o["retry"], "retry")
        var retry = RetryPolicy()
        retry.attempts = try smallInt(r["attempts"], "retry.attempts")
        retry.backoff = try enumValue(r["backoff"], "retry.backoff")
        retry.delayMs = try int(r["delay_ms"], "retry.delay_ms")
        retry.maxDelayMs = try optionalInt(r["max_delay_ms"], "retry.max_delay_ms")
        guard let bits = UInt64(try string(r["jitter_bits"], "retry.jitter_bits")) else { throw DecodeError("retry.jitter_bits: not a number") }
        retry.jitter = Double(bitPattern: bits)
        retry.on = Set(try array(r["on"], "retry.on").map { v throws(DecodeError) -> RetryPolicy.Condition in try enumValue(v, "retry.on") })
        if let codes = r["exit_codes"], codes != .null {
            retry.exitCodes = try array(codes, "retry.exit_codes").map { v throws(DecodeError) in try int32(v, "retry.exit_codes") }
        }
        j.retry = retry
        if let codes = o["success_exit_codes"], let known = shared.codes[.init(codes)] {
            j.successExitCodes = known
        } else {
            j.successExitCodes = try array(o["success_exit_codes"], "success_exit_codes").map { v throws(DecodeError) in try int32(v, "success_exit_codes") }
            if let codes = o["success_exit_codes"] { shared.codes[.init(codes)] = j.successExitCodes }
        }
        j.needs = try array(o["needs"], "needs").map { v throws(DecodeError) -> Need in
            let n = try object(v, "need")
            return Need(
                job: try string(n["job"], "needs.job"), on: try enumValue(n["on"], "needs.on"),
                location: try decodeLocation(n["location"], shared: shared))
        }
        j.concurrency = try enumValue(o["concurrency"], "concurrency")
        // Optional on the wire (absent: the default), so an answer without it stays readable.
        if let v = o["on_agent_restart"] { j.onAgentRestart = try enumValue(v, "on_agent_restart") }
        if let v = o["reboot"] { j.reboot = try enumValue(v, "reboot") }
        // Optional on the wire, like `reboot`: an older child's answer has no fleet fields.
        if let v = o["lock"] { j.lock = try enumValue(v, "lock") }
        if let v = o["on_lost"] { j.onLost = try enumValue(v, "on_lost") }
        if let v = o["fleet_unavailable"] { j.fleetUnavailable = try enumValue(v, "fleet_unavailable") }
        if let v = o["lease_ms"] { j.leaseMs = try int(v, "lease_ms") }
        j.catchup = try enumValue(o["catchup"], "catchup")
        j.catchupWindowMs = try int(o["catchup_window_ms"], "catchup_window_ms")
        guard case let .bool(enabled)? = o["enabled"] else { throw DecodeError("enabled: expected a boolean") }
        j.enabled = enabled
        let out = try object(o["output"], "output")
        j.output = OutputLimits(
            maxLineBytes: try smallInt(out["max_line_bytes"], "output.max_line_bytes"),
            maxBytes: try smallInt(out["max_bytes"], "output.max_bytes"),
            keepBytes: try smallInt(out["keep_bytes"], "output.keep_bytes"))
        j.secrets = try array(o["secrets"], "secrets").map { v throws(DecodeError) in try string(v, "secrets") }
        j.limits = try decodeLimits(o["limits"])
        // Optional on the wire (absent: none), as `on_agent_restart`.
        if let v = o["notify"] { j.notify = try array(v, "notify").map { v throws(DecodeError) in try decodeNotify(v, shared: shared) } }
        j.location = try decodeLocation(o["location"], shared: shared)
        // One box per distinct policy in the set (see `JobSpec.shareRetry(with:)`); kept from a
        // finished job, so that no later change copies the job's fields.
        let key = SharedValues.RetryKey(j.retry)
        if let known = shared.retries[key] {
            j.shareRetry(with: known)
        } else {
            shared.retries[key] = j
        }
        return j
    }

    static func decodeSchedule(_ v: JSONValue?, shared: SharedValues = SharedValues()) throws(DecodeError) -> ScheduleSpec {
        let o = try object(v, "schedule")
        switch try string(o["kind"], "schedule.kind") {
        case "manual": return .manual
        case "reboot": return .reboot
        case "cron": return .cron(shared.intern(try string(o["expression"], "schedule.expression")))
        case "every":
            return .every(
                intervalMs: try int(o["interval_ms"], "schedule.interval_ms"),
                offsetMs: try optionalInt(o["offset_ms"], "schedule.offset_ms"))
        case "at":
            return .at(
                try array(o["instants_ms"], "schedule.instants_ms").map { v throws(DecodeError) in
                    Instant(unixMillis: try int(v, "schedule.instants_ms"))
                })
        case let other: throw DecodeError("schedule.kind: unknown kind `\(other)`")
        }
    }

    /// The URL and header values are checked again: they go onto a socket as they are.
    static func decodeNotify(_ v: JSONValue, shared: SharedValues = SharedValues()) throws(DecodeError) -> NotifySpec {
        let o = try object(v, "notify entry")
        let on = Set(try array(o["on"], "notify.on").map { v throws(DecodeError) -> NotifyEvent in try enumValue(v, "notify.on") })
        let target: NotifyTarget
        if let c = o["command"] {
            let argv = try array(c, "notify.command").map { v throws(DecodeError) in try string(v, "notify.command") }
            guard !argv.isEmpty else { throw DecodeError("notify.command: empty") }
            target = .command(argv)
        } else {
            let w = try object(o["webhook"], "notify.webhook")
            var spec = WebhookSpec(url: try string(w["url"], "notify.webhook.url"))
            do throws(WebhookURL.ParseError) { _ = try WebhookURL.parse(spec.url) } catch {
                throw DecodeError("notify.webhook.url: \(error.description)")
            }
            for pair in try array(w["headers"], "notify.webhook.headers") {
                let kv = try array(pair, "notify.webhook.headers entry")
                guard kv.count == 2 else { throw DecodeError("notify.webhook.headers entry: expected [name, value]") }
                let name = try string(kv[0], "header name")
                let value = try string(kv[1], "header value")
                guard !(name + value).unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }) else {
                    throw DecodeError("notify.webhook.headers: a line break in `\(name)`")
                }
                spec.headers[name] = value
            }
            spec.secretEnv = try optionalString(w["secret_env"], "notify.webhook.secret_env")
            spec.caFile = try optionalString(w["ca_file"], "notify.webhook.ca_file")
            spec.timeoutMs = try int(w["timeout_ms"], "notify.webhook.timeout_ms")
            guard spec.timeoutMs > 0 else { throw DecodeError("notify.webhook.timeout_ms: must be positive") }
            spec.retries = try smallInt(w["retries"], "notify.webhook.retries")
            guard spec.retries <= WebhookSpec.maxRetries else { throw DecodeError("notify.webhook.retries: out of range") }
            target = .webhook(spec)
        }
        return NotifySpec(on: on, target: target, location: try decodeLocation(o["location"], shared: shared))
    }

    /// The ranges are checked again: the values go to cgroup files as they are.
    static func decodeLimits(_ v: JSONValue?) throws(DecodeError) -> ResourceLimits {
        let o = try object(v, "limits")
        var l = ResourceLimits()
        if let m = try optionalInt(o["memory_bytes"], "limits.memory_bytes") {
            guard m >= ResourceLimits.minMemoryBytes, m <= ResourceLimits.maxMemoryBytes else { throw DecodeError("limits.memory_bytes: \(m) is out of range") }
            l.memoryBytes = m
        }
        if let c = try optionalInt(o["cpu_percent"], "limits.cpu_percent") {
            guard let c = Int(exactly: c), ResourceLimits.cpuPercentRange.contains(c) else { throw DecodeError("limits.cpu_percent: \(c) is out of range") }
            l.cpuPercent = c
        }
        if let t = try optionalInt(o["tasks"], "limits.tasks") {
            guard let t = Int(exactly: t), ResourceLimits.tasksRange.contains(t) else { throw DecodeError("limits.tasks: \(t) is out of range") }
            l.tasks = t
        }
        return l
    }

    static func decodeLocation(_ v: JSONValue?, shared: SharedValues = SharedValues()) throws(DecodeError) -> SourceLocation? {
        guard let v, v != .null else { return nil }
        let a = try array(v, "location")
        guard a.count == 3 else { throw DecodeError("location: expected [file, line, column]") }
        guard case let .string(file) = a[0] else { throw DecodeError("location: expected a string") }
        return SourceLocation(file: shared.intern(file), line: try smallInt(a[1], "location"), column: try smallInt(a[2], "location"))
    }

    // MARK: - Typed access

    static func object(_ v: JSONValue?, _ what: String) throws(DecodeError) -> OrderedDictionary<String, JSONValue> {
        guard case let .object(o)? = v else { throw DecodeError("\(what): expected an object") }
        return o
    }

    static func array(_ v: JSONValue?, _ what: String) throws(DecodeError) -> [JSONValue] {
        guard case let .array(a)? = v else { throw DecodeError("\(what): expected an array") }
        return a
    }

    static func string(_ v: JSONValue?, _ what: String) throws(DecodeError) -> String {
        guard case let .string(s)? = v else { throw DecodeError("\(what): expected a string") }
        return detached(s)
    }

    /// `s` in an allocation of its own. A decoded job set lives for hours; the JSON tree it came
    /// from (about five times its size) is freed at once. A string shared with the tree keeps
    /// the tree's malloc page resident for as long as the job set lives: 1,000 jobs sharing
    /// their file name with a freed tree pinned 2.8 MB of free heap (`malloc_stats`: 4.9 MB
    /// obtained, 2.1 MB in use; idle RssAnon 6.7 MiB, 3.9 MiB with this copy). Strings of at
    /// most 15 UTF-8 bytes are stored inline and need no copy. (Parsing the tree on a thread of
    /// its own, hence in another malloc arena, was tried too: no further gain once nothing is
    /// shared.)
    @inline(__always)
    static func detached(_ s: String) -> String {
        let n = s.utf8.count
        guard n > 15 else { return s }
        return String(unsafeUninitializedCapacity: n) { buffer in
            _ = buffer.initialize(fromContentsOf: s.utf8)
            return n
        }
    }

    static func optionalString(_ v: JSONValue?, _ what: String) throws(DecodeError) -> String? {
        guard let v, v != .null else { return nil }
        return try string(v, what)
    }

    static func int(_ v: JSONValue?, _ what: String) throws(DecodeError) -> Int64 {
        guard case let .int(i)? = v else { throw DecodeError("\(what): expected an integer") }
        return i
    }

    static func optionalInt(_ v: JSONValue?, _ what: String) throws(DecodeError) -> Int64? {
        guard let v, v != .null else { return nil }
        return try int(v, what)
    }

    /// An `Int` that is also a sane count (no negative sizes or attempts from a bad answer).
    static func smallInt(_ v: JSONValue?, _ what: String) throws(DecodeError) -> Int {
        let i = try int(v, what)
        guard i >= 0, i <= Int64(Int32.max) else { throw DecodeError("\(what): \(i) is out of range") }
        return Int(i)
    }

    static func int32(_ v: JSONValue?, _ what: String) throws(DecodeError) -> Int32 {
        guard let i = Int32(exactly: try int(v, what)) else { throw DecodeError("\(what): out of range") }
        return i
    }

    static func enumValue<E: RawRepresentable>(_ v: JSONValue?, _ what: String) throws(DecodeError) -> E where E.RawValue == String {
        let s = try string(v, what)
        guard let e = E(rawValue: s) else { throw DecodeError("\(what): unknown value `\(s)`") }
        return e
    }
}

/// Values that many jobs of one set have in common, decoded once and then shared by every job
/// that has them: the file name of each job's location, the `env` that `defaults:` gives a whole
/// file, `success_exit_codes`, `retry.on`. A decoded set lives as long as it runs, and each copy
/// is an allocation of its own (``JobWire/detached(_:)``): 1,000 jobs of ten files held 1,000
/// copies of ten file names. Keyed by the wire value compared byte for byte (``Exact``), so
/// only identical values are shared. Used by one decode at a time (not Sendable).
final class SharedValues {
    var strings: [Exact: String] = [:]
    var envs: [Exact: OrderedDictionary<String, String>] = [:]
    var codes: [Exact: [Int32]] = [:]
    /// A job holding each distinct retry policy decoded so far (its box is the one to share).
    var retries: [RetryKey: JobSpec] = [:]

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

    /// One copy of each distinct string (by its exact bytes), detached from the wire's buffer.
    func intern(_ s: String) -> String {
        if let known = strings[.init(s)] { return known }
        let copy = JobWire.detached(s)
        strings[.init(s)] = copy
        return copy
    }

    /// A wire value as a key equal only to the very same value: the same case, strings by
    /// their UTF-8 bytes, numbers by their bits, arrays and objects element by element in order.
    /// Swift's `==` on strings (and so `JSONValue`'s) is canonical equivalence: a precomposed "é"
    /// equals "e" followed by U+0301, and keyed by it a job would get another job's bytes
    /// (another file's name, another env value).
    struct Exact: Hashable {
        let value: JSONValue
        init(_ value: JSONValue) { self.value = value }
        init(_ string: String) { value = .string(string) }

        static func == (a: Exact, b: Exact) -> Bool { same(a.value, b.value) }

        func hash(into h: inout Hasher) { Self.hash(value, into: &h) }

        private static func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
            switch (a, b) {
            case (.null, .null): return true
            case let (.bool(x), .bool(y)): return x == y
            case let (.int(x), .int(y)): return x == y
            case let (.double(x), .double(y)): return x.bitPattern == y.bitPattern
            case let (.string(x), .string(y)): return x.utf8.elementsEqual(y.utf8)
            case let (.array(x), .array(y)): return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
            case let (.object(x), .object(y)):
                return x.count == y.count
                    && zip(x, y).allSatisfy { $0.key.utf8.elementsEqual($1.key.utf8) && same($0.value, $1.value) }
            default: return false
            }
        }

        private static func hash(_ v: JSONValue, into h: inout Hasher) {
            switch v {
            case .null: h.combine(0 as UInt8)
            case let .bool(b):
                h.combine(1 as UInt8)
                h.combine(b)
            case let .int(i):
                h.combine(2 as UInt8)
                h.combine(i)
            case let .double(d):
                h.combine(3 as UInt8)
                h.combine(d.bitPattern)
            case let .string(s):
                h.combine(4 as UInt8)
                h.combine(s.utf8.count)
                for byte in s.utf8 { h.combine(byte) }
            case let .array(items):
                h.combine(5 as UInt8)
                h.combine(items.count)
                for item in items { hash(item, into: &h) }
            case let .object(o):
                h.combine(6 as UInt8)
                h.combine(o.count)
                for (key, value) in o {
                    h.combine(key.utf8.count)
                    for byte in key.utf8 { h.combine(byte) }
                    hash(value, into: &h)
                }
            }
        }
    }
}
