/// A point on the UTC time line, in milliseconds since the Unix epoch.
///
/// Why not `Foundation.Date`: the core must be pure and cheap to copy, compare and hash
/// millions of times in a simulated year, and every Sundial time is exact to the millisecond
/// (the event log prints milliseconds). Sub-millisecond lateness is measured in the runtime with
/// the monotonic clock, never here.
public struct Instant: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Milliseconds since 1970-01-01T00:00:00Z (negative before).
    public var unixMillis: Int64

    @inlinable public init(unixMillis: Int64) { self.unixMillis = unixMillis }
    @inlinable public init(unixSeconds: Int64) { self.unixMillis = unixSeconds &* 1000 }

    /// Whole seconds since the epoch, rounded toward negative infinity.
    @inlinable public var unixSeconds: Int64 { unixMillis >= 0 ? unixMillis / 1000 : -((-unixMillis + 999) / 1000) }

    @inlinable public static func < (a: Instant, b: Instant) -> Bool { a.unixMillis < b.unixMillis }

    @inlinable public static func + (a: Instant, d: Duration) -> Instant { Instant(unixMillis: a.unixMillis &+ d.milliseconds) }
    @inlinable public static func - (a: Instant, d: Duration) -> Instant { Instant(unixMillis: a.unixMillis &- d.milliseconds) }
    @inlinable public static func - (a: Instant, b: Instant) -> Duration { .milliseconds(a.unixMillis &- b.unixMillis) }

    /// RFC 3339 in UTC with milliseconds, e.g. `2026-03-08T07:00:00.000Z` (the event log's `ts`).
    public var description: String { RFC3339.formatUTCMillis(self) }
}

extension Duration {
    /// The duration in whole milliseconds, truncated toward zero.
    @inlinable public var milliseconds: Int64 {
        let (s, atto) = components
        return s &* 1000 &+ atto / 1_000_000_000_000_000
    }
}
