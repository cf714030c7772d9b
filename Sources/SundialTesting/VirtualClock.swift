import SundialCore
import Synchronization

/// A clock that only moves when a test says so, so a year of schedule runs in milliseconds.
public final class VirtualClock: SundialClock {
    private let state: Mutex<(wall: Int64, mono: Int64)>

    public init(wall: Instant, monotonic: Int64 = 0) { state = Mutex((wall.unixMillis, monotonic)) }

    public func wallNow() -> Instant { Instant(unixMillis: state.withLock { $0.wall }) }
    public func monotonicNow() -> Int64 { state.withLock { $0.mono } }

    /// Moves both clocks forward by `d`.
    public func advance(by d: Duration) {
        state.withLock {
            $0.wall += d.milliseconds
            $0.mono += d.milliseconds
        }
    }

    /// Moves both clocks to `instant`, as the real hold would: not at all when it is more than
    /// `maximumMs` away (the real one does not wait then either).
    public func hold(until instant: Instant, atMostMilliseconds maximumMs: Int64) {
        state.withLock {
            let d = instant.unixMillis - $0.wall
            guard d > 0, d <= maximumMs else { return }
            $0.wall += d
            $0.mono += d
        }
    }

    /// Steps only the wall clock (as NTP does), by `d` which may be negative.
    public func stepWall(by d: Duration) { state.withLock { $0.wall += d.milliseconds } }
}
