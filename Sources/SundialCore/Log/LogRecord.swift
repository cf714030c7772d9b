import OrderedCollections

/// One line of the event log (design §3), as a typed value: one case per event of the log
/// contract (docs/reference.md, "The event log").
///
/// The scheduler (``SchedulerAction/emit(_:)``) and the runtime produce these; only the JSON
/// encoder (``LogRecord/event``, LogRecord+JSON.swift) knows the dotted names and field names.
/// Everything that reacts to the log (metrics, the systemd notifier, the status page, the
/// notifier, the agent's bookkeeping) switches on the case, so a renamed field cannot silently
/// turn a consumer off, and no consumer rebuilds ids or numbers from JSON.
///
/// `indirect`: each record is one small box, so ``SchedulerAction`` (which carries one inline)
/// stays small, as with the old `Event`, instead of taking the size of the largest payload.
public indirect enum LogRecord: Sendable, Hashable {
    case agentStarted(AgentStarted)
    case agentStopping(AgentStopping)
    case agentStopped(AgentStopped)
    /// The agent cannot run on (its state directory or lock went away): it stops, exit 1.
    case agentFatal(AgentFatal)
    case configLoaded(ConfigLoaded)
    case configRejected(ConfigRejected)
    /// A reload found the same set.
    case configUnchanged(reason: String, revision: String, at: Instant)
    /// A load still running after the reload deadline was given up.
    case configReloadAbandoned(reason: String, runningMs: Int64, runningRevision: String, at: Instant)
    /// inotify is unavailable: the config files are polled.
    case configWatchPolling(reason: String, at: Instant)
    case configWatchFailed(reason: String, at: Instant)
    case runStarted(RunStarted)
    case runOutput(RunOutput)
    case runFinished(RunFinished)
    case runRetryScheduled(RetryScheduled)
    case runSkipped(RunSkipped)
    case runAdopted(RunAdopted)
    case jobPaused(job: JobID, at: Instant)
    case jobResumed(job: JobID, at: Instant)
    /// A wall-clock step seen against the monotonic clock.
    case clockStepped(from: Instant, to: Instant, deltaMs: Int64, at: Instant)
    /// `--hold-until-synced`: `detail` is what the clock probe saw (e.g. `wall_clock`, `held_ms`).
    case clockUnsynced(detail: OrderedDictionary<String, JSONValue>, at: Instant)
    case clockSynced(detail: OrderedDictionary<String, JSONValue>, at: Instant)
    case stateError(message: String, at: Instant)
    /// The state database was lost or moved aside; the agent starts with an empty one.
    case stateReset(reason: String, state: String, at: Instant)
    case stateWatchFailed(reason: String, at: Instant)
    case limitsUnenforced(job: JobID, reason: String, at: Instant)
    /// Lines lost while the log could not be written, told in the first line that gets through.
    case logDropped(lines: Int, at: Instant)
    case logReopenFailed(message: String, at: Instant)
    case metricsError(message: String, at: Instant)
    /// The metrics listener is bound: `address` has the actual port (the kernel's choice when
    /// `--metrics-listen` asked for port 0).
    case metricsListening(address: String, at: Instant)
    case notifySent(NotifyDelivery, detail: String)
    case notifyRetrying(NotifyDelivery, reason: String, delayMs: Int64)
    case notifyFailed(NotifyDelivery, reason: String)
    /// Deliveries still pending at a stop (kept in state.db, sent after the restart).
    case notifyAbandoned(count: Int, message: String, at: Instant)
    case notifyQueueError(message: String, at: Instant)
    /// `lock: fleet` (docs/fleet.md): claims, leases and the result backend.
    case fleet(Fleet)

    // MARK: - Payloads

    public struct AgentStarted: Sendable, Hashable {
        public var version: String, pid: Int32, config: [String], state: String, at: Instant
        public init(version: String, pid: Int32, config: [String], state: String, at: Instant) {
            (self.version, self.pid, self.config, self.state, self.at) = (version, pid, config, state, at)
        }
    }

    public struct AgentStopping: Sendable, Hashable {
        /// Why: a signal's name (`SIGTERM`), or a fatal condition (``LogRecord/agentFatal(_:)``).
        public enum Cause: Sendable, Hashable {
            case signal(String)
            case fatal
        }
        public var version: String, pid: Int32, cause: Cause, activeRuns: Int, at: Instant
        public init(version: String, pid: Int32, cause: Cause, activeRuns: Int, at: Instant) {
            (self.version, self.pid, self.cause, self.activeRuns, self.at) = (version, pid, cause, activeRuns, at)
        }
    }

    public struct AgentStopped: Sendable, Hashable {
        public var version: String, pid: Int32, exitCode: Int32, at: Instant
        public init(version: String, pid: Int32, exitCode: Int32, at: Instant) {
            (self.version, self.pid, self.exitCode, self.at) = (version, pid, exitCode, at)
        }
    }

    public struct AgentFatal: Sendable, Hashable {
        public var version: String, pid: Int32, reason: String, state: String, at: Instant
        public init(version: String, pid: Int32, reason: String, state: String, at: Instant) {
            (self.version, self.pid, self.reason, self.state, self.at) = (version, pid, reason, state, at)
        }
    }

    /// `config.loaded`: the revision and what changed against the running set.
    public struct ConfigLoaded: Sendable, Hashable {
        public var revision: String, files: Int, jobs: Int
        public var added: [JobID], removed: [JobID], changed: [JobID]
        /// What asked for the reload (`nil` at start).
        public var reason: String?
        public var at: Instant
        public init(
            revision: String, files: Int, jobs: Int, added: [JobID], removed: [JobID], changed: [JobID],
            reason: String?, at: Instant
        ) {
            (self.revision, self.files, self.jobs) = (revision, files, jobs)
            (self.added, self.removed, self.changed, self.reason, self.at) = (added, removed, changed, reason, at)
        }
    }

    /// `config.rejected`: an invalid set changes nothing; the last good set keeps running.
    public struct ConfigRejected: Sendable, Hashable {
        public struct Problem: Sendable, Hashable {
            public var file: String, line: Int, column: Int, message: String
            public init(file: String, line: Int, column: Int, message: String) {
                (self.file, self.line, self.column, self.message) = (file, line, column, message)
            }
        }
        public var reason: String, errors: [Problem], runningRevision: String, at: Instant
        public init(reason: String, errors: [Problem], runningRevision: String, at: Instant) {
            (self.reason, self.errors, self.runningRevision, self.at) = (reason, errors, runningRevision, at)
        }
    }

    public struct RunStarted: Sendable, Hashable {
        public var job: JobID, runID: RunID, attempt: Int, scheduledFor: Instant, trigger: RunTrigger
        /// `nil` when the launch failed.
        public var pid: Int32?
        public var at: Instant
        /// A `lock: fleet` job's run: its claim's fencing token (`nil`: run locally without a
        /// claim, per `fleet_unavailable: run-locally`), and the token of the run it reruns after
        /// a lost lease. `nil` for a job without `lock: fleet`.
        public var fleet: FleetClaimFields?
        public init(
            job: JobID, runID: RunID, attempt: Int, scheduledFor: Instant, trigger: RunTrigger, pid: Int32?, at: Instant,
            fleet: FleetClaimFields? = nil
        ) {
            (self.job, self.runID, self.attempt, self.scheduledFor, self.trigger, self.pid, self.at) =
                (job, runID, attempt, scheduledFor, trigger, pid, at)
            self.fleet = fleet
        }
    }

    public struct FleetClaimFields: Sendable, Hashable {
        public var token: Int64?
        public var rerunOf: Int64?
        public init(token: Int64?, rerunOf: Int64? = nil) {
            self.token = token
            self.rerunOf = rerunOf
        }
    }

    /// A fleet record: which one (typed), its level, and its fields as written (they vary with
    /// the record and are only ever read by people and log tools, never by the agent).
    public struct Fleet: Sendable, Hashable {
        public enum Kind: Sendable, Hashable, CaseIterable {
            case renewFailed, leaseLost, lost, unavailable, notConfigured, finishAbandoned, publishRecovered, publishError
        }
        public var kind: Kind
        public var level: LogLevel
        public var fields: OrderedDictionary<String, JSONValue>
        public var at: Instant
        public init(_ kind: Kind, at: Instant, level: LogLevel, _ fields: OrderedDictionary<String, JSONValue>) {
            (self.kind, self.at, self.level, self.fields) = (kind, at, level, fields)
        }
    }

    public struct RunOutput: Sendable, Hashable {
        public enum Stream: String, Sendable, Hashable { case stdout, stderr }
        public var job: JobID, runID: RunID, attempt: Int, stream: Stream, line: String
        /// The line was cut at the runner's line limit.
        public var truncated: Bool
        public var at: Instant
        public init(job: JobID, runID: RunID, attempt: Int, stream: Stream, line: String, truncated: Bool, at: Instant) {
            (self.job, self.runID, self.attempt, self.stream, self.line, self.truncated, self.at) =
                (job, runID, attempt, stream, line, truncated, at)
        }
    }

    /// `run.finished`: the scheduler fills what it knows; the agent adds what only the runner
    /// saw (the exit status of a run Sundial stopped, output lost to the limits).
    public struct RunFinished: Sendable, Hashable {
        public var job: JobID, runID: RunID, attempt: Int, outcome: RunOutcome
        public var exitCode: Int32?, signal: Int32?, durationMs: Int64?
        /// The run outlived an agent crash and was taken over: no exit status, no later output.
        public var adopted: Bool
        public var outputDroppedBytes: Int = 0
        public var outputTruncatedLines: Int = 0
        public var at: Instant
        public init(
            job: JobID, runID: RunID, attempt: Int, outcome: RunOutcome, exitCode: Int32?, signal: Int32?,
            durationMs: Int64?, adopted: Bool = false, at: Instant
        ) {
            (self.job, self.runID, self.attempt, self.outcome) = (job, runID, attempt, outcome)
            (self.exitCode, self.signal, self.durationMs, self.adopted, self.at) = (exitCode, signal, durationMs, adopted, at)
        }
    }

    public struct RetryScheduled: Sendable, Hashable {
        /// The attempt that will run after `delayMs`.
        public var job: JobID, runID: RunID, attempt: Int, delayMs: Int64, at: Instant
        public init(job: JobID, runID: RunID, attempt: Int, delayMs: Int64, at: Instant) {
            (self.job, self.runID, self.attempt, self.delayMs, self.at) = (job, runID, attempt, delayMs, at)
        }
    }

    public struct RunSkipped: Sendable, Hashable {
        public var job: JobID, scheduledFor: Instant, reason: SkipReason
        /// On a `missed` summary: how many fires it stands for.
        public var count: Int?
        public var at: Instant
        /// More facts for some reasons (`fleet_claimed`: the box holding the claim and its token),
        /// written after the fixed fields in key order.
        public var detail: OrderedDictionary<String, JSONValue> = [:]
        public init(job: JobID, scheduledFor: Instant, reason: SkipReason, count: Int?, at: Instant) {
            (self.job, self.scheduledFor, self.reason, self.count, self.at) = (job, scheduledFor, reason, count, at)
        }
    }

    /// A run found alive at start, watched (`on_agent_restart: adopt`) or being killed (`kill`).
    public struct RunAdopted: Sendable, Hashable {
        public var job: JobID, runID: RunID, attempt: Int, scheduledFor: Instant, trigger: RunTrigger, pid: Int32
        public var policy: AgentRestartPolicy
        public var at: Instant
        public init(
            job: JobID, runID: RunID, attempt: Int, scheduledFor: Instant, trigger: RunTrigger, pid: Int32,
            policy: AgentRestartPolicy, at: Instant
        ) {
            (self.job, self.runID, self.attempt, self.scheduledFor, self.trigger, self.pid, self.policy, self.at) =
                (job, runID, attempt, scheduledFor, trigger, pid, policy, at)
        }
    }

    /// The common facts of a notification delivery's `notify.*` lines.
    public struct NotifyDelivery: Sendable, Hashable {
        public var job: JobID
        /// The run end reported (`failure`, `recovered`...).
        public var on: NotifyEvent
        /// The index in the job's `notify` list.
        public var entry: Int
        /// `command PROGRAM` or `webhook HOST:PORT` (never a URL's path: it often holds a token).
        public var target: String
        public var runID: RunID?
        public var attempts: Int
        public var at: Instant
        public init(job: JobID, on: NotifyEvent, entry: Int, target: String, runID: RunID?, attempts: Int, at: Instant) {
            (self.job, self.on, self.entry, self.target, self.runID, self.attempts, self.at) = (job, on, entry, target, runID, attempts, at)
        }
    }
}

