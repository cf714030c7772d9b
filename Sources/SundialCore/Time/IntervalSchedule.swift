/// `every: D` with optional `offset: O` (design §1): fires at `O + k·D` past the Unix epoch when an
/// offset is given (so a fleet agrees on the instants), else at `anchor + k·D` for k >= 1, the
/// anchor being the agent's start.
///
/// Pure instant arithmetic: the scheduler measures the waits with monotonic time (design §2,
/// "intervals use monotonic time"); this type only says which instants are due.
public struct IntervalSchedule: Hashable, Sendable {
    public let intervalMs: Int64
    public let offsetMs: Int64?
    public let anchor: Instant

    public struct InvalidInterval: Error, Hashable, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// - Throws: `InvalidInterval` when the interval is not positive or the offset is negative.
    public init(intervalMs: Int64, offsetMs: Int64? = nil, anchor: Instant) throws(InvalidInterval) {
        guard intervalMs > 0 else { throw InvalidInterval(message: "every must be a positive duration, e.g. 30s or 5m") }
        if let offsetMs, offsetMs < 0 { throw InvalidInterval(message: "offset must not be negative") }
        self.intervalMs = intervalMs
        self.offsetMs = offsetMs
        self.anchor = anchor
    }

    /// The first fire strictly after `after`; `nil` only if it would overflow the time line.
    public func next(after: Instant) -> Instant? {
        let base = offsetMs ?? anchor.unixMillis
        let (delta, o1) = after.unixMillis.subtractingReportingOverflow(base)
        guard !o1 else { return nil }
        var k = floorDiv(delta, intervalMs) + 1
        if offsetMs == nil { k = max(k, 1) }  // counted from the start, which itself is not a fire
        let (step, o2) = k.multipliedReportingOverflow(by: intervalMs)
        let (t, o3) = base.addingReportingOverflow(step)
        guard !o2, !o3 else { return nil }
        return Instant(unixMillis: t)
    }
}

/// `at:` one or more one-shot instants.
public struct OneShotSchedule: Hashable, Sendable {
    public let instants: [Instant]

    public init(_ instants: [Instant]) { self.instants = instants.sorted() }

    /// The first listed instant strictly after `after`.
    public func next(after: Instant) -> Instant? {
        var lo = 0
        var hi = instants.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if instants[mid] <= after { lo = mid + 1 } else { hi = mid }
        }
        return lo < instants.count ? instants[lo] : nil
    }
}
