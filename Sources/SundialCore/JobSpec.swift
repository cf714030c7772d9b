import OrderedCollections

/// A job's id: `[a-z0-9][a-z0-9_.-]{0,62}`, global across all files of a set.
public typealias JobID = String

/// One job, fully resolved: `defaults` applied, durations parsed, positions kept.
///
/// A value (copy on write, see `storage`): the scheduler compares old and new specs on reload
/// (`==`), `diff` prints field-by-field changes, and tests build them with
/// `JobSpec(id:command:)` plus mutation.
public struct JobSpec: Hashable, Sendable {
    /// The fields, in one instance shared by every copy until a copy is changed (copy on write).
    ///
    /// Why a reference: a job's fields were about 470 bytes, and a loaded job lives in several
    /// places at once (the job set, the scheduler's job table, each of its runs and launch
    /// orders). As a plain struct, the job set held one copy and the scheduler a second one
    /// (boxed, shared by its table, runs and orders): with 10,000 jobs 4.7 MB of an idle
    /// agent's private memory went to the duplicates. Now every place holds one pointer to the
    /// same fields, and the value semantics stay: a change to one copy (`spec.timeoutMs = …`)
    /// copies the fields first when they are shared.
    private var storage: Storage

    private final class Storage: @unchecked Sendable {
        // @unchecked: `fields` changes only through `unique()`, that is while this instance has
        // exactly one owner, so no two threads ever see it change. For the same reason no two
        // accesses can overlap, so the runtime's exclusivity check on each read (a class's
        // `var`) is left out: the scheduler reads a spec's fields on every fire.
        @exclusivity(unchecked) var fields: Fields
        init(_ fields: Fields) { self.fields = fields }
    }

    /// The order is the layout: Swift lays fields out as written, so the one-byte fields sit in
    /// the seven spare bytes after `schedule`'s tag rather than each in a padded word of its own.
    /// With `timeoutMs` stored without an optional's tag byte (see ``noTimeout``) and
    /// `location`'s line and column in 32 bits, the fields are 184 bytes, a 208-byte heap block
    /// with the object's header (they were 272 bytes, a 304-byte block).
    private struct Fields: Sendable {
        var id: JobID
        var description: String?
        var timezone: String?
        var schedule: ScheduleSpec
        var dst: DSTPolicy
        var concurrency: ConcurrencyPolicy
        var catchup: CatchupPolicy
        var enabled: Bool
        var command: CommandSpec
        var env: OrderedDictionary<String, String>
        var jitterMs: Int64
        /// `timeoutMs`, with ``noTimeout`` for none.
        var timeoutOrNone: Int64
        var retry: RetryBox
        var needs: [Need]
        var location: SourceLocation?
        /// The fields most jobs leave at their defaults (see ``Rare``).
        var rare: RareBox

        /// `==` of ``JobSpec``: every field but `location`.
        func equalsIgnoringLocation(_ o: Fields) -> Bool {
            id == o.id && description == o.description && schedule == o.schedule && timezone == o.timezone
                && dst == o.dst && jitterMs == o.jitterMs && command == o.command && env == o.env
                && timeoutOrNone == o.timeoutOrNone && (retry === o.retry || retry.value == o.retry.value) && needs == o.needs
                && concurrency == o.concurrency
                && catchup == o.catchup && enabled == o.enabled && (rare === o.rare || rare.value == o.rare.value)
        }
    }

    /// The fields that most jobs leave at their defaults (a working directory, a user, limits,
    /// notifications, the fleet's settings, …), kept apart: every job with all of them at their
    /// defaults points at one shared ``RareBox/standard`` instead of carrying about 190 bytes of
    /// defaults of its own. Changing one replaces the job's box (see ``setRare(_:_:_:)``).
    private struct Rare: Equatable, Sendable {
        var workdir: String? = nil
        var envFile: String? = nil
        var user: String? = nil
        var group: String? = nil
        var umask: UInt16? = nil
        var killGraceMs: Int64 = 10_000
        var successExitCodes: [Int32] = [0]
        var onAgentRestart: AgentRestartPolicy = .adopt
        var reboot: RebootPolicy = .oncePerBoot
        var catchupWindowMs: Int64 = 86_400_000
        var output: OutputLimits = OutputLimits()
        var secrets: [String] = []
        var limits: ResourceLimits = ResourceLimits()
        var notify: [NotifySpec] = []
        var lock: JobLock = .local
        var onLost: FleetLostAction = .skip
        var fleetUnavailable: FleetUnavailablePolicy = .skip
        var leaseMs: Int64 = 30_000
    }

