import OrderedCollections
import SundialCore

/// Decodes one schema-valid job mapping (with its file's `defaults`) into a ``JobSpec``.
///
/// The schema has already checked shapes and types, so this stage checks values: durations
/// in range, times that exist, zones that exist, cron syntax, readable `env_file`s. Each
/// problem is reported at the node that holds the value; a value taken from `defaults` is
/// reported at its place in `defaults` (once, however many jobs inherit it).
struct JobDecoder {
    let environment: ConfigEnvironment
    private(set) var diagnostics: [Diagnostic] = []
    /// The file's `defaults`, read once for all its jobs rather than once per job (issue 15:
    /// with 100 jobs a file, the defaults' keys and retry policy were decoded 100 times).
    /// Keyed by the node's position, which names one node of one file.
    private var defaultsMemo: (location: SourceLocation, slots: [[YAMLNode]])?
    /// The retry policy the `defaults`' `retry` node makes of the default policy.
    private var defaultRetryMemo: (location: SourceLocation, policy: RetryPolicy)?

    init(environment: ConfigEnvironment) { self.environment = environment }

    /// Reports every string under `node` (keys included) that contains a NUL character.
    ///
    /// Recursive (the node is already depth-bounded by the composer) and allocation-free:
    /// with a work-list array and `UTF8View.contains`, it ran 3,000 instructions a call, 3.5 %
    /// of a loader child's (docs/benchmarks.md, nineteenth session).
    mutating func rejectNUL(in node: YAMLNode, key: String) {
        switch node.kind {
        case let .scalar(text, _):
            if YAMLNode.containsNUL(text) {
                error(
                    node, "`\(key)` contains a NUL character, which no process can receive",
                    hint: "remove the \\0 (a NUL ends a C string: the value would be cut short)")
            }
        case let .sequence(items):
            for item in items { rejectNUL(in: item, key: key) }
        case let .mapping(pairs):
            for (k, v) in pairs {
                rejectNUL(in: k, key: key)
                rejectNUL(in: v, key: key)
            }
        }
    }

    private mutating func slots(ofDefaults defaults: YAMLNode?) -> [[YAMLNode]] {
        guard let defaults else { return JobFields.slots(ofDefaults: nil) }
        if let memo = defaultsMemo, memo.location == defaults.location { return memo.slots }
        let slots = JobFields.slots(ofDefaults: defaults)
        defaultsMemo = (defaults.location, slots)
        return slots
    }

