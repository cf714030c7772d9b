import OrderedCollections
import SundialCore

/// What replacing one ``JobSet`` by another changes: jobs added, removed, and changed field by
/// field (`sundial diff OLD NEW`, issue 6).
///
/// Pure. Fields are named as in the job file (`schedule`, `timeout`, `retry.attempts`,
/// `env.PATH`), and values are rendered as a reader would write them (`30m`, `"30 2 * * *"`,
/// `["pg_dump", "app"]`), so a reviewer of a pull request reads the diff in the file's own terms.
/// A job's position (file, line) is not part of the job: moving a job between files is no change.
public struct JobSetDiff: Hashable, Sendable {
    /// One field whose rendered value differs; `nil` means the field is not set.
    public struct FieldChange: Hashable, Sendable {
        public var field: String
        public var old: String?
        public var new: String?
        public init(field: String, old: String?, new: String?) {
            self.field = field
            self.old = old
            self.new = new
        }
    }

    /// A job present in both sets whose definition differs.
    public struct Change: Hashable, Sendable {
        public var old: JobSpec
        public var new: JobSpec
        public var fields: [FieldChange]
        public var id: JobID { new.id }
        /// Whether its fires may differ (the fields the scheduler re-plans on, see
        /// `Scheduler.sameTiming`).
        public var timingChanged: Bool {
            old.schedule != new.schedule || old.timezone != new.timezone || old.dst != new.dst
                || old.jitterMs != new.jitterMs || old.enabled != new.enabled
        }
    }

    /// Jobs only in the new set, in the new set's order.
    public var added: [JobSpec]
    /// Jobs only in the old set, in the old set's order.
    public var removed: [JobSpec]
    /// Jobs in both whose definitions differ, in the new set's order.
    public var changed: [Change]
    public var oldRevision: String
    public var newRevision: String

    /// No job added, removed or changed. (A different revision alone, e.g. a comment edited or
    /// a job moved to another file, is no change.)
    public var isEmpty: Bool { added.isEmpty && removed.isEmpty && changed.isEmpty }

    public init(old: JobSet, new: JobSet) {
        oldRevision = old.revision
        newRevision = new.revision
        added = []
        changed = []
        for (id, job) in new.jobs {
            guard let before = old.jobs[id] else {
                added.append(job)
                continue
            }
            if before != job {
                var fields = Self.fieldChanges(before, job)
                // What differs is not shown (a secret is rendered `***` on both sides, a webhook
                // without its path or headers' values): say so, rather than list a job as
                // changed with nothing under it.
                if fields.isEmpty, Self.secretsDiffer(before, job) {
                    fields = [FieldChange(field: "secret values", old: "***", new: "*** (changed, not shown)")]
                }
                changed.append(Change(old: before, new: job, fields: fields))
            }
        }
        removed = old.jobs.values.filter { new.jobs[$0.id] == nil }
    }

    /// The fields whose rendered values differ, in the order of ``fields(of:)``; fields only
    /// one side has come where that side lists them.
    public static func fieldChanges(_ old: JobSpec, _ new: JobSpec) -> [FieldChange] {
        let a = fields(of: old)
        let b = fields(of: new)
        var keys = OrderedSet(a.keys)
        for (i, key) in b.keys.enumerated() where !keys.contains(key) {
            // Keep a field new to the job next to its neighbours (e.g. `env.B` after `env.A`).
            let after = i == 0 ? nil : b.keys[i - 1]
            let at = after.flatMap { keys.firstIndex(of: $0) }.map { $0 + 1 } ?? keys.count
            keys.insert(key, at: at)
        }
        return keys.compactMap { key in
            a[key] == b[key] ? nil : FieldChange(field: key, old: a[key], new: b[key])
        }
    }