    /// Changed in place only while one job alone holds it (see ``setRare(_:_:_:)``); a shared
    /// box is replaced, never changed, so sharing needs no further care.
    private final class RareBox: @unchecked Sendable {
        // @unchecked: as `Storage`, `value` changes only while this box has exactly one owner,
        // itself held by exactly one `JobSpec`.
        var value: Rare
        init(_ value: Rare) { self.value = value }
        static let standard = RareBox(Rare())
    }

    /// The retry policy, in an immutable box that jobs with the same policy share: most jobs
    /// take it from their file's `defaults`, so a set of thousands has a handful of policies,
    /// and inline each job carried 64 bytes of its own. The default policy has one shared box;
    /// the loader's answer is decoded with one box per distinct policy (``shareRetry(with:)``).
    private final class RetryBox: Sendable {
        let value: RetryPolicy
        init(_ value: RetryPolicy) { self.value = value }
        static let standard = RetryBox(RetryPolicy())
    }

    /// `timeoutOrNone`'s value for "no timeout". A configured timeout is at least a millisecond
    /// (the schema and the job decoder refuse less), and the setter moves this one value off it
    /// should it ever come, so "none" and a timeout never read the same.
    private static let noTimeout = Int64.min

    /// Points this job's retry policy at `other`'s box when the two are identical
    /// (``RetryPolicy/isIdentical(to:)``), so a decoder can keep one box per distinct policy.
    /// Changes nothing otherwise.
    public mutating func shareRetry(with other: JobSpec) {
        let box = other.storage.fields.retry
        guard storage.fields.retry !== box, storage.fields.retry.value.isIdentical(to: box.value) else { return }
        unique()
        storage.fields.retry = box
    }

    /// Gives this job `other`'s retry policy, in `other`'s very box: for a decoder that knows
    /// the two policies are identical (the same bytes on the wire), without comparing them.
    public mutating func useRetry(of other: JobSpec) {
        guard storage.fields.retry !== other.storage.fields.retry else { return }
        unique()
        storage.fields.retry = other.storage.fields.retry
    }

    /// Whether both values point at the same retry box, for tests.
    func sharesRetry(with other: JobSpec) -> Bool { storage.fields.retry === other.storage.fields.retry }

    /// Whether both values read the same fields (not just equal ones): what the sharing
    /// described at `storage` promises, for tests.
    func sharesFields(with other: JobSpec) -> Bool { storage === other.storage }

    /// Whether both values point at the same box of rarely changed fields, for tests.
    func sharesRareFields(with other: JobSpec) -> Bool { storage.fields.rare === other.storage.fields.rare }

    /// Sets one of the rarely changed fields: in this job's own box when it has one, else in a
    /// new box for it; back to the shared standard one when every rare field is at its default
    /// again. Setting a default on a job that has all of them changes nothing, so a decoder that
    /// sets every field keeps the shared box.
    ///
    /// In place, because a decoder sets a dozen of these on each job: a new box and a
    /// comparison of all the rare fields on every set were a third of decoding a job from the
    /// loader's answer (issue 15's reload and start-up figures).
    ///
    /// Closures rather than a key path: inlined, they are a field access, where a key path
    /// costs a call into the runtime on each read and write (about 800 instructions a set).
    @inline(__always)
    private mutating func setRare<T: Equatable>(_ value: T, _ read: (Rare) -> T, _ write: (inout Rare, T) -> Void) {
        // Only a default set on a job still at the defaults is skipped: elsewhere `==` may
        // ignore what the new value changes (a notify entry's `location`), so it is stored.
        let standard = RareBox.standard
        let isDefault = value == read(standard.value)
        if storage.fields.rare === standard, isDefault { return }
        unique()
        if storage.fields.rare !== standard, isKnownUniquelyReferenced(&storage.fields.rare) {
            write(&storage.fields.rare.value, value)
        } else {
            var rare = storage.fields.rare.value
            write(&rare, value)
            storage.fields.rare = RareBox(rare)
        }
        // Only a default can bring the whole box back to the defaults.
        if isDefault, storage.fields.rare.value == standard.value { storage.fields.rare = standard }
    }