    mutating func decode(id: JobID, idLocation: SourceLocation, node: YAMLNode, defaults: YAMLNode?) -> JobSpec? {
        let defaultSlots = slots(ofDefaults: defaults)
        let fields = JobFields(job: node, defaultSlots: defaultSlots)

        var command: CommandSpec = .argv([])
        if let argv = fields[.command]?.first {
            command = .argv(strings(argv))
        } else if let shell = fields[.shell]?.first?.scalarText {
            command = .shell(shell)
        }
        var job = JobSpec(id: id, command: command)
        job.location = idLocation
        // What reaches execve must be C strings: a NUL (written `"\0"` in YAML) would cut an
        // argument or a variable short without a word, so it is refused here, where it has a
        // position.
        for key in [JobFields.Key.command, .shell, .workdir, .envFile, .user, .group, .env, .notify] {
            for n in fields[key] ?? [] { rejectNUL(in: n, key: key.name) }
        }
        job.description = fields[.description]?.first?.scalarText

        if let n = fields[.timezone]?.first, let zone = n.scalarText {
            if environment.zoneExists(zone) {
                job.timezone = zone
            } else {
                error(n, "unknown time zone `\(zone)`", hint: "use an IANA name such as `Europe/Berlin` or `UTC` (see /usr/share/zoneinfo)")
            }
        }
        if let n = fields[.schedule]?.first, let text = n.scalarText {
            job.schedule = decodeCron(text, node: n)
        } else if let n = fields[.every]?.first {
            let interval = duration(n, min: 1, what: "every")
            let offset = fields[.offset]?.first.map { duration($0, min: 0, what: "offset") }
            job.schedule = .every(intervalMs: interval, offsetMs: offset)
        } else if let n = fields[.at]?.first {
            let items: [YAMLNode]
            if case let .sequence(seq) = n.kind { items = seq } else { items = [n] }
            var instants: [Instant] = []
            for item in items {
                guard let text = item.scalarText else { continue }
                do throws(RFC3339.ParseError) {
                    let instant = try RFC3339.parse(text).instant
                    // The offset can carry a valid local time past the four-digit years in UTC
                    // (`9999-12-31T23:59:59-23:59` is year 10000), and every reader of a stored
                    // or reported instant (`status`, `why`) expects RFC 3339's 0001-9999.
                    guard Self.atRange.contains(instant.unixMillis) else {
                        self.error(
                            item, "time `\(text)` is outside the years 0001-9999 in UTC",
                            hint: "write a time between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z")
                        continue
                    }
                    instants.append(instant)
                } catch {
                    self.error(
                        item, "invalid time `\(text)`: \(error.message)",
                        hint: "write RFC 3339 with an offset, e.g. 2026-12-24T18:00:00+01:00")
                }
            }
            job.schedule = .at(instants.sorted())
        }
        if let n = fields[.dst] {
            for entry in n {
                if let g = entry["gap"]?.scalarText, let v = DSTPolicy.Gap(rawValue: g) { job.dst.gap = v }
                if let o = entry["overlap"]?.scalarText, let v = DSTPolicy.Overlap(rawValue: o) { job.dst.overlap = v }
            }
        }
        if let n = fields[.jitter]?.first { job.jitterMs = duration(n, min: 0, what: "jitter") }
        if let n = fields[.workdir]?.first { job.workdir = n.scalarText }
        for envNode in fields[.env] ?? [] {
            for (k, _, v) in envNode.entries { job.env[k] = v.scalarText ?? "" }
        }
        if let n = fields[.envFile]?.first, let path = n.scalarText {
            job.envFile = path
            // A warning, not an error: CI checks files for boxes whose env files (often secrets)
            // are deployed separately. On the box, a run whose env_file is unreadable fails with
            // `launch_failed` and says why, while the rest of the configuration keeps running.
            if !environment.fileReadable(path) {
                diagnostics.append(
                    Diagnostic(
                        .warning, at: n.location, "env_file `\(path)` cannot be read here",
                        hint: "runs of this job will fail until it exists and the agent may read it"))
            }
        }
        job.user = fields[.user]?.first?.scalarText
        job.group = fields[.group]?.first?.scalarText
        if let n = fields[.umask]?.first, let text = n.scalarText { job.umask = UInt16(text, radix: 8) }
        if let n = fields[.timeout]?.first {
            job.timeoutMs = duration(n, min: 1, what: "timeout")
        }
        if let n = fields[.killGrace]?.first { job.killGraceMs = duration(n, min: 0, what: "kill_grace") }
        if let retries = fields[.retry] {
            // Into a local first: `JobSpec.retry` is a shared box, and each change makes a new one.
            var retry = job.retry
            var nodes = retries[...]
            // The defaults' node comes first; what it makes of the default policy is the same
            // for every job (and its problems are reported once, at its place, either way).
            if let fromDefaults = defaultSlots[JobFields.Key.retry.rawValue].first, fromDefaults.location == retries[0].location {
                if let memo = defaultRetryMemo, memo.location == fromDefaults.location {
                    retry = memo.policy
                } else {
                    decodeRetry(fromDefaults, into: &retry)
                    defaultRetryMemo = (fromDefaults.location, retry)
                }
                nodes = nodes.dropFirst()
            }
            for r in nodes { decodeRetry(r, into: &retry) }
            job.retry = retry
        }
        if let n = fields[.successExitCodes]?.first { job.successExitCodes = ints(n).map { Int32($0) } }
        if let n = fields[.needs]?.first, case let .sequence(items) = n.kind {
            for item in items {
                if let name = item.scalarText {
                    job.needs.append(Need(job: name, on: .success, location: item.location))
                } else if let name = item["job"]?.scalarText {
                    let on = item["on"]?.scalarText.flatMap(Need.Condition.init(rawValue:)) ?? .success
                    job.needs.append(Need(job: name, on: on, location: item["job"]?.location ?? item.location))
                }
            }
        }
        if let v = fields[.concurrency]?.first?.scalarText, let c = ConcurrencyPolicy(rawValue: v) { job.concurrency = c }
        if let v = fields[.catchup]?.first?.scalarText, let c = CatchupPolicy(rawValue: v) { job.catchup = c }
        if let v = fields[.onAgentRestart]?.first?.scalarText, let p = AgentRestartPolicy(rawValue: v) { job.onAgentRestart = p }
        if let v = fields[.reboot]?.first?.scalarText, let p = RebootPolicy(rawValue: v) { job.reboot = p }
        decodeFleet(fields, own: node, into: &job)
        if let n = fields[.catchupWindow]?.first { job.catchupWindowMs = duration(n, min: 1, what: "catchup_window") }
        if let v = fields[.enabled]?.first?.scalarText { job.enabled = v.lowercased() != "false" }
        for o in fields[.output] ?? [] {
            if let v = o["max_line_bytes"].flatMap(int) { job.output.maxLineBytes = v }
            if let v = o["max_bytes"].flatMap(int) { job.output.maxBytes = v }
            if let v = o["keep_bytes"].flatMap(int) { job.output.keepBytes = v }
        }
        if let n = fields[.secrets]?.first { job.secrets = strings(n) }
        for l in fields[.limits] ?? [] { decodeLimits(l, into: &job.limits) }
        if let n = fields[.notify]?.first, case let .sequence(items) = n.kind {
            job.notify = items.enumerated().compactMap { i, item in decodeNotify(item, index: i, envFile: job.envFile) }
        }
        // Returned even when a value was wrong (the set is invalid anyway), so that the checks
        // across jobs (unknown `needs`, cycles) still run and every problem is reported at once.
        return job
    }

