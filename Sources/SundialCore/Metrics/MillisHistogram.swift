/// A fixed-bucket histogram of millisecond values, exported in seconds.
///
/// Counts are kept per bucket (not cumulative) as integers and the sum in whole milliseconds,
/// so that the exported `_sum` is exact and never drifts the way a running `Double` does.
public struct MillisHistogram: Sendable, Hashable {
    /// Upper bounds (inclusive, as Prometheus' `le`), ascending; `+Inf` is implicit.
    public let boundsMillis: [Int64]
    /// Observations per bucket; the last element counts those above every bound.
    public private(set) var counts: [Int64]
    public private(set) var sumMillis: Int64 = 0
    public private(set) var count: Int64 = 0

    public init(boundsMillis: [Int64]) {
        precondition(zip(boundsMillis, boundsMillis.dropFirst()).allSatisfy { $0 < $1 }, "bounds must ascend")
        self.boundsMillis = boundsMillis
        self.counts = Array(repeating: 0, count: boundsMillis.count + 1)
    }

    /// Records one value; negative values (a clock step between two readings) count as 0.
    public mutating func observe(millis: Int64) {
        let v = max(0, millis)
        var i = 0
        while i < boundsMillis.count, v > boundsMillis[i] { i += 1 }
        counts[i] += 1
        sumMillis &+= v
        count += 1
    }

    /// Run durations: from a heartbeat's 100 ms to a 6 h backup.
    public static let durationBounds: [Int64] = [
        100, 500, 1_000, 5_000, 10_000, 30_000, 60_000, 300_000,
        900_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000,
    ]
    /// Lateness of a fire: the agent's own delay is milliseconds; seconds and more mean a
    /// stalled or overloaded box (or `jitter`, which is included on purpose: it is real delay).
    public static let latenessBounds: [Int64] = [5, 10, 25, 50, 100, 250, 500, 1_000, 5_000, 10_000, 30_000, 60_000, 300_000]
}
