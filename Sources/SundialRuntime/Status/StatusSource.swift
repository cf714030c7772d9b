import OrderedCollections
import SundialCore

/// Where the status pages get their data (one snapshot per request, nothing kept between).
public protocol StatusDataSource: Sendable {
    func agentInfo() async -> StatusAgentInfo
    /// The agent and one row per configured job, in file order.
    func jobRows() async -> (agent: StatusAgentInfo, rows: [StatusJobRow])
    /// One job; nil when the id is neither configured nor in the history.
    func jobDetail(_ id: JobID) async -> (agent: StatusAgentInfo, detail: StatusJobDetail)?
    /// The runs of the last ``StatusSource/timelineWindow``.
    func timeline() async -> (agent: StatusAgentInfo, timeline: StatusTimeline)
}

/// The running agent's data: one short call on the actor for what only it knows (the running
/// set, next fires, runs in flight), then the state store for history and the `why` ledger,
/// off the actor, the way `sundial status`/`history`/`why` get theirs. A store that cannot be
/// read leaves the pages without history rather than failing them.
public struct StatusSource: StatusDataSource {
    /// Outcomes shown in a job's sparkline.
    public static let sparklineRuns = 20
    /// Runs shown on a job's page.
    public static let jobPageRuns = 50
    /// Stored output shown on a job's page: the newest 64 KiB of each run, 1 MiB in all (newest
    /// runs first). HTML escaping can grow text sixfold and the listener answers at most
    /// 16 MiB; `sundial logs JOB --run ID` prints a run's whole output.
    public static let jobPageOutputBytesPerRun = 64 * 1024
    public static let jobPageOutputBytes = 1 << 20
    public static let timelineWindow: Duration = .seconds(86_400)

    let agent: Agent
    /// Where history and the ledger are read: the agent's store (tests measure with another).
    let store: (any StateStore)?
    let zones: (any TimeZoneProvider)?
    let events: StatusEventMemory?
    let clockProbe: @Sendable () -> Bool?

    public init(
        agent: Agent, zones: (any TimeZoneProvider)?, events: StatusEventMemory?,
        clockProbe: @escaping @Sendable () -> Bool? = ClockSync.kernelSaysSynchronised
    ) {
        self.init(agent: agent, store: agent.store, zones: zones, events: events, clockProbe: clockProbe)
    }

    /// Reads history and the ledger from `store` rather than the agent's (tests, benchmarks).
    init(
        agent: Agent, store: (any StateStore)?, zones: (any TimeZoneProvider)?, events: StatusEventMemory? = nil,
        clockProbe: @escaping @Sendable () -> Bool? = { true }
    ) {
        self.agent = agent
        self.store = store
        self.zones = zones
        self.events = events
        self.clockProbe = clockProbe
    }

    public func agentInfo() async -> StatusAgentInfo {
        info(await agent.statusPageSnapshot(withJobs: false))
    }

    func info(_ snap: Agent.StatusPageSnapshot) -> StatusAgentInfo {
        StatusAgentInfo(
            version: agent.settings.version, pid: agent.pid, revision: snap.status.revision,
            startedAt: snap.status.startedAt, configLoadedAt: events?.configLoadedAt,
            lastRejected: events?.lastRejected, clockSynchronised: clockProbe(),
            calendarHeld: snap.calendarHeld, now: agent.clock.wallNow())
    }

    public func jobRows() async -> (agent: StatusAgentInfo, rows: [StatusJobRow]) {
        let snap = await agent.statusPageSnapshot()
        let info = info(snap)
        let running = Set(snap.status.active.map(\.job))
        let bulk = try? (store as? any StatusHistoryReading)?.recentRuns(limit: Self.sparklineRuns)
        var rows: [StatusJobRow] = []
        rows.reserveCapacity(snap.status.jobs.count)
        for (spec, next, held, paused) in snap.status.jobs {
            let recent = bulk.map { $0[spec.id] ?? [] } ?? (try? store?.history(job: spec.id, limit: Self.sparklineRuns)) ?? []
            rows.append(row(spec, next: next, held: held, paused: paused, running: running.contains(spec.id), recent: recent))
        }
        return (info, rows)
    }

    public func jobDetail(_ id: JobID) async -> (agent: StatusAgentInfo, detail: StatusJobDetail)? {
        let info = info(await agent.statusPageSnapshot(withJobs: false))
        let current = await agent.statusPageJob(id)
        let runs = (try? store?.history(job: id, limit: Self.jobPageRuns)) ?? []
        if current == nil, runs.isEmpty { return nil }
        let ledger = (try? store?.ledger(job: id, since: info.now - Agent.whyWindow)) ?? []
        let r: StatusJobRow
        if let current {
            r = row(
                current.spec, next: current.next, held: current.held, paused: current.paused, running: current.running,
                recent: Array(runs.prefix(Self.sparklineRuns)))
        } else {
            r = StatusJobRow(id: id, schedule: "(removed)", enabled: false, recent: Array(runs.prefix(Self.sparklineRuns)))
        }
        let detail = StatusJobDetail(
            row: r, definition: current.map { Self.definition($0.spec, masker: agent.log.masker) }, location: current?.spec.location,
            ledger: ledger, runs: outputs(of: runs, job: id))
        return (info, detail)
    }