    /// Makes `storage` this value's own before a change.
    private mutating func unique() {
        if !isKnownUniquelyReferenced(&storage) { storage = Storage(storage.fields) }
    }

    public var id: JobID {
        get { storage.fields.id }
        _modify {
            unique()
            yield &storage.fields.id
        }
    }
    public var description: String? {
        get { storage.fields.description }
        _modify {
            unique()
            yield &storage.fields.description
        }
    }
    public var schedule: ScheduleSpec {
        get { storage.fields.schedule }
        _modify {
            unique()
            yield &storage.fields.schedule
        }
    }
    /// IANA zone name for `schedule`; `nil` means the system zone.
    public var timezone: String? {
        get { storage.fields.timezone }
        _modify {
            unique()
            yield &storage.fields.timezone
        }
    }
    public var dst: DSTPolicy {
        get { storage.fields.dst }
        _modify {
            unique()
            yield &storage.fields.dst
        }
    }
    /// Random delay in `[0, jitter)` added to each fire, in milliseconds.
    public var jitterMs: Int64 {
        get { storage.fields.jitterMs }
        _modify {
            unique()
            yield &storage.fields.jitterMs
        }
    }
    public var command: CommandSpec {
        get { storage.fields.command }
        _modify {
            unique()
            yield &storage.fields.command
        }
    }
    public var workdir: String? {
        get { storage.fields.rare.value.workdir }
        set { setRare(newValue, { $0.workdir }, { $0.workdir = $1 }) }
    }
    public var env: OrderedDictionary<String, String> {
        get { storage.fields.env }
        _modify {
            unique()
            yield &storage.fields.env
        }
    }
    public var envFile: String? {
        get { storage.fields.rare.value.envFile }
        set { setRare(newValue, { $0.envFile }, { $0.envFile = $1 }) }
    }
    public var user: String? {
        get { storage.fields.rare.value.user }
        set { setRare(newValue, { $0.user }, { $0.user = $1 }) }
    }
    public var group: String? {
        get { storage.fields.rare.value.group }
        set { setRare(newValue, { $0.group }, { $0.group = $1 }) }
    }
    public var umask: UInt16? {
        get { storage.fields.rare.value.umask }
        set { setRare(newValue, { $0.umask }, { $0.umask = $1 }) }
    }
    /// Wall-time limit of one attempt, in milliseconds; `nil` means none.
    public var timeoutMs: Int64? {
        get {
            let t = storage.fields.timeoutOrNone
            return t == Self.noTimeout ? nil : t
        }
        set {
            unique()
            // A negative or zero timeout is refused before a spec is built; should one come,
            // Int64.min is still not taken for "none".
            storage.fields.timeoutOrNone = newValue.map { $0 == Self.noTimeout ? $0 + 1 : $0 } ?? Self.noTimeout
        }
    }
    public var killGraceMs: Int64 {
        get { storage.fields.rare.value.killGraceMs }
        set { setRare(newValue, { $0.killGraceMs }, { $0.killGraceMs = $1 }) }
    }
    public var retry: RetryPolicy {
        get { storage.fields.retry.value }
        set {
            let standard = RetryBox.standard
            if storage.fields.retry === standard, newValue.isIdentical(to: standard.value) { return }
            unique()
            storage.fields.retry = newValue.isIdentical(to: standard.value) ? standard : RetryBox(newValue)
        }
    }
    public var successExitCodes: [Int32] {
        get { storage.fields.rare.value.successExitCodes }
        set { setRare(newValue, { $0.successExitCodes }, { $0.successExitCodes = $1 }) }
    }
    public var needs: [Need] {
        get { storage.fields.needs }
        _modify {
            unique()
            yield &storage.fields.needs
        }
    }
    public var concurrency: ConcurrencyPolicy {
        get { storage.fields.concurrency }
        _modify {
            unique()
            yield &storage.fields.concurrency
        }
    }
    /// What a new agent does with a run of this job still alive after the previous agent
    /// crashed (`on_agent_restart`, default `adopt`).
    public var onAgentRestart: AgentRestartPolicy {
        get { storage.fields.rare.value.onAgentRestart }
        set { setRare(newValue, { $0.onAgentRestart }, { $0.onAgentRestart = $1 }) }
    }
    /// When a `@reboot` job runs (`reboot`, default once per boot).
    public var reboot: RebootPolicy {
        get { storage.fields.rare.value.reboot }
        set { setRare(newValue, { $0.reboot }, { $0.reboot = $1 }) }
    }
    public var catchup: CatchupPolicy {
        get { storage.fields.catchup }
        _modify {
            unique()
            yield &storage.fields.catchup
        }
    }
    public var catchupWindowMs: Int64 {
        get { storage.fields.rare.value.catchupWindowMs }
        set { setRare(newValue, { $0.catchupWindowMs }, { $0.catchupWindowMs = $1 }) }
    }
    public var enabled: Bool {
        get { storage.fields.enabled }
        _modify {
            unique()
            yield &storage.fields.enabled
        }
    }
    public var output: OutputLimits {
        get { storage.fields.rare.value.output }
        set { setRare(newValue, { $0.output }, { $0.output = $1 }) }
    }
    public var secrets: [String] {
        get { storage.fields.rare.value.secrets }
        set { setRare(newValue, { $0.secrets }, { $0.secrets = $1 }) }
    }
    /// `limits:` of each run (memory, CPU, tasks), enforced through the run's cgroup.
    public var limits: ResourceLimits {
        get { storage.fields.rare.value.limits }
        set { setRare(newValue, { $0.limits }, { $0.limits = $1 }) }
    }
    /// `notify:` entries, in the order written (the job's own list replaces `defaults`' list).
    public var notify: [NotifySpec] {
        get { storage.fields.rare.value.notify }
        set { setRare(newValue, { $0.notify }, { $0.notify = $1 }) }
    }
    /// `lock:` — `local` (default: every box runs every instant) or `fleet` (each scheduled
    /// instant runs on exactly one box of the fleet; docs/fleet.md).
    public var lock: JobLock {
        get { storage.fields.rare.value.lock }
        set { setRare(newValue, { $0.lock }, { $0.lock = $1 }) }
    }
    /// `on_lost:` — what the fleet does with an instant whose box went silent mid-run.
    public var onLost: FleetLostAction {
        get { storage.fields.rare.value.onLost }
        set { setRare(newValue, { $0.onLost }, { $0.onLost = $1 }) }
    }
    /// `fleet_unavailable:` — what this box does when the fleet's database cannot be asked.
    public var fleetUnavailable: FleetUnavailablePolicy {
        get { storage.fields.rare.value.fleetUnavailable }
        set { setRare(newValue, { $0.fleetUnavailable }, { $0.fleetUnavailable = $1 }) }
    }
    /// `lease:` — how long a fleet claim holds without renewal (renewed every third of it).
    public var leaseMs: Int64 {
        get { storage.fields.rare.value.leaseMs }
        set { setRare(newValue, { $0.leaseMs }, { $0.leaseMs = $1 }) }
    }
    /// Where the job's id appears in its file. Excluded from `==`: moving a job to another line
    /// or file is not a change of the job.
    public var location: SourceLocation? {
        get { storage.fields.location }
        _modify {
            unique()
            yield &storage.fields.location
        }
    }