    // MARK: - Values

    private mutating func decodeCron(_ text: String, node: YAMLNode) -> ScheduleSpec {
        let trimmed = text.trimmingSpaces
        if trimmed.lowercased() == "@reboot" { return .reboot }
        for problem in CronSyntax.problems(trimmed) {
            if problem.isWarning {
                report(.warning, node, "cron expression `\(text)`: \(problem.message)", column: problem.column)
            } else {
                error(node, "invalid cron expression `\(text)`: \(problem.message)", column: problem.column)
            }
        }
        return .cron(trimmed)
    }

    /// One pass over the mapping's keys (keys are unique: the reader refuses duplicates), not a
    /// lookup per field: `retry` is on most jobs, often twice (defaults and the job's own).
    private mutating func decodeRetry(_ n: YAMLNode, into r: inout RetryPolicy) {
        guard case let .mapping(pairs) = n.kind else { return }
        for (keyNode, v) in pairs {
            switch keyNode.scalarText {
            case "attempts": if let x = int(v) { r.attempts = x }
            case "backoff": if let x = v.scalarText, let b = RetryPolicy.Backoff(rawValue: x) { r.backoff = b }
            case "delay": r.delayMs = duration(v, min: 0, what: "retry.delay")
            case "max_delay": r.maxDelayMs = duration(v, min: 0, what: "retry.max_delay")
            case "jitter": if let j = v.scalarText, let x = Double(j) { r.jitter = x }
            case "on": r.on = Set(strings(v).compactMap(RetryPolicy.Condition.init(rawValue:)))
            case "exit_codes": r.exitCodes = ints(v).map { Int32($0) }
            default: break
            }
        }
    }

