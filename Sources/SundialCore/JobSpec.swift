import OrderedCollections

/// A job's id: `[a-z0-9][a-z0-9_.-]{0,62}`, global across all files of a set.
public typealias JobID = String

/// One job, fully resolved: `defaults` applied, durations parsed, positions kept.
///
/// A plain value: the scheduler compares old and new specs on reload (`==`), `diff` prints
/// field-by-field changes, and tests build them with `JobSpec(id:command:)` plus mutation.
public struct JobSpec: Hashable, Sendable {
    public var id: JobID
    public var description: String?
    public var schedule: ScheduleSpec
    /// IANA zone name for `schedule`; `nil` means the system zone.
    public var timezone: String?
    public var dst: DSTPolicy
    /// Random delay in `[0, jitter)` added to each fire, in milliseconds.
    public var jitterMs: Int64
    public var command: CommandSpec
    public var workdir: String?
    public var env: OrderedDictionary<String, String>
    public var envFile: String?
    public var user: String?
    public var group: String?
    public var umask: UInt16?
    /// Wall-time limit of one attempt, in milliseconds; `nil` means none.
    public var timeoutMs: Int64?
    public var killGraceMs: Int64
    public var retry: RetryPolicy
    public var successExitCodes: [Int32]
    public var needs: [Need]
    public var concurrency: ConcurrencyPolicy
    /// What a new agent does with a run of this job still alive after the previous agent
    /// crashed (`on_agent_restart`, default `adopt`).
    public var onAgentRestart: AgentRestartPolicy
    /// When a `@reboot` job runs (`reboot`, default once per boot).
    public var reboot: RebootPolicy
    public var catchup: CatchupPolicy
    public var catchupWindowMs: Int64
    public var enabled: Bool
    public var output: OutputLimits
    public var secrets: [String]
    /// `limits:` of each run (memory, CPU, tasks), enforced through the run's cgroup.
    public var limits: ResourceLimits
    /// `notify:` entries, in the order written (the job's own list replaces `defaults`' list).
    public var notify: [NotifySpec]
    /// `lock:` — `local` (default: every box runs every instant) or `fleet` (each scheduled
    /// instant runs on exactly one box of the fleet; docs/fleet.md).
    public var lock: JobLock
    /// `on_lost:` — what the fleet does with an instant whose box went silent mid-run.
    public var onLost: FleetLostAction
    /// `fleet_unavailable:` — what this box does when the fleet's database cannot be asked.
    public var fleetUnavailable: FleetUnavailablePolicy
    /// `lease:` — how long a fleet claim holds without renewal (renewed every third of it).
    public var leaseMs: Int64
    /// Where the job's id appears in its file. Excluded from `==`: moving a job to another line
    /// or file is not a change of the job.
    public var location: SourceLocation?

    public init(id: JobID, schedule: ScheduleSpec = .manual, command: CommandSpec) {
        self.id = id
        self.description = nil
        self.schedule = schedule
        self.timezone = nil
        self.dst = DSTPolicy()
        self.jitterMs = 0
        self.command = command
        self.workdir = nil
        self.env = [:]
        self.envFile = nil
        self.user = nil
        self.group = nil
        self.umask = nil
        self.timeoutMs = nil
        self.killGraceMs = 10_000
        self.retry = RetryPolicy()
        self.successExitCodes = [0]
        self.needs = []
        self.concurrency = .forbid
        self.onAgentRestart = .adopt
        self.reboot = .oncePerBoot
        self.catchup = .none
        self.catchupWindowMs = 86_400_000
        self.enabled = true
        self.output = OutputLimits()
        self.secrets = []
        self.limits = ResourceLimits()
        self.notify = []
        self.lock = .local
        self.onLost = .skip
        self.fleetUnavailable = .skip
        self.leaseMs = 30_000
        self.location = nil
    }

    public static func == (a: JobSpec, b: JobSpec) -> Bool {
        var a = a
        var b = b
        a.location = nil
        b.location = nil
        return a.isEqualIncludingLocation(b)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(id)
        hasher.combine(schedule)
        hasher.combine(command)
    }

    private func isEqualIncludingLocation(_ o: JobSpec) -> Bool {
        id == o.id && description == o.description && schedule == o.schedule && timezone == o.timezone
            && dst == o.dst && jitterMs == o.jitterMs && command == o.command && workdir == o.workdir
            && env == o.env && envFile == o.envFile && user == o.user && group == o.group && umask == o.umask
            && timeoutMs == o.timeoutMs && killGraceMs == o.killGraceMs && retry == o.retry
            && successExitCodes == o.successExitCodes && needs == o.needs && concurrency == o.concurrency
            && onAgentRestart == o.onAgentRestart && reboot == o.reboot
            && catchup == o.catchup && catchupWindowMs == o.catchupWindowMs && enabled == o.enabled
            && output == o.output && secrets == o.secrets && limits == o.limits && notify == o.notify
            && lock == o.lock && onLost == o.onLost && fleetUnavailable == o.fleetUnavailable && leaseMs == o.leaseMs
            && location == o.location
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