extension LogRecord {
    /// When it happened (the line's `ts`).
    public var at: Instant {
        switch self {
        case let .agentStarted(r): r.at
        case let .agentStopping(r): r.at
        case let .agentStopped(r): r.at
        case let .agentFatal(r): r.at
        case let .configLoaded(r): r.at
        case let .configRejected(r): r.at
        case let .configUnchanged(_, _, at), let .configReloadAbandoned(_, _, _, at): at
        case let .configWatchPolling(_, at), let .configWatchFailed(_, at): at
        case let .runStarted(r): r.at
        case let .runOutput(r): r.at
        case let .runFinished(r): r.at
        case let .runRetryScheduled(r): r.at
        case let .runSkipped(r): r.at
        case let .runAdopted(r): r.at
        case let .jobPaused(_, at), let .jobResumed(_, at): at
        case let .clockStepped(_, _, _, at): at
        case let .clockUnsynced(_, at), let .clockSynced(_, at): at
        case let .stateError(_, at), let .stateWatchFailed(_, at): at
        case let .stateReset(_, _, at): at
        case let .limitsUnenforced(_, _, at): at
        case let .logDropped(_, at): at
        case let .logReopenFailed(_, at), let .metricsError(_, at), let .notifyQueueError(_, at): at
        case let .metricsListening(_, at): at
        case let .notifySent(d, _), let .notifyFailed(d, _): d.at
        case let .notifyRetrying(d, _, _): d.at
        case let .notifyAbandoned(_, _, at): at
        case let .fleet(r): r.at
        }
    }

    /// The line's `level`: fixed per event, or by outcome (a failed run is `warn`).
    public var level: LogLevel {
        switch self {
        case .agentFatal, .configRejected, .configReloadAbandoned, .stateError, .logReopenFailed: .error
        case let .runFinished(r): r.outcome.isSuccess ? .info : .warn
        case let .runSkipped(r): r.reason == .missed ? .warn : .info
        case let .runAdopted(r): r.policy == .adopt ? .info : .warn
        case let .fleet(r): r.level
        case .clockStepped, .clockUnsynced, .stateReset, .stateWatchFailed, .limitsUnenforced, .logDropped,
            .configWatchPolling, .configWatchFailed, .metricsError, .notifyFailed, .notifyAbandoned, .notifyQueueError:
            .warn
        default: .info
        }
    }
}
