import SundialConfig
import SundialCore
import SundialRuntime
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The whole agent on virtual time: a ``VirtualClock``, a ``ScriptedLauncher``, a
/// ``RecordingAlarm``, an in-memory log and state store. `advance(to:)` moves time from one
/// wake-up or scripted run end to the next, so a week of schedule takes milliseconds.
public final class AgentHarness: Sendable {
    public let clock: VirtualClock
    public let launcher: ScriptedLauncher
    public let alarm = RecordingAlarm()
    public let sink = MemoryEventSink()
    public let store: MemoryStateStore
    public let agent: Agent
    private let collected = Locked<[LogRecord]>([])
    /// `run.started` and `run.finished` counts, so that `settle()` is O(1) per check.
    private let counts = Locked<(started: Int, finished: Int)>((0, 0))
    private let config: Locked<ConfigLoadResult>
    /// Lets a test hold a load in flight (a loader stuck on a hung mount).
    public let loads = LoadGate()

    /// - Parameters:
    ///   - yaml: the job file; the loader checks it exactly as `sundial run` would.
    ///   - zones: the zone database (tests may read the system's).
    ///   - bootID: the kernel's boot id the agent sees (`nil`: every start is a boot).
    ///   - loop: the event loop the agent runs on, as `sundial run`'s does (`nil`: a plain actor).
    ///   - fireLeadMs: ``Agent/Settings/fireLeadMs`` (0: fires are decided at their instant).
    ///   - fleetDrainMs: ``Agent/Settings/fleetDrainMs`` (`nil`: the default).
    public init(
        yaml: String, start: Instant, script: [JobID: [ScriptedLauncher.Step]] = [:],
        zones: any TimeZoneProvider, store: MemoryStateStore = MemoryStateStore(), seed: UInt64 = 1,
        bootID: String? = nil, fleet: (any FleetCoordinator)? = nil, box: String = "local", loop: EventLoop? = nil,
        fireLeadMs: Int64 = 0, fleetDrainMs: Int64? = nil
    ) throws {
        clock = VirtualClock(wall: start, monotonic: 1_000_000)
        launcher = ScriptedLauncher(clock: clock, script: script)
        self.store = store
        let loaded = Self.load(yaml, zones: zones)
        guard let jobs = loaded.jobSet, loaded.isValid else {
            throw HarnessError(message: loaded.diagnostics.map(\.description).joined(separator: "\n"))
        }
        config = Locked(loaded)
        let log = EventLog(sink: sink, clock: clock)
        let configCell = config
        let gate = loads
        var settings = Agent.Settings(configPaths: ["jobs.yaml"], stateDirectory: "/nonexistent", version: "test")
        settings.bootID = bootID
        settings.fireLeadMs = fireLeadMs
        if let fleetDrainMs { settings.fleetDrainMs = fleetDrainMs }
        agent = Agent(
            settings: settings,
            jobs: jobs, clock: clock, random: SeededRandom(seed: seed),
            calculator: CalendarFireCalculator(zones: zones), launcher: launcher, log: log, store: store,
            alarm: alarm, pid: 1, fleet: fleet, box: box, loop: loop,
            loadConfiguration: {
                gate.pass()
                defer { gate.finished() }
                return configCell.withLock { $0 }
            })
    }

    public struct HarnessError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    static func load(_ yaml: String, zones: any TimeZoneProvider) -> ConfigLoadResult {
        let env = ConfigEnvironment(zoneExists: { (try? zones.rules(named: $0)) != nil })
        return ConfigLoader(environment: env).load([.init(path: "jobs.yaml", bytes: Array(yaml.utf8))])
    }

    /// Starts the agent (with `restored` state from a previous life, if any).
    public func start(restored: RestoredState? = nil) async throws {
        let collected = self.collected
        let counts = self.counts
        await agent.addObserver { r in
            collected.withLock { $0.append(r) }
            if case .runStarted = r { counts.withLock { $0.started += 1 } }
            if case .runFinished = r { counts.withLock { $0.finished += 1 } }
        }
        let state = try restored ?? store.restore()
        await agent.start(restored: state)
        await settle()
    }

    /// Every record so far.
    public var records: [LogRecord] { collected.withLock { $0 } }

    /// Every record so far, rendered as its log line (tests read names and fields).
    public var events: [Event] { records.map(\.event) }

    /// Events named `name`.
    public func events(_ name: String) -> [Event] { events.filter { $0.name == name } }

