import CSundialShim
import OrderedCollections
import SundialConfig
import SundialCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Everything `sundial run` needs, as values: parsed from the command line, with design §6's
/// defaults applied by the caller.
public struct AgentOptions: Sendable {
    public var configPaths: [String]
    public var stateDirectory: String
    /// `nil` or `-`: standard output.
    public var logPath: String?
    public var logMaxBytes: Int64
    public var logKeep: Int
    public var logLevel: LogLevel
    public var shutdownGraceMs: Int64
    public var debounceMs: Int64
    public var pollIntervalMs: Int64
    public var watch: WatchMode
    public var resetState: Bool
    public var version: String
    /// The control socket (`--control`); `nil`: `STATE/sundial.sock`.
    public var controlPath: String? = nil
    /// Hold calendar jobs until the kernel says the clock is synchronised (`--hold-until-synced`).
    public var holdUntilSynced = false
    /// Prometheus text file for node_exporter's textfile collector (`nil`: none).
    public var metricsFile: String?
    /// Loopback address to serve `GET /metrics` on (`nil`: none).
    public var metricsListen: ListenAddress?
    /// The fleet's coordinator for `lock: fleet` jobs (`--fleet`; the CLI builds it), or `nil`:
    /// no fleet, no fleet worker thread, no fleet wake-ups, and fleet-locked jobs follow their
    /// `fleet_unavailable` (with a warning at start).
    public var fleet: (any FleetCoordinator)? = nil
    /// This box's name in the fleet (`--box`; the CLI defaults it to the hostname).
    public var box: String = "local"
    /// Where this box publishes its run records (`--fleet`); `nil`: no outbox, no publisher.
    public var fleetResults: FleetResultsOptions? = nil

    public enum WatchMode: String, Sendable, CaseIterable { case auto, poll, off }

    public init(
        configPaths: [String], stateDirectory: String, logPath: String? = nil, logMaxBytes: Int64 = 64 << 20,
        logKeep: Int = 5, logLevel: LogLevel = .info, shutdownGraceMs: Int64 = 30_000, debounceMs: Int64 = 250,
        pollIntervalMs: Int64 = 2000, watch: WatchMode = .auto, resetState: Bool = false, version: String
    ) {
        self.configPaths = configPaths
        self.stateDirectory = stateDirectory
        self.logPath = logPath
        self.logMaxBytes = logMaxBytes
        self.logKeep = logKeep
        self.logLevel = logLevel
        self.shutdownGraceMs = shutdownGraceMs
        self.debounceMs = debounceMs
        self.pollIntervalMs = pollIntervalMs
        self.watch = watch
        self.resetState = resetState
        self.version = version
        self.metricsFile = nil
        self.metricsListen = nil
    }
}

