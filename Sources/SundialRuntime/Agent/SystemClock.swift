import CSundialShim  // `timespec`'s fields (see PathProbe.swift)
import SundialCore

#if canImport(Glibc)
import Glibc
#endif

/// The machine's clocks: `CLOCK_REALTIME` for calendar time and `CLOCK_BOOTTIME` (monotonic,
/// and counting suspend) for intervals, timeouts and clock-step detection.
public struct SystemClock: SundialClock {
    public init() {}

    public func wallNow() -> Instant {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Instant(unixMillis: Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000)
    }

    public func monotonicNow() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_BOOTTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    public func hold(until instant: Instant, atMostMilliseconds maximumMs: Int64) {
        holdUntil(unixMillis: instant.unixMillis, atMostMilliseconds: maximumMs)
    }
}

/// Randomness for jitter and run ids from the kernel, seeded once at start.
public struct SystemRandom: RandomSource {
    private var inner: SeededRandom

    public init() {
        var seed: UInt64 = 0
        var n = -1
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            n = withUnsafeMutableBytes(of: &seed) { read(fd, $0.baseAddress, 8) }
            close(fd)
        }
        if n != 8 { seed = UInt64(bitPattern: SystemClock().wallNow().unixMillis) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(getpid()) }
        inner = SeededRandom(seed: seed)
    }

    public mutating func nextUnit() -> Double { inner.nextUnit() }
}
