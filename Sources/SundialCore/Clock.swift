/// The time sources the shell injects into everything that needs "now".
///
/// Two clocks, because design §2 needs both: calendar schedules follow the wall clock, while
/// intervals and timeouts follow monotonic time, and comparing the two reveals clock steps.
public protocol SundialClock: Sendable {
    /// The wall clock (`CLOCK_REALTIME`): may step backward or forward.
    func wallNow() -> Instant
    /// Monotonic milliseconds since an arbitrary origin (`CLOCK_MONOTONIC`/`BOOTTIME`).
    func monotonicNow() -> Int64
    /// Waits until the wall clock reads `instant`, but never longer than `maximumMs`: how the
    /// agent keeps an action it decided ahead of its instant (a fire prepared early) from taking
    /// effect before it. A clock that cannot wait returns at once (the default).
    func hold(until instant: Instant, atMostMilliseconds maximumMs: Int64)
}

extension SundialClock {
    public func hold(until instant: Instant, atMostMilliseconds maximumMs: Int64) {}
}

/// A source of randomness for jitter, injected so tests and `simulate` are deterministic.
public protocol RandomSource: Sendable {
    /// A uniformly distributed value in `[0, 1)`.
    mutating func nextUnit() -> Double
}

/// SplitMix64: a tiny, well-known generator with a seed, for deterministic jitter.
public struct SeededRandom: RandomSource, Hashable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func nextUInt64() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    public mutating func nextUnit() -> Double { Double(nextUInt64() >> 11) / Double(1 << 53) }
}
