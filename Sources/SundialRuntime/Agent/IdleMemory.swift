import CSundialShim
import SundialCore
import Synchronization

/// Hands back the memory that a burst of work (start-up, a reload, a run and its state commits)
/// touched and that the waiting agent will not need.
///
/// Loading a configuration walks once through a lot of code (YAML, schema validation, SQLite
/// migrations); with the kernel's 64 KiB fault-around, that leaves most of the binary's code
/// mapped, although the waiting agent runs almost none of it. Releasing those mappings (and the
/// free heap) keeps an idle agent's resident set to what it really holds: issue 5's idle figure,
/// measured in docs/benchmarks.md ("Idle RSS"). Pages come back from the page cache, at a
/// minor fault each, when code runs again. Releasing costs well under a millisecond, but the
/// faults after it add a few hundred microseconds to the next launch, so it runs only when the
/// agent is about to sleep for a while: after each (re)load, and when the state store's worker
/// falls idle (its last checkpoint, a second after the last write) with the next wake-up at
/// least ``minimumSleep`` away. A job due every few seconds keeps its code mapped.
public enum IdleMemory {
    /// The shortest sleep ahead for which releasing is worth the faults that follow it.
    public static let minimumSleep: Duration = .seconds(30)

    /// Whether the agent, next woken at `nextWake` (`nil`: nothing scheduled), sleeps long
    /// enough from `now` for a release to pay.
    public static func worthReleasing(nextWake: Instant?, now: Instant) -> Bool {
        guard let nextWake else { return true }
        return nextWake.unixMillis - now.unixMillis >= minimumSleep.milliseconds
    }

    /// Whether code mappings were released since the last ``prefault()``.
    private static let released = Atomic<Bool>(false)

    /// Releases it; returns the bytes of code mappings released (0 if the kernel refused).
    @discardableResult
    public static func release() -> Int64 {
        // Set first: a prefault racing with the release must not miss it (at worst it maps
        // pages that are released right after, and the launch takes its faults).
        released.store(true, ordering: .releasing)
        return max(0, sundial_release_idle_memory())
    }

    /// How long before a job is due the agent maps its code again (``prefault()``): populating
    /// takes 1–3 ms; this leaves room for a loaded machine.
    public static let prefaultLead: Duration = .milliseconds(50)

    /// Maps the released code again, if it was released, so that the next launch does not pay a
    /// page fault for each page it runs (about half a millisecond of lateness after a long
    /// sleep, measured). Returns whether it did anything.
    /// Whether code was released since the last ``prefault()``.
    public static var needsPrefault: Bool { released.load(ordering: .acquiring) }

    @discardableResult
    public static func prefault() -> Bool {
        guard released.exchange(false, ordering: .acquiringAndReleasing) else { return false }
        _ = sundial_prefault_code()
        return true
    }

    /// Whether an event marks the end of a load (then loading's memory can go).
    static func endsLoad(_ name: String) -> Bool {
        name == "config.loaded" || name == "config.rejected" || name == "config.unchanged"
    }
}