    public init(id: JobID, schedule: ScheduleSpec = .manual, command: CommandSpec) {
        storage = Storage(
            Fields(
                id: id,
                description: nil,
                timezone: nil,
                schedule: schedule,
                dst: DSTPolicy(),
                concurrency: .forbid,
                catchup: .none,
                enabled: true,
                command: command,
                env: [:],
                jitterMs: 0,
                timeoutOrNone: Self.noTimeout,
                retry: RetryBox.standard,
                needs: [],
                location: nil,
                rare: RareBox.standard
            ))
    }

    /// Every field but `location`: moving a job to another line or file is not a change of it.
    public static func == (a: JobSpec, b: JobSpec) -> Bool {
        a.storage === b.storage || a.storage.fields.equalsIgnoringLocation(b.storage.fields)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(id)
        hasher.combine(schedule)
        hasher.combine(command)
    }
}

/// Prints (and `dump`s, and shows in test failures) a job by its fields, not by its storage.
extension JobSpec: CustomReflectable {
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "id": id,
                "description": description as Any,
                "schedule": schedule,
                "timezone": timezone as Any,
                "dst": dst,
                "jitterMs": jitterMs,
                "command": command,
                "workdir": workdir as Any,
                "env": env,
                "envFile": envFile as Any,
                "user": user as Any,
                "group": group as Any,
                "umask": umask as Any,
                "timeoutMs": timeoutMs as Any,
                "killGraceMs": killGraceMs,
                "retry": retry,
                "successExitCodes": successExitCodes,
                "needs": needs,
                "concurrency": concurrency,
                "onAgentRestart": onAgentRestart,
                "reboot": reboot,
                "catchup": catchup,
                "catchupWindowMs": catchupWindowMs,
                "enabled": enabled,
                "output": output,
                "secrets": secrets,
                "limits": limits,
                "notify": notify,
                "lock": lock,
                "onLost": onLost,
                "fleetUnavailable": fleetUnavailable,
                "leaseMs": leaseMs,
                "location": location as Any,
            ],
            displayStyle: .struct)
    }
}