    /// Every field of a job, rendered, in the order of design §1's table. A field that is not
    /// set (no `timezone`, no `timeout`) is absent; fields with a default are always present, so
    /// that going back to the default shows the default's value. The values of `env` variables
    /// named in `secrets` are masked (`***`): a diff printed in a CI log must not leak them.
    public static func fields(of job: JobSpec) -> OrderedDictionary<String, String> {
        var f: OrderedDictionary<String, String> = [:]
        if let d = job.description { f["description"] = quote(d) }
        switch job.schedule {
        case .manual: break
        case let .cron(text): f["schedule"] = quote(text)
        case .reboot: f["schedule"] = quote("@reboot")
        case let .every(interval, offset):
            f["every"] = duration(interval)
            if let offset { f["offset"] = duration(offset) }
        case let .at(instants):
            f["at"] = instants.count == 1 ? instants[0].description : list(instants.map(\.description))
        }
        if let tz = job.timezone { f["timezone"] = tz }
        f["dst"] = "{gap: \(job.dst.gap.rawValue), overlap: \(job.dst.overlap.rawValue)}"
        f["jitter"] = duration(job.jitterMs)
        switch job.command {
        case let .argv(argv): f["command"] = list(argv.map(quote))
        case let .shell(text): f["shell"] = quote(text)
        }
        if let w = job.workdir { f["workdir"] = quote(w) }
        let secret = Set(job.secretVariableNames)
        for (key, value) in job.env { f["env.\(key)"] = secret.contains(key) ? "***" : quote(value) }
        if let e = job.envFile { f["env_file"] = quote(e) }
        if let u = job.user { f["user"] = quote(u) }
        if let g = job.group { f["group"] = quote(g) }
        if let m = job.umask { f["umask"] = "0" + String(m, radix: 8) }
        if let t = job.timeoutMs { f["timeout"] = duration(t) }
        f["kill_grace"] = duration(job.killGraceMs)
        let r = job.retry
        f["retry.attempts"] = "\(r.attempts)"
        f["retry.backoff"] = r.backoff.rawValue
        f["retry.delay"] = duration(r.delayMs)
        if let m = r.maxDelayMs { f["retry.max_delay"] = duration(m) }
        f["retry.jitter"] = "\(r.jitter)"
        f["retry.on"] = list(RetryPolicy.Condition.allCases.filter { r.on.contains($0) }.map(\.rawValue))
        if let codes = r.exitCodes { f["retry.exit_codes"] = list(codes.map(String.init)) }
        f["success_exit_codes"] = list(job.successExitCodes.map(String.init))
        if !job.needs.isEmpty {
            f["needs"] = list(job.needs.map { $0.on == .success ? $0.job : "{job: \($0.job), on: \($0.on.rawValue)}" })
        }
        f["concurrency"] = job.concurrency.rawValue
        f["on_agent_restart"] = job.onAgentRestart.rawValue
        f["reboot"] = job.reboot.rawValue
        f["lock"] = job.lock.rawValue
        f["on_lost"] = job.onLost.rawValue
        f["fleet_unavailable"] = job.fleetUnavailable.rawValue
        f["lease"] = duration(job.leaseMs)
        f["catchup"] = job.catchup.rawValue
        f["catchup_window"] = duration(job.catchupWindowMs)
        f["enabled"] = job.enabled ? "true" : "false"
        f["output.max_line_bytes"] = "\(job.output.maxLineBytes)"
        f["output.max_bytes"] = "\(job.output.maxBytes)"
        if !job.secrets.isEmpty { f["secrets"] = list(job.secrets) }
        f["output.keep_bytes"] = "\(job.output.keepBytes)"
        if let m = job.limits.memoryBytes { f["limits.memory"] = ResourceLimits.formatSize(m) }
        if let c = job.limits.cpuPercent { f["limits.cpu"] = "\(c)%" }
        if let t = job.limits.tasks { f["limits.tasks"] = "\(t)" }
        for (i, n) in job.notify.enumerated() {
            let on = list(NotifyEvent.allCases.filter { n.on.contains($0) }.map(\.rawValue))
            switch n.target {
            case let .command(argv): f["notify[\(i)]"] = "{on: \(on), command: \(list(argv.map(quote)))}"
            case let .webhook(w):
                // Not the path, the query or header values: they often hold a token, and diffs
                // end up in CI logs.
                let host = (try? WebhookURL.parse(w.url)).map { "\($0.isTLS ? "https" : "http")://\($0.hostHeader)/…" } ?? "?"
                var text = "{on: \(on), webhook: \(host)"
                if !w.headers.isEmpty { text += ", headers: \(list(Array(w.headers.keys)))" }
                if let k = w.secretEnv { text += ", secret_env: \(k)" }
                if let c = w.caFile { text += ", ca_file: \(c)" }
                f["notify[\(i)]"] = text + ", timeout: \(duration(w.timeoutMs)), retries: \(w.retries)}"
            }
        }
        return masked(f, secrets: job.secretVariableNames.compactMap { job.env[$0] })
    }

    /// Whether a value the diff never shows differs: a secret variable's, or a webhook's URL
    /// (beyond its host) or header values.
    static func secretsDiffer(_ a: JobSpec, _ b: JobSpec) -> Bool {
        func hidden(_ job: JobSpec) -> [String] {
            var out = job.secretVariableNames.map { "\($0)=\(job.env[$0] ?? "")" }
            for n in job.notify {
                if case let .webhook(w) = n.target {
                    out.append(w.url + "\u{0}" + w.headers.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: "\u{0}"))
                }
            }
            return out
        }
        return hidden(a) != hidden(b)
    }

    /// `fields` with every secret value masked wherever it appears: a command or a workdir may
    /// quote one (`command: [curl, -u, "user:s3cret"]` with that value in `env` and `secrets`).
    /// Longest first, so a secret containing another is masked whole.
    static func masked(_ fields: OrderedDictionary<String, String>, secrets: [String]) -> OrderedDictionary<String, String> {
        // Each value as written and as `quote` escapes it (a `"` or a `\` in a password).
        var forms = Set(secrets.filter { !$0.isEmpty })
        for v in forms { forms.insert(String(quote(v).dropFirst().dropLast())) }
        let values = forms.filter { !$0.isEmpty }.sorted { $0.utf8.count > $1.utf8.count }
        guard !values.isEmpty else { return fields }
        var f = fields
        for (key, text) in fields {
            var t = text
            for v in values where t.contains(v) { t = t.replacing(v, with: "***") }
            f[key] = t
        }
        return f
    }

    /// The fields of a job that differ from a job with only an id and a command, for showing
    /// an added job without a page of defaults. `command`/`shell` and the schedule are always
    /// shown.
    public static func significantFields(of job: JobSpec) -> OrderedDictionary<String, String> {
        let all = fields(of: job)
        let plain = fields(of: JobSpec(id: job.id, command: job.command))
        return all.filter { key, value in
            ["schedule", "every", "offset", "at", "command", "shell"].contains(key) || plain[key] != value
        }
    }

    // MARK: - Rendering values

    static func duration(_ ms: Int64) -> String { DurationParser.format(milliseconds: ms) }

    /// A string as a JSON (and YAML) double-quoted scalar: unambiguous about spaces and quotes.
    static func quote(_ s: String) -> String { JSONValue.string(s).jsonText }

    static func list(_ items: [String]) -> String { "[" + items.joined(separator: ", ") + "]" }
}