    /// Moves virtual time to `target`, delivering every wake-up and run end on the way.
    public func advance(to target: Instant) async {
        var guardCount = 0
        while guardCount < 1_000_000 {
            guardCount += 1
            let candidates = [alarm.armedAt, launcher.nextEnd].compactMap { $0 }
            guard let next = candidates.min(), next <= target else { break }
            let now = clock.wallNow()
            if next > now { clock.advance(by: next - now) }
            let ended = launcher.completeDue(at: clock.wallNow())
            if !ended.isEmpty {
                await settle()
                continue
            }
            if let armed = alarm.armedAt, armed <= clock.wallNow() {
                await agent.deliver(.wake)
                await settle()
            }
        }
        let now = clock.wallNow()
        if target > now { clock.advance(by: target - now) }
    }

    public func advance(by d: Duration) async { await advance(to: clock.wallNow() + d) }

    /// Steps the wall clock only (NTP), and lets the agent notice (as the timerfd would).
    public func stepWallClock(by d: Duration) async {
        clock.stepWall(by: d)
        await agent.deliver(.clockChanged)
        await settle()
    }

    /// Replaces what the next load returns, without reloading.
    public func setConfiguration(yaml: String, zones: any TimeZoneProvider) {
        config.withLock { $0 = Self.load(yaml, zones: zones) }
    }

    /// Replaces the configuration and reloads (as a file change would).
    public func reload(yaml: String, zones: any TimeZoneProvider) async {
        config.withLock { $0 = Self.load(yaml, zones: zones) }
        let before = events.filter { $0.name.hasPrefix("config.") }.count
        await agent.deliver(.reload(reason: "test"))
        await waitUntil { self.events.filter { $0.name.hasPrefix("config.") }.count > before }
        await settle()
    }

    /// SIGTERM: graceful shutdown; waits for the agent to stop.
    public func shutdown() async -> Int32 {
        await agent.deliver(.shutdown(signal: "SIGTERM"))
        await settle()
        // Runs stopped by the shutdown end now.
        launcher.completeDue(at: clock.wallNow())
        await settle()
        return await agent.waitUntilStopped()
    }

    /// Waits until every run end the launcher resolved has reached the agent as `run.finished`
    /// and every launch has been reported. The agent's inputs travel through tasks, so this
    /// yields (bounded in real time) rather than sleeping for a guessed interval.
    public func settle() async {
        // Each scripted launch yields one `run.started` and each resolved end one `run.finished`
        // (runs interrupted before launching end without a launch, so `>=`).
        await waitUntil {
            let (started, finished) = self.counts.withLock { ($0.started, $0.finished) }
            let ordered = await self.agent.launchOrders
            return started >= ordered && self.launcher.launchCount >= ordered && finished >= self.launcher.resolvedCount
        }
    }

    /// Checks `condition` until it has held three times in a row. Yields between the first
    /// checks (the agent's tasks usually need only a turn or two), then naps 1 ms between
    /// checks: a `Task.yield()` spin of up to 10 s would keep a thread busy for nothing and, in
    /// a parallel test run, flood the executor shared with every other test.
    private func waitUntil(_ condition: @Sendable () async -> Bool) async {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        var stable = 0
        var checks = 0
        while clock.now < deadline {
            if await condition() { stable += 1 } else { stable = 0 }
            if stable >= 3 { return }
            checks += 1
            if checks < 50 { await Task.yield() } else { try? await Task.sleep(for: .milliseconds(1)) }
        }
    }
}

/// Holds the agent's next configuration load until released, and counts finished loads.
public final class LoadGate: Sendable {
    private struct State {
        var holdNext = false
        var released = false
        var finished = 0
        /// A load is being held now.
        var holding = false
    }

    private let state = Locked(State())

    public init() {}

    /// The next load blocks (on its own thread) until ``release()``, for at most 30 s.
    public func holdNext() {
        state.withLock {
            $0.holdNext = true
            $0.released = false
        }
    }

    public func release() { state.withLock { $0.released = true } }

    /// Loads that have returned so far.
    public var finishedLoads: Int { state.withLock { $0.finished } }

    /// Whether a load is being held now. A test waits for it before it starts another load:
    /// the load threads start in no particular order, and the later load could otherwise be
    /// the one held.
    public var isHolding: Bool { state.withLock { $0.holding } }

    func pass() {
        let held = state.withLock { s -> Bool in
            defer { s.holdNext = false }
            s.holding = s.holdNext
            return s.holdNext
        }
        guard held else { return }
        defer { state.withLock { $0.holding = false } }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(30)
        while !state.withLock({ $0.released }), clock.now < deadline { usleep(1000) }
    }

    func finished() { state.withLock { $0.finished += 1 } }
}