/// When a job fires by itself. At most one of `schedule`, `every`, `at` (design §1).
public enum ScheduleSpec: Hashable, Sendable {
    /// No schedule: runs when its `needs` are met, or when triggered by hand.
    case manual
    /// A cron expression as written (5 or 6 fields, or a macro other than `@reboot`).
    case cron(String)
    /// `@reboot`: once per boot, at the agent's first start in it (not on later starts in the
    /// same boot, nor on reload).
    case reboot
    /// `every`, with `offset` past the epoch when given (else counted from the agent's start).
    case every(intervalMs: Int64, offsetMs: Int64?)
    /// `at`: one or more one-shot instants, sorted.
    case at([Instant])
}

/// How a job's cron schedule treats daylight-saving transitions (design §2).
public struct DSTPolicy: Hashable, Sendable {
    public enum Gap: String, Hashable, Sendable, CaseIterable { case shift, skip }
    public enum Overlap: String, Hashable, Sendable, CaseIterable { case first, last, both }
    public var gap: Gap
    public var overlap: Overlap
    public init(gap: Gap = .shift, overlap: Overlap = .first) {
        self.gap = gap
        self.overlap = overlap
    }
}

/// What to execute: an argv (no shell) or a `/bin/sh -c` string.
public enum CommandSpec: Hashable, Sendable {
    case argv([String])
    case shell(String)
}

/// `retry:` of design §1. `attempts` counts all attempts, so 1 means no retry.
public struct RetryPolicy: Hashable, Sendable {
    /// Equal, and the same `jitter` to the bit: `==` takes -0.0 for 0.0, so sharing one box by
    /// `==` alone would change what a job was given (a diff would print the other one).
    public func isIdentical(to other: RetryPolicy) -> Bool { self == other && jitter.bitPattern == other.jitter.bitPattern }

    public enum Backoff: String, Hashable, Sendable, CaseIterable { case fixed, linear, exponential }
    public enum Condition: String, Hashable, Sendable, CaseIterable { case failure, timeout, signal }

    public var attempts: Int
    public var backoff: Backoff
    public var delayMs: Int64
    public var maxDelayMs: Int64?
    /// Fraction in `[0, 1]` by which each delay is randomly shortened or lengthened.
    public var jitter: Double
    public var on: Set<Condition>
    /// When set, a failure is retried only when its exit code is one of these.
    public var exitCodes: [Int32]?

