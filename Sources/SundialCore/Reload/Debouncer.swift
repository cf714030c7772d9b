/// Coalesces a burst of changes into one notification, fired once the changes have stopped.
///
/// Why: a config-management tool writes ten files, `git pull` rewrites a tree, an editor saves
/// through a temporary file and a rename. Reloading on every event would parse half-written sets
/// and flood the log; reloading once, a quiet period after the *last* change, sees the finished
/// set. `maxWait` bounds the delay when changes never stop (a log file mistakenly put under the
/// config directory), so a reload still happens at least that often.
///
/// Pure: times are monotonic milliseconds passed in by the caller (the watcher passes
/// `CLOCK_MONOTONIC`, tests pass virtual time), and the value only says *when* to fire.
public struct Debouncer: Hashable, Sendable {
    /// The quiet period after the last change before firing.
    public let quietMillis: Int64
    /// The longest a pending notification may be held back by continuing changes.
    public let maxWaitMillis: Int64

    /// Monotonic time of the first change not yet fired, or nil when nothing is pending.
    public private(set) var firstChange: Int64?
    /// Monotonic time of the latest change not yet fired.
    public private(set) var lastChange: Int64?

    /// - Parameters:
    ///   - quiet: the quiet period after the last change (design §2: 250 ms by default).
    ///   - maxWait: the upper bound on holding back a notification while changes continue;
    ///     raised to at least `quiet`.
    public init(quiet: Duration = .milliseconds(250), maxWait: Duration = .seconds(5)) {
        quietMillis = max(0, quiet.milliseconds)
        maxWaitMillis = max(quietMillis, maxWait.milliseconds)
    }

    /// Whether a change is waiting to be fired.
    public var isPending: Bool { firstChange != nil }

    /// Records a change seen at monotonic time `now`.
    public mutating func noteChange(at now: Int64) {
        if firstChange == nil { firstChange = now }
        lastChange = max(lastChange ?? now, now)
    }

    /// When the pending notification is due (monotonic ms), or nil when nothing is pending.
    public var deadline: Int64? {
        guard let first = firstChange, let last = lastChange else { return nil }
        return min(last &+ quietMillis, first &+ maxWaitMillis)
    }

    /// How long the caller may sleep before it must call `fire(at:)` again, in milliseconds,
    /// or nil to sleep until the next change. Never negative.
    public func timeout(at now: Int64) -> Int64? {
        guard let due = deadline else { return nil }
        return max(0, due &- now)
    }

    /// Returns true, and clears the pending state, when the notification is due at `now`.
    public mutating func fire(at now: Int64) -> Bool {
        guard let due = deadline, now >= due else { return false }
        firstChange = nil
        lastChange = nil
        return true
    }

    /// Drops a pending notification without firing it (used when the watcher stops).
    public mutating func reset() {
        firstChange = nil
        lastChange = nil
    }
}