    /// One `notify:` entry. The schema has checked the shape (`on`, exactly one target, types);
    /// this checks what it cannot: the URL, that a signature key has somewhere to come from,
    /// header values that would break the request. Each error names the entry (`notify[0]: `).
    private mutating func decodeNotify(_ n: YAMLNode, index: Int, envFile: String?) -> NotifySpec? {
        let prefix = "notify[\(index)]: "
        var on = Set<NotifyEvent>()
        if let o = n["on"] {
            if let one = o.scalarText.flatMap(NotifyEvent.init(rawValue:)) {
                on = [one]
            } else {
                on = Set(strings(o).compactMap(NotifyEvent.init(rawValue:)))
            }
        }
        if let c = n["command"] {
            return NotifySpec(on: on, target: .command(strings(c)), location: n.location)
        }
        guard let w = n["webhook"], let urlNode = w["url"], let text = urlNode.scalarText else { return nil }
        var ok = true
        var isTLS = false
        do throws(WebhookURL.ParseError) {
            isTLS = try WebhookURL.parse(text).isTLS
        } catch {
            ok = false
            self.error(
                // Not quoted: a URL's user part or path often holds a token, and this message
                // reaches the event log, the reload reply and the status page. Its location
                // names it.
                urlNode, prefix + "invalid webhook url: \(error.description)", hint: "write http://host[:port]/path or https://host[:port]/path",
                secret: true)
        }
        var spec = WebhookSpec(url: text)
        for (name, keyNode, value) in w["headers"]?.entries ?? [] {
            let v = value.scalarText ?? ""
            if v.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" }) {
                ok = false
                error(value, prefix + "header `\(name)` contains a line break, which would end the header early", secret: true)
            } else if Self.reservedHeaders.contains(name.lowercased()) {
                ok = false
                error(
                    keyNode, prefix + "header `\(name)` is set by the agent itself",
                    hint: "remove it; the agent sends Host, Content-Type, Content-Length, Connection and X-Sundial-Signature",
                    secret: true)
            } else {
                spec.headers[name] = v
            }
        }
        if let s = w["secret_env"] {
            spec.secretEnv = s.scalarText
            if envFile == nil {
                ok = false
                error(
                    s, prefix + "`secret_env` names a variable of the job's `env_file`, but the job has no `env_file`",
                    hint: "add `env_file:` with a line `\(s.scalarText ?? "NAME")=...`, readable by the agent only")
            }
        }
        if let c = w["ca_file"], let path = c.scalarText {
            if ok && !isTLS {
                ok = false
                error(
                    c, prefix + "`ca_file` verifies an https:// receiver, but the url is http://",
                    hint: "write the url with https://, or remove `ca_file`")
            } else if !path.hasPrefix("/") {
                ok = false
                // Checked here rather than by a schema pattern, for an error that says why.
                error(
                    c, prefix + "`ca_file` must be an absolute path (the delivery process does not run in the directory of the job file)",
                    hint: "e.g. /etc/sundial/hooks-ca.pem")
            } else {
                spec.caFile = path
            }
        }
        if let t = w["timeout"] { spec.timeoutMs = duration(t, min: 1, what: "notify[\(index)].webhook.timeout") }
        if let r = w["retries"].flatMap(int) { spec.retries = min(max(0, r), WebhookSpec.maxRetries) }
        return ok ? NotifySpec(on: on, target: .webhook(spec), location: n.location) : nil
    }

    /// Headers a webhook entry may not set: the agent writes them (a second `Content-Length`
    /// would make the request ambiguous).
    /// The instants an `at:` may name, in Unix milliseconds: 0001-01-01T00:00:00Z through
    /// 9999-12-31T23:59:59.999Z, what RFC 3339 can write with a `Z`.
    static let atRange: ClosedRange<Int64> = {
        let first = LocalDateTime(year: 1, month: 1, day: 1)
        let last = LocalDateTime(year: 9999, month: 12, day: 31, hour: 23, minute: 59, second: 59, millisecond: 999)
        return first.wallMillis...last.wallMillis
    }()

    static let reservedHeaders: Set<String> = ["host", "content-type", "content-length", "connection", "transfer-encoding", "x-sundial-signature"]

    /// `limits:` values. The schema has checked the shapes (a size pattern, `N%`, an integer);
    /// this checks the ranges, each error at its value.
    private mutating func decodeLimits(_ n: YAMLNode, into l: inout ResourceLimits) {
        if let m = n["memory"] {
            let text = int(m).map(String.init) ?? m.scalarText ?? ""
            if let bytes = ResourceLimits.parseSize(text), bytes >= ResourceLimits.minMemoryBytes, bytes <= ResourceLimits.maxMemoryBytes {
                l.memoryBytes = bytes
            } else {
                error(
                    m, "invalid memory limit `\(text)`: must be a size from 1M to 1024P",
                    hint: "write bytes or a number with a 1024-based unit K, M, G or T, e.g. 256M or 1G")
            }
        }
        if let c = n["cpu"] {
            let text = c.scalarText ?? ""
            if let pct = ResourceLimits.parseCPUPercent(text), ResourceLimits.cpuPercentRange.contains(pct) {
                l.cpuPercent = pct
            } else {
                error(
                    c, "invalid cpu limit `\(text)`: must be a whole percent of one CPU from 1% to 100000%",
                    hint: "e.g. 50% for half a CPU, 200% for two CPUs")
            }
        }
        if let t = n["tasks"] {
            if let v = int(t), ResourceLimits.tasksRange.contains(v) {
                l.tasks = v
            } else {
                error(t, "invalid tasks limit `\(t.scalarText ?? "")`: must be a whole number from 1 to 4194304")
            }
        }
    }

    /// `lock`, `on_lost`, `fleet_unavailable`, `lease` (docs/fleet.md). The enum values are the
    /// schema's to check; what is decided here is what the schema cannot see: a fleet claim is
    /// keyed by the scheduled instant, so a fleet-locked job needs instants that every box computes
    /// alike (a wall-clock schedule), and a lease short enough to be renewed in time is refused.
    ///
    /// A `lock: fleet` inherited from `defaults` by a job that cannot have it (manual, `@reboot`,
    /// `every` without `offset`) leaves that job local, with a warning: `defaults` speak for
    /// the scheduled jobs of the file.
    private mutating func decodeFleet(_ fields: JobFields, own node: YAMLNode, into job: inout JobSpec) {
        if let v = fields[.lock]?.first?.scalarText, let l = JobLock(rawValue: v) { job.lock = l }
        if let v = fields[.onLost]?.first?.scalarText, let a = FleetLostAction(rawValue: v) { job.onLost = a }
        if let v = fields[.fleetUnavailable]?.first?.scalarText, let p = FleetUnavailablePolicy(rawValue: v) {
            job.fleetUnavailable = p
        }
        if let n = fields[.lease]?.first { job.leaseMs = duration(n, min: 3_000, what: "lease") }
        guard job.lock == .fleet, let n = fields[.lock]?.first else { return }
        let wallClock: Bool
        switch job.schedule {
        case .cron, .at, .every(_, .some): wallClock = true
        case .every(_, nil), .manual, .reboot: wallClock = false
        }
        if !wallClock, node["lock"] == nil {
            job.lock = .local
            diagnostics.append(
                Diagnostic(
                    .warning, at: n.location,
                    "job `\(job.id)` inherits `lock: fleet` but has no instants on the wall clock: it stays local",
                    hint: "set `lock: local` in the job, or give it a `schedule`"))
            return
        }
        switch job.schedule {
        case .cron, .at, .every(_, .some): break
        case .every(_, nil):
            error(
                n, "`lock: fleet` needs instants every box computes alike; `every` without `offset` counts from each agent's start",
                hint: "add `offset: 0s` (instants counted from the epoch), or use `schedule`")
        case .manual, .reboot:
            error(
                n, "`lock: fleet` applies to scheduled instants; this job has none on the wall clock",
                hint: "give it a `schedule`, `at` or `every` with `offset`, or remove `lock: fleet`")
        }
    }

    private mutating func duration(_ n: YAMLNode, min: Int64, what: String) -> Int64 {
        guard let text = n.scalarText else { return 0 }
        do throws(DurationParser.ParseError) {
            let ms = try DurationParser.parseMilliseconds(text)
            if ms < min { error(n, "`\(what)` must be at least \(DurationParser.format(milliseconds: min))") }
            return ms
        } catch {
            self.error(n, error.message)
            return 0
        }
    }

    private func int(_ n: YAMLNode) -> Int? {
        switch n.jsonValue() {
        case let .int(v): return Int(v)
        case let .double(d) where d == d.rounded() && abs(d) < 1e15: return Int(d)
        default: return nil
        }
    }

    private func ints(_ n: YAMLNode) -> [Int] {
        guard case let .sequence(items) = n.kind else { return [] }
        return items.compactMap(int)
    }

    private func strings(_ n: YAMLNode) -> [String] {
        guard case let .sequence(items) = n.kind else { return [] }
        return items.compactMap(\.scalarText)
    }

    /// `secret`: the source line at `n` may show a secret (a webhook URL, a header's value), so
    /// it is not printed under the message.
    private mutating func error(_ n: YAMLNode, _ message: String, hint: String? = nil, column: Int? = nil, secret: Bool = false) {
        report(.error, n, message, hint: hint, column: column, secret: secret)
    }

    private mutating func report(
        _ severity: Diagnostic.Severity, _ n: YAMLNode, _ message: String, hint: String? = nil, column: Int? = nil, secret: Bool = false
    ) {
        var loc = n.location
        // A column inside a scalar (the bad cron field): valid for plain and quoted scalars on
        // one line, where the value starts at the node's column (+1 for the opening quote).
        if let column { loc.column += column - 1 + (n.isQuoted ? 1 : 0) }
        var d = Diagnostic(severity, at: loc, message, hint: hint)
        d.sourceMayHoldSecret = secret
        diagnostics.append(d)
    }
}

extension YAMLNode {
    var isQuoted: Bool { if case let .scalar(_, plain) = kind { return !plain } else { return false } }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return String(s)
    }
}