    public init(
        attempts: Int = 1, backoff: Backoff = .exponential, delayMs: Int64 = 10_000, maxDelayMs: Int64? = nil,
        jitter: Double = 0, on: Set<Condition> = Set(Condition.allCases), exitCodes: [Int32]? = nil
    ) {
        self.attempts = attempts
        self.backoff = backoff
        self.delayMs = delayMs
        self.maxDelayMs = maxDelayMs
        self.jitter = jitter
        self.on = on
        self.exitCodes = exitCodes
    }
}

/// One entry of `needs:`.
public struct Need: Hashable, Sendable {
    public enum Condition: String, Hashable, Sendable, CaseIterable { case success, failure, completion }
    public var job: JobID
    public var on: Condition
    public var location: SourceLocation?
    public init(job: JobID, on: Condition = .success, location: SourceLocation? = nil) {
        self.job = job
        self.on = on
        self.location = location
    }
    public static func == (a: Need, b: Need) -> Bool { a.job == b.job && a.on == b.on }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(job)
        hasher.combine(on)
    }
}

public enum ConcurrencyPolicy: String, Hashable, Sendable, CaseIterable { case forbid, allow, replace, queue }

/// `on_agent_restart:` (design §7): a run whose process outlived a crashed agent is either
/// adopted (watched to its end, counted by `concurrency`) or killed (its process group gets
/// SIGKILL and the run is recorded `interrupted`).
public enum AgentRestartPolicy: String, Hashable, Sendable, CaseIterable { case adopt, kill }

public enum CatchupPolicy: String, Hashable, Sendable, CaseIterable { case none, latest, all }

/// When a `@reboot` job runs: at the agent's first start in each boot (the kernel's boot id, as
/// cronie does), or at every start of the agent (what Sundial did before issue 17).
public enum RebootPolicy: String, Hashable, Sendable, CaseIterable {
    case oncePerBoot = "once-per-boot"
    case everyStart = "every-start"
}

/// `lock:` of a job: whether its instants are claimed across the fleet (docs/fleet.md).
public enum JobLock: String, Hashable, Sendable, CaseIterable { case local, fleet }

/// `fleet_unavailable:` — a fleet-locked fire whose claim cannot reach the database is skipped
/// (the default: never run an instant twice), run on this box without a claim (availability
/// over exactly-once), or claimed again with backoff until the instant is too old.
public enum FleetUnavailablePolicy: String, Hashable, Sendable, CaseIterable {
    case skip
    case runLocally = "run-locally"
    case wait
}

/// `output:` limits, in bytes.
public struct OutputLimits: Hashable, Sendable {
    public var maxLineBytes: Int
    public var maxBytes: Int
    /// How much of each attempt's output is stored with its run for `sundial logs` (its last
    /// lines). Default 64 KiB.
    public var keepBytes: Int
    public init(maxLineBytes: Int = 8 * 1024, maxBytes: Int = 1024 * 1024, keepBytes: Int = 64 * 1024) {
        self.maxLineBytes = maxLineBytes
        self.maxBytes = maxBytes
        self.keepBytes = keepBytes
    }
}

/// A validated, complete configuration: every job of every file, in file order.
public struct JobSet: Hashable, Sendable {
    public var jobs: OrderedDictionary<JobID, JobSpec>
    /// The files that made up the set, in the order they were read.
    public var files: [String]
    /// A content hash of the whole set (hex), logged as `config.loaded`'s `revision`.
    public var revision: String

    public init(jobs: OrderedDictionary<JobID, JobSpec> = [:], files: [String] = [], revision: String = "") {
        self.jobs = jobs
        self.files = files
        self.revision = revision
    }
}

extension JobSpec {
    /// The job's secret variables: those its `secrets` names, and each webhook's `secret_env`
    /// (the key that signs its notifications, read from the same `env_file` and so in the job's
    /// environment too). Whatever shows a job (the runner's output, `sundial diff`, the source
    /// lines under a diagnostic) hides their values.
    public var secretVariableNames: [String] {
        var names = secrets
        for entry in notify {
            if case let .webhook(hook) = entry.target, let name = hook.secretEnv, !names.contains(name) { names.append(name) }
        }
        return names
    }
}