/// Wires the real machine to an ``Agent``: state directory lock, SQLite state, event log,
/// zone database, process runner, wake timer, signals and the config watcher. Thin by
/// design: every decision lives in the agent and the scheduler.
public enum AgentHost {
    /// Runs the agent until it stops; returns the process exit status (design §4).
    ///
    /// - Parameter loop: the event loop serving the agent's descriptors, run by the caller's
    ///   main thread (`sundial run`); stopped when the agent ends. `nil`: a loop with a thread
    ///   of its own.
    public static func run(
        _ options: AgentOptions, loop givenLoop: EventLoop? = nil,
        stderr: @Sendable (String) -> Void
    ) async -> Int32 {
        let clock = SystemClock()
        // Every service below is recorded as it starts; on every way out of this function they
        // stop in the reverse order (ServiceStack).
        let services = ServiceStack()
        defer { services.stopAll() }

        // The state directory: created, locked (one agent per state), 0700.
        let stateDir: StateDirectory
        do {
            stateDir = try StateDirectory.acquire(path: options.stateDirectory)
        } catch let error as StateError where error.code == .locked {
            stderr("sundial: another agent (pid \(error.holderPID.map(String.init) ?? "unknown")) is using the state directory \(options.stateDirectory)\n")
            return 1
        } catch {
            stderr("sundial: cannot use the state directory \(options.stateDirectory): \(error)\n")
            return 1
        }
        services.started("state directory lock") { stateDir.release() }

        // The event log.
        let masker = SecretMasker()
        let sink: any EventSink
        var fileSink: FileEventSink?
        if let path = options.logPath, path != "-" {
            do throws(SinkError) {
                fileSink = try FileEventSink(path: path, maxBytes: options.logMaxBytes, keep: options.logKeep, clock: clock)
                sink = fileSink!
            } catch {
                stderr("sundial: cannot open the log \(path): \(error)\n")
                return 1
            }
        } else {
            sink = DescriptorEventSink(fd: 1)
        }
        let log = EventLog(sink: sink, clock: clock, masker: masker, minimumLevel: options.logLevel)

        let store: SQLiteStateStore
        // Looked at before SQLite opens (and so creates) the file: a missing or empty database
        // in a directory that had one is lost state, which SQLite would take as a fresh start.
        var lostState = options.resetState ? nil : stateDir.lostDatabase()
        var storeOptions = SQLiteStateStore.Options.fromEnvironment()
        storeOptions.fleetOutbox = options.fleetResults != nil
        do {
            // `--reset-state` moves the database aside only when it cannot be opened and read.
            // A sound one is kept: the flag is easily left in a unit file after the one start it
            // was meant for, and wiping sound state at every restart forgot the fire marks
            // (`@reboot` ran again in the same boot) and the runs in flight (a running
            // `concurrency: forbid` job was neither adopted nor stopped, and a second copy
            // started beside it).
            var sound: SQLiteStateStore?
            if options.resetState, access(stateDir.databasePath, F_OK) == 0 {
                sound = try? SQLiteStateStore(path: stateDir.databasePath, options: storeOptions)
                if let opened = sound, (try? opened.restore()) == nil {
                    try? opened.close()
                    sound = nil
                }
                if sound != nil {
                    stderr("sundial: --reset-state: the state database is sound; it is kept\n")
                } else if let moved = try SQLiteStateStore.moveAside(databaseAt: stateDir.databasePath, now: clock.wallNow()) {
                    stderr("sundial: moved the old state database aside to \(moved)\n")
                    log.log(
                        LogRecord.stateReset(
                            reason: "--reset-state: moved the old state database aside to \(moved); starting with an empty database",
                            state: stateDir.path, at: clock.wallNow()))
                }
            }
            store = try sound ?? SQLiteStateStore(path: stateDir.databasePath, options: storeOptions)
        } catch {
            stderr(
                "sundial: cannot open the state database \(stateDir.databasePath): \(error)\n"
                    + "sundial: start with --reset-state to keep the bad file aside and start fresh\n")
            return 1
        }
        services.started("state store") { try? store.close() }
        // Private whatever the umask or an existing directory's mode: the database holds the
        // queued webhook deliveries (URLs and header values) and the runs' output. The -wal and
        // -shm files SQLite creates later take the database file's mode.
        for suffix in ["", "-wal", "-shm"] { _ = chmod(stateDir.databasePath + suffix, 0o600) }
        do { try stateDir.lockDatabase() } catch let error as StateError where error.code == .locked {
            stderr("sundial: another agent is using the state database \(stateDir.databasePath) (it is shared with another state directory)\n")
            return 1
        } catch {
            stderr("sundial: cannot lock the state database: \(error)\n")
            return 1
        }
        // The fleet's result backend (only with --fleet): its thread publishes the outbox; it
        // stops before the store closes.
        if let results = options.fleetResults {
            let publisher = FleetRunPublisher(host: results, store: store, version: options.version, masker: masker, log: log)
            publisher.start()
            services.started("fleet publisher") { publisher.stop() }
        }
        var restored: RestoredState
        do { restored = try store.restore() } catch {
            stderr("sundial: cannot read the state database: \(error)\n")
            return 1
        }
        // A write-ahead log can carry a whole database back into an empty file: then nothing
        // was lost after all.
        if restored.lastFired.isEmpty, restored.inFlight.isEmpty, restored.lastSeen == nil, let lost = lostState {
            log.log(LogRecord.stateReset(reason: lost, state: stateDir.path, at: clock.wallNow()))
        }
        lostState = nil
        stateDir.writeMarker(now: clock.wallNow())

        // Runs in flight whose process outlived the previous agent: found by their recorded
        // identity (pid, start time, boot), or by their SUNDIAL_RUN_ID when the agent died
        // before recording it (recorded now, so a second crash finds them directly).
        let survivors = ProcessProbe.survivors(of: restored.inFlight)
        restored.alive = survivors.alive
        if !survivors.discovered.isEmpty {
            let attempts = Dictionary(restored.inFlight.map { ($0.id, $0.attempt) }, uniquingKeysWith: { a, _ in a })
            try? store.apply(
                survivors.discovered.map { id, identity in
                    .processStarted(runID: id, attempt: attempts[id] ?? 1, identity: identity)
                })
        }

        // Configuration.
        let zones = SystemTimeZones()
        let calculator = CalendarFireCalculator(zones: zones)
        let paths = options.configPaths.map(absolutePath)
        // Job files are parsed in a child process under limits (IsolatedConfigLoader): no file
        // can crash, hang or bloat the agent.
        let loader = IsolatedConfigLoader.fromEnvironment()
        let load: @Sendable () -> ConfigLoadResult = {
            // A tzdata update reaches the agent on the next reload: the zone files are re-read,
            // and the calculator's parsed schedules (which hold the old rules) are dropped.
            zones.reload()
            calculator.invalidateCache()
            return loader.load(paths: paths)
        }
        let initial = load()
        guard initial.isValid, let jobs = initial.jobSet else {
            let sources = ConfigurationLoading.sources(for: initial.diagnostics)
            stderr(DiagnosticFormatter(format: .text, sources: sources).render(initial.diagnostics))
            stderr("sundial: the configuration is invalid; not starting\n")
            return 1
        }

        // Warm what the first fire would otherwise do on its launch path: each job's state row
        // and the compiled statements, and the agent's own account (getpwuid reads /etc/passwd).
        try? store.warmUp(jobs: jobs.jobs.keys)
        _ = LaunchSpec.agentUser

        // One thread in epoll_wait for the wake-up timerfd, the signalfd, the configuration's
        // and the state directory's inotify, the process runner's children and the control
        // socket (EventLoop says why): the main thread in `sundial run`. Stopped after every
        // service it serves.
        let loop: EventLoop
        if let givenLoop {
            loop = givenLoop
        } else {
            do throws(EventLoop.StartError) { loop = try EventLoop() } catch {
                stderr("sundial: cannot start the event loop: \(error)\n")
                return 1
            }
        }
        services.started("event loop") { loop.stop() }

        // The runner: this agent's, and the process's orphan reaper (child subreaper), since
        // this is the real agent process; served by the loop. It is not shut down here: the
        // process ends with `run` (and what the agent's shutdown left running must stay so,
        // for adoption).
        let runner: ProcessRunner
        do throws(RunnerError) { runner = try ProcessRunner(reapsOrphans: true, loop: loop) } catch {
            stderr("sundial: cannot start the process runner: \(error)\n")
            return 1
        }

        let ref = AgentRef()
        // Ends the task that hands the threads' inputs to the agent (and its hold on it).
        services.started("agent inbox") { ref.close() }
        let timer: WakeTimer
        do {
            timer = try WakeTimer(loop: loop) { reason in ref.deliver(reason == .due ? .wake : .clockChanged) }
        } catch {
            stderr("sundial: cannot create the wake timer: \(error)\n")
            return 1
        }
        services.started("wake timer") { timer.stop() }

        var settings = Agent.Settings(
            configPaths: paths, stateDirectory: stateDir.path, shutdownGraceMs: options.shutdownGraceMs,
            version: options.version)
        settings.bootID = ProcessProbe.bootID
        settings.fireLeadMs = Agent.Settings.fireLeadFromEnvironment
        let agent = Agent(
            settings: settings,
            jobs: jobs, clock: clock, random: SystemRandom(), calculator: calculator,
            launcher: ProcessRunnerLauncher(
                runner: runner, masker: masker,
                onLimitsUnenforced: { job, reason in
                    log.log(LogRecord.limitsUnenforced(job: job, reason: reason, at: clock.wallNow()))
                }), log: log, store: store, alarm: timer,
            pid: getpid(), adopter: AdoptionWatcher(), fleet: options.fleet, box: options.box, loop: loop,
            loadConfiguration: load)
        ref.set(agent)

        // Signals → inputs (blocked in every thread by `AgentSignals.prepareProcess()` in main,
        // read from a signalfd on the loop and handed straight to the agent's lossless inbox).
        do throws(RunnerError) {
            let reopenable = fileSink
            let listener = try SignalListener([SIGTERM, SIGINT, SIGHUP, SIGUSR1], loop: loop) { signal in
                switch signal {
                case SIGHUP: ref.deliver(.reload(reason: "SIGHUP"))
                case SIGTERM: ref.deliver(.shutdown(signal: "SIGTERM"))
                case SIGINT: ref.deliver(.shutdown(signal: "SIGINT"))
                // After an external logrotate moved the file: write to a new one at the path.
                case SIGUSR1:
                    do throws(SinkError) { try reopenable?.reopen() } catch {
                        log.log(LogRecord.logReopenFailed(message: "\(error)", at: clock.wallNow()))
                    }
                default: break
                }
            }
            services.started("signals") { listener.stop() }
        } catch {
            stderr("sundial: cannot listen for signals: \(error)\n")
            return 1
        }

        // File changes → the same reload path.
        if options.watch != .off {
            let w = ConfigWatcher(
                paths: paths,
                options: .init(
                    debounce: .milliseconds(options.debounceMs),
                    pollInterval: .milliseconds(options.pollIntervalMs),
                    mode: options.watch == .poll ? .poll : .auto),
                loop: loop
            ) { note in
                switch note {
                case .changed: ref.deliver(.reload(reason: "files changed"))
                case let .pollingFallback(reason): ref.log(.configWatchPolling(reason: reason, at: clock.wallNow()))
                }
            }
            do throws(ConfigWatcher.StartError) { try w.start() } catch {
                log.log(LogRecord.configWatchFailed(reason: error.description, at: clock.wallNow()))
            }
            services.started("config watcher") { w.stop() }
        }

        // Metrics: derived from the event stream, so they can never disagree with the log.
        if options.metricsFile != nil || options.metricsListen != nil {
            // The status pages share the listener; they read the agent per request and hold
            // nothing between requests but the last reload's outcome (StatusEventMemory).
            var pages: StatusPages?
            if options.metricsListen != nil {
                let memory = StatusEventMemory()
                await agent.addObserver { memory.observe($0) }
                pages = StatusPages(source: StatusSource(agent: agent, zones: zones, events: memory))
            }
            let m = MetricsExporter(
                options: .init(
                    filePath: options.metricsFile, listen: options.metricsListen,
                    registry: .init(version: options.version), pages: pages)
            ) { message in
                log.log(LogRecord.metricsError(message: message, at: clock.wallNow()))
            }
            do throws(MetricsExporter.StartError) { try m.start() } catch {
                stderr("sundial: cannot start metrics: \(error)\n")
                return 1
            }
            // The actual address: with port 0 the kernel chose it, and nothing else tells.
            if let address = m.boundAddress {
                log.log(LogRecord.metricsListening(address: address.description, at: clock.wallNow()))
            }
            // Next fires and final outcomes come at the end of the agent's step (no extra wake-up).
            m.onStepEndRequest { Task { await endMetricsStep(m, on: agent) } }
            await agent.addObserver { m.observe($0) }
            services.started("metrics") { m.stop() }
        }

        // systemd (Type=notify): READY once the configuration is loaded and scheduling has begun,
        // RELOADING around reloads, STOPPING on shutdown. No-op outside systemd.
        if let notifier = SystemdNotifier.fromEnvironment() {
            await agent.addObserver { record in
                // STATUS= reads like the log line: its event name and the revision now running.
                let revision: String
                switch record {
                case .agentStopping:
                    try? notifier.stopping()
                    return
                case let .configLoaded(r): revision = r.revision
                case let .configRejected(r): revision = r.runningRevision
                case let .configUnchanged(_, r, _): revision = r
                default: return
                }
                try? notifier.ready(status: "\(record.event.name): revision \(revision)")
            }
            await agent.addReloadObserver { try? notifier.reloading() }
        }

        // Notifications (`notify:`): decided at each step's end, sent by their own thread. The
        // last outcomes make a first success after a failure before the restart `recovered`.
        let lastOutcomes = ((try? store.latestRuns()) ?? [:]).compactMapValues(\.outcome)
        // Deliveries are rows of state.db until they end, so those a stop (or a crash) left are
        // sent now, before any new one (at least once: the document's run_id tells repeats).
        let notifyQueue = StateStoreNotificationQueue(store: store, clock: clock) { message in
            log.log(LogRecord.notifyQueueError(message: message, at: clock.wallNow()))
        }
        let notifier = Notifier(queue: notifyQueue, log: log, clock: clock, lastOutcomes: lastOutcomes)
        await agent.setNotifier(notifier)
        notifier.resumePending()

        guard await startControl(agent: agent, stateDirectory: stateDir, options: options, clock: clock, loop: loop, stderr: stderr) else { return 1 }
        await agent.start(restored: restored)
        // The state directory, its lock and its database must stay what they are: removed or
        // replaced, the agent stops (agent.fatal, exit 1) rather than run on without them.
        // Started once the agent takes inputs; a change since the lock was taken is caught by
        // the watch's first look.
        do throws(StateDirectoryWatch.StartError) {
            let guardWatch = try StateDirectoryWatch(directory: stateDir, loop: loop) { reason in ref.deliver(.fatal(reason: reason)) }
            services.started("state directory watch") { guardWatch.stop() }
        } catch {
            log.log(LogRecord.stateWatchFailed(reason: error.description, at: clock.wallNow()))
        }
        // Start-up's garbage (the loader's answer, the decode's tables) goes back to the
        // kernel, as after each reload (Agent+Reload): measured with 1,000 jobs, RssAnon 7.6 →
        // 7.4 MiB (docs/benchmarks.md, "Issue 15"). Only free pages go: no later cost.
        _ = sundial_trim_heap()
        let status = await agent.waitUntilStopped()
        // Deliveries of the last runs (a failure just before the stop) get a few seconds to go
        // out now; the agent stops waiting for what is left (`notify.abandoned`), which stays in
        // state.db and is delivered after the restart.
        let abandoned = notifier.waitForDeliveries(upToMs: 5000)
        notifyQueue.flush()
        if abandoned > 0 {
            log.log(
                LogRecord.notifyAbandoned(
                    count: abandoned, message: "kept in state.db; delivered after the restart",
                    at: clock.wallNow()))
        }
        return status
    }

    /// Runs on the agent's actor, after the step whose lines asked for it.
    static func endMetricsStep(_ metrics: MetricsExporter, on agent: isolated Agent) {
        metrics.endStep(nextFires: agent.nextFires())
    }

    static func absolutePath(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buf, buf.count) != nil else { return path }
        let cwd = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var p = path
        while p.hasPrefix("./") { p.removeFirst(2) }
        if p == "." || p.isEmpty { return cwd }
        return cwd + "/" + p
    }
}
