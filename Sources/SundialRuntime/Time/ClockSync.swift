import CSundialShim
import OrderedCollections
import SundialCore
import Synchronization

/// Whether the kernel says the system clock is synchronised (`adjtimex`, STA_UNSYNC), for
/// `--hold-until-synced` (design §2): a box without a real-time clock boots with a stale time,
/// and calendar jobs must not fire by it.
public enum ClockSync {
    /// `true` synchronised, `false` not, `nil` when the kernel cannot say (adjtimex failed).
    public static func kernelSaysSynchronised() -> Bool? {
        switch sundial_clock_synchronised() {
        case 1: true
        case 0: false
        default: nil
        }
    }
}

/// Holds an agent's calendar jobs while the clock is unsynchronised, polling the kernel at a
/// modest interval and only while unsynchronised; once synchronised it releases them and stops
/// for good (a clock that later loses sync keeps running: the hold is for boot).
public final class ClockSyncMonitor: Sendable {
    public typealias Probe = @Sendable () -> Bool?

    private let probe: Probe
    private let interval: Duration
    private let task = Mutex<Task<Void, Never>?>(nil)

    /// - Parameters:
    ///   - probe: the kernel's answer (``ClockSync/kernelSaysSynchronised()``; fakes in tests).
    ///     `nil` (cannot tell) counts as synchronised: holding forever on a kernel without
    ///     adjtimex would be worse than not holding.
    ///   - interval: how often to ask while unsynchronised.
    public init(probe: @escaping Probe = ClockSync.kernelSaysSynchronised, interval: Duration = .seconds(5)) {
        self.probe = probe
        self.interval = interval
    }

    /// Asks once; if the clock is not synchronised, holds `agent`'s calendar jobs (logging
    /// `clock.unsynced`) and polls until it is (then `clock.synced`). Call before the agent
    /// starts, so no calendar job fires by the stale clock. Returns whether it is holding.
    @discardableResult
    public func start(holding agent: Agent, clock: any SundialClock) async -> Bool {
        if probe() ?? true {
            // Nothing to hold; say so once, so the log shows the check was made.
            await agent.emit(.clockSynced(detail: ["held_ms": .int(0)], at: clock.wallNow()))
            return false
        }
        let since = clock.monotonicNow()
        await agent.holdCalendar(true, detail: ["wall_clock": .string(clock.wallNow().description)])
        let probe = self.probe
        let interval = self.interval
        let t = Task {
            while !Task.isCancelled {
                await Nap.sleep(for: interval)  // not Task.sleep: see Nap
                if Task.isCancelled { return }
                if probe() ?? true {
                    await agent.holdCalendar(false, detail: ["held_ms": .int(max(0, clock.monotonicNow() - since))])
                    return
                }
            }
        }
        task.withLock { $0 = t }
        // Held by the agent until it stops (nothing else keeps the monitor).
        await agent.onStop { self.stop() }
        return true
    }

    /// Stops polling (the agent stops).
    public func stop() {
        task.withLock {
            $0?.cancel()
            $0 = nil
        }
    }
}
