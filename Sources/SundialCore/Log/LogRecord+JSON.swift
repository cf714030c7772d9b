import OrderedCollections

/// The JSON encoder of ``LogRecord``: the one place that knows the event names and field
/// names of design §3 (docs/reference.md, "The event log"). Users parse these lines, so names,
/// field order and types stay exactly as they were (LogRecordGoldenTests guards every case).
///
/// Built with `uncheckedUniqueKeys:values:` where the keys are literals (unique by
/// construction): a dictionary literal would hash every key of every line, a measurable share
/// of a simulated year.
extension LogRecord {
    /// The record as an event-log line (name and ordered fields), ready for the sink.
    public var event: Event {
        let (name, fields) = nameAndFields
        return Event(name, at: at, level: level, fields)
    }

    /// The record as one line of JSON, terminated by `\n`.
    public func jsonLine() -> [UInt8] { event.jsonLine() }

    private typealias Fields = OrderedDictionary<String, JSONValue>

    private static func fields(_ keys: [String], _ values: [JSONValue]) -> Fields {
        Fields(uncheckedUniqueKeys: keys, values: values)
    }

    private var nameAndFields: (String, Fields) {
        switch self {
        case let .agentStarted(r):
            return (
                "agent.started",
                Self.fields(
                    ["version", "pid", "config", "state"],
                    [
                        .string(r.version), .int(Int64(r.pid)), .array(r.config.map { .string($0) }), .string(r.state),
                    ])
            )
        case let .agentStopping(r):
            let cause: (String, JSONValue) =
                switch r.cause {
                case let .signal(s): ("signal", .string(s))
                case .fatal: ("reason", .string("fatal"))
                }
            return (
                "agent.stopping",
                Self.fields(
                    ["version", "pid", cause.0, "active_runs"],
                    [
                        .string(r.version), .int(Int64(r.pid)), cause.1, .int(Int64(r.activeRuns)),
                    ])
            )
        case let .agentStopped(r):
            return (
                "agent.stopped",
                Self.fields(
                    ["version", "pid", "exit_code"],
                    [
                        .string(r.version), .int(Int64(r.pid)), .int(Int64(r.exitCode)),
                    ])
            )
        case let .agentFatal(r):
            return (
                "agent.fatal",
                Self.fields(
                    ["version", "pid", "reason", "state"],
                    [
                        .string(r.version), .int(Int64(r.pid)), .string(r.reason), .string(r.state),
                    ])
            )
        case let .configLoaded(r):
            var f = Self.fields(
                ["revision", "files", "jobs", "added", "removed", "changed"],
                [
                    .string(r.revision), .int(Int64(r.files)), .int(Int64(r.jobs)),
                    .array(r.added.map(JSONValue.string)), .array(r.removed.map(JSONValue.string)),
                    .array(r.changed.map(JSONValue.string)),
                ])
            if let reason = r.reason { f["reason"] = .string(reason) }
            return (Self.configLoadedName, f)
        case let .configRejected(r):
            let errors: [JSONValue] = r.errors.map { p in
                .object(
                    Self.fields(
                        ["file", "line", "column", "message"],
                        [
                            .string(p.file), .int(Int64(p.line)), .int(Int64(p.column)), .string(p.message),
                        ]))
            }
            return (
                "config.rejected",
                Self.fields(
                    ["reason", "errors", "running_revision"],
                    [
                        .string(r.reason), .array(errors), .string(r.runningRevision),
                    ])
            )
        case let .configUnchanged(reason, revision, _):
            return ("config.unchanged", Self.fields(["reason", "revision"], [.string(reason), .string(revision)]))
        case let .configReloadAbandoned(reason, runningMs, runningRevision, _):
            return (
                "config.reload_abandoned",
                Self.fields(
                    ["reason", "running_ms", "running_revision"],
                    [
                        .string(reason), .int(runningMs), .string(runningRevision),
                    ])
            )
        case let .configWatchPolling(reason, _):
            return ("config.watch_polling", Self.fields(["reason"], [.string(reason)]))
        case let .configWatchFailed(reason, _):
            return ("config.watch_failed", Self.fields(["reason"], [.string(reason)]))
        case let .runStarted(r):
            var f = Self.fields(
                ["job", "run_id", "attempt", "scheduled_for", "trigger", "pid"],
                [
                    .string(r.job), .string(r.runID.rawValue), .int(Int64(r.attempt)),
                    .string(r.scheduledFor.description), .string(r.trigger.rawValue), r.pid.map { .int(Int64($0)) } ?? .null,
                ])
            // `lock: fleet`: the fencing token of the claim (null when run locally without one).
            if let fleet = r.fleet {
                f["fleet_token"] = fleet.token.map { .int($0) } ?? .null
                if let old = fleet.rerunOf { f["fleet_rerun_of"] = .int(old) }
            }
            return ("run.started", f)
        case let .runOutput(r):
            var f = Self.fields(
                ["job", "run_id", "attempt", "stream", "line"],
                [
                    .string(r.job), .string(r.runID.rawValue), .int(Int64(r.attempt)), .string(r.stream.rawValue), .string(r.line),
                ])
            if r.truncated { f["truncated"] = .bool(true) }
            return ("run.output", f)
        case let .runFinished(r):
            var f = Self.fields(
                ["job", "run_id", "attempt", "outcome", "exit_code", "signal", "duration_ms"],
                [
                    .string(r.job), .string(r.runID.rawValue), .int(Int64(r.attempt)), .string(r.outcome.name),
                    r.exitCode.map { .int(Int64($0)) } ?? .null, r.signal.map { .int(Int64($0)) } ?? .null,
                    r.durationMs.map { .int($0) } ?? .null,
                ])
            if case let .launchFailed(reason) = r.outcome { f["reason"] = .string(reason) }
            if r.adopted { f["adopted"] = .bool(true) }
            if r.outputDroppedBytes > 0 { f["output_dropped_bytes"] = .int(Int64(r.outputDroppedBytes)) }
            if r.outputTruncatedLines > 0 { f["output_truncated_lines"] = .int(Int64(r.outputTruncatedLines)) }
            return ("run.finished", f)
        case let .runRetryScheduled(r):
            return (
                "run.retry_scheduled",
                Self.fields(
                    ["job", "run_id", "attempt", "delay_ms"],
                    [
                        .string(r.job), .string(r.runID.rawValue), .int(Int64(r.attempt)), .int(r.delayMs),
                    ])
            )
        case let .runSkipped(r):
            var f = Self.fields(
                ["job", "scheduled_for", "reason"],
                [
                    .string(r.job), .string(r.scheduledFor.description), .string(r.reason.rawValue),
                ])
            if let count = r.count { f["count"] = .int(Int64(count)) }
            for (k, v) in r.detail.sorted(by: { $0.key < $1.key }) { f[k] = v }
            return ("run.skipped", f)
        case let .fleet(r):
            return (r.kind.name, r.fields)
        case let .runAdopted(r):
            return (
                "run.adopted",
                Self.fields(
                    ["job", "run_id", "attempt", "scheduled_for", "trigger", "pid", "on_agent_restart"],
                    [
                        .string(r.job), .string(r.runID.rawValue), .int(Int64(r.attempt)), .string(r.scheduledFor.description),
                        .string(r.trigger.rawValue), .int(Int64(r.pid)), .string(r.policy.rawValue),
                    ])
            )
        case let .jobPaused(job, _):
            return ("job.paused", Self.fields(["job"], [.string(job)]))
        case let .jobResumed(job, _):
            return ("job.resumed", Self.fields(["job"], [.string(job)]))
        case let .clockStepped(from, to, deltaMs, _):
            return (
                "clock.stepped",
                Self.fields(
                    ["from", "to", "delta_ms"],
                    [
                        .string(from.description), .string(to.description), .int(deltaMs),
                    ])
            )
        case let .clockUnsynced(detail, _):
            return ("clock.unsynced", detail)
        case let .clockSynced(detail, _):
            return ("clock.synced", detail)
        case let .stateError(message, _):
            return ("state.error", Self.fields(["message"], [.string(message)]))
        case let .stateReset(reason, state, _):
            return ("state.reset", Self.fields(["reason", "state"], [.string(reason), .string(state)]))
        case let .stateWatchFailed(reason, _):
            return ("state.watch_failed", Self.fields(["reason"], [.string(reason)]))
        case let .limitsUnenforced(job, reason, _):
            return ("limits.unenforced", Self.fields(["job", "reason"], [.string(job), .string(reason)]))
        case let .logDropped(lines, _):
            return ("log.dropped", Self.fields(["lines"], [.int(Int64(lines))]))
        case let .logReopenFailed(message, _):
            return ("log.reopen_failed", Self.fields(["message"], [.string(message)]))
        case let .metricsError(message, _):
            return ("metrics.error", Self.fields(["message"], [.string(message)]))
        case let .metricsListening(address, _):
            return ("metrics.listening", Self.fields(["address"], [.string(address)]))
        case let .notifySent(d, detail):
            return ("notify.sent", Self.delivery(d, ["detail"], [.string(detail)]))
        case let .notifyRetrying(d, reason, delayMs):
            return ("notify.retrying", Self.delivery(d, ["reason", "delay_ms"], [.string(reason), .int(delayMs)]))
        case let .notifyFailed(d, reason):
            return ("notify.failed", Self.delivery(d, ["reason"], [.string(reason)]))
        case let .notifyAbandoned(count, message, _):
            return ("notify.abandoned", Self.fields(["count", "message"], [.int(Int64(count)), .string(message)]))
        case let .notifyQueueError(message, _):
            return ("notify.queue_error", Self.fields(["message"], [.string(message)]))
        }
    }