    /// The runs with their stored output, within ``jobPageOutputBytesPerRun`` each and
    /// ``jobPageOutputBytes`` in all, newest runs (and within a run, its latest attempts) first.
    func outputs(of runs: [RunSummary], job: JobID) -> [StatusRun] {
        var budget = Self.jobPageOutputBytes
        return runs.map { run in
            let allowed = min(budget, Self.jobPageOutputBytesPerRun)
            guard let store, let records = try? store.outputTail(run: run.id, maxBytes: allowed), !records.isEmpty else {
                return StatusRun(summary: run)
            }
            var left = allowed
            var kept: [RunOutputRecord] = []
            for r in records.reversed() {
                let t = r.tail(maxBytes: left)
                left -= t.text.utf8.count
                kept.append(t)
            }
            budget -= allowed - left
            return StatusRun(summary: run, output: Self.lines(of: kept.reversed(), job: job))
        }
    }

    /// A run's stored output as page lines: a heading per attempt when there are several, and
    /// a note where bytes are not shown.
    static func lines(of records: [RunOutputRecord], job: JobID) -> [String] {
        var out: [String] = []
        for r in records {
            if records.count > 1 { out.append("— attempt \(r.attempt) —") }
            if r.droppedBytes > 0 {
                out.append("… \(r.droppedBytes) earlier bytes not shown (sundial logs \(job) --run \(r.runID.rawValue))")
            }
            // By byte: "\r\n" is one `Character`, so a `Character` split would not split it.
            for line in r.text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).dropLast() {
                var l = Substring(line)
                if l.utf8.last == UInt8(ascii: "\r") { l = Substring(l.utf8.dropLast()) }
                out.append(String(l))
            }
        }
        return out
    }

    public func timeline() async -> (agent: StatusAgentInfo, timeline: StatusTimeline) {
        let snap = await agent.statusPageSnapshot()
        let info = info(snap)
        let start = info.now - Self.timelineWindow
        let bulk = try? (store as? any StatusHistoryReading)?.runs(since: start, limit: TimelineSVG.maxBarsPerRow)
        var rows: [StatusTimeline.Row] = []
        rows.reserveCapacity(snap.status.jobs.count)
        for (spec, _, _, _) in snap.status.jobs {
            let runs = bulk.map { $0[spec.id] ?? [] } ?? (try? store?.history(job: spec.id, limit: TimelineSVG.maxBarsPerRow)) ?? []
            rows.append(.init(job: spec.id, runs: runs.filter { ($0.finishedAt ?? info.now) >= start }))
        }
        return (info, StatusTimeline(start: start, end: info.now, rows: rows))
    }

    // MARK: - Building rows

    func row(_ spec: JobSpec, next: Instant?, held: Bool, paused: Bool, running: Bool, recent: [RunSummary]) -> StatusJobRow {
        var explanation: String?
        if case let .cron(text) = spec.schedule { explanation = try? CronExplainer.explain(text) }
        var nextLocal: String?
        if let next, let rules = try? zones?.rules(named: spec.timezone) {
            nextLocal = Self.wallText(rules.localTime(at: next))
        }
        return StatusJobRow(
            id: spec.id, description: spec.description, schedule: Agent.scheduleText(spec),
            explanation: explanation, timezone: spec.timezone, enabled: spec.enabled, next: next,
            nextLocal: nextLocal, held: held, paused: paused, running: running, recent: recent)
    }

    /// `2026-12-02 14:30:00`.
    static func wallText(_ t: LocalDateTime) -> String {
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(t.year)-\(two(t.month))-\(two(t.day)) \(two(t.hour)):\(two(t.minute)):\(two(t.second))"
    }

    /// The definition as the job page lists it. Environment values are not shown (they may be
    /// secrets); their names are. A secret value written into the command (or a workdir, a
    /// path) is masked: the job's own `env` values, which a job that never ran has not yet
    /// given the agent, and every value the agent's `masker` has learnt (its `env_file`'s).
    static func definition(_ s: JobSpec, masker: SecretMasker) -> [(key: String, value: String)] {
        let own = SecretMasker(LaunchSpec.secretValues(of: s) { s.env[$0] })
        return definition(s).map { ($0.key, masker.mask(own.mask($0.value))) }
    }

    private static func definition(_ s: JobSpec) -> [(key: String, value: String)] {
        var d: [(key: String, value: String)] = []
        switch s.command {
        case let .argv(argv): d.append(("command", argv.map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")))
        case let .shell(text): d.append(("command", text))
        }
        d.append(("schedule", Agent.scheduleText(s)))
        if let tz = s.timezone { d.append(("timezone", tz)) }
        if let w = s.workdir { d.append(("workdir", w)) }
        if let u = s.user { d.append(("user", u)) }
        if let g = s.group { d.append(("group", g)) }
        if !s.env.isEmpty { d.append(("env", s.env.keys.joined(separator: ", "))) }
        if let f = s.envFile { d.append(("env_file", f)) }
        if let t = s.timeoutMs { d.append(("timeout", DurationParser.format(milliseconds: t))) }
        if s.retry.attempts > 1 {
            d.append(("retry", "\(s.retry.attempts) attempts, \(s.retry.backoff.rawValue) from \(DurationParser.format(milliseconds: s.retry.delayMs))"))
        }
        if !s.needs.isEmpty { d.append(("needs", s.needs.map { "\($0.job) (\($0.on.rawValue))" }.joined(separator: ", "))) }
        d.append(("concurrency", s.concurrency.rawValue))
        d.append(("catchup", s.catchup.rawValue))
        if s.jitterMs > 0 { d.append(("jitter", DurationParser.format(milliseconds: s.jitterMs))) }
        d.append(("enabled", s.enabled ? "true" : "false"))
        return d
    }
}