    /// `job`, `on`, `entry` (`notify[0]`), `target`, `run_id` (when known), `attempts`, then the
    /// event's own fields.
    private static func delivery(_ d: NotifyDelivery, _ keys: [String], _ values: [JSONValue]) -> Fields {
        var f: Fields = fields(
            ["job", "on", "entry", "target"],
            [
                .string(d.job), .string(d.on.rawValue), .string("notify[\(d.entry)]"), .string(d.target),
            ])
        if let id = d.runID { f["run_id"] = .string(id.rawValue) }
        f["attempts"] = .int(Int64(d.attempts))
        for (k, v) in zip(keys, values) { f[k] = v }
        return f
    }
}

extension LogRecord.Fleet.Kind {
    /// The event name of design §3 / docs/fleet.md.
    public var name: String {
        switch self {
        case .renewFailed: "fleet.renew_failed"
        case .leaseLost: "fleet.lease_lost"
        case .lost: "fleet.lost"
        case .unavailable: "fleet.unavailable"
        case .notConfigured: "fleet.not_configured"
        case .finishAbandoned: "fleet.finish_abandoned"
        case .publishRecovered: "fleet.publish.recovered"
        case .publishError: "fleet.publish.error"
        }
    }
}

extension LogRecord {
    /// The name of `config.loaded`, for a program that reads another agent's log file and must
    /// find that line by name (the reload benchmark), as a user's script would: spelt here, by
    /// the encoder, so that no other source file names an event (issue 16).
    public static let configLoadedName = "config.loaded"
}
