import CSundialShim
import SundialCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Sleeps until a wall-clock instant, and notices when the wall clock is stepped.
///
/// A `CLOCK_REALTIME` timerfd armed with `TFD_TIMER_CANCEL_ON_SET`, watched by the agent's
/// ``EventLoop``: the agent wakes exactly when the next job is due (no periodic ticks while
/// idle, so an idle box sees no wake-ups at all), and a clock step (NTP on a box without an RTC,
/// `date -s`) wakes it at once so the scheduler can apply design §2's rules.
///
/// The descriptor is closed only in `deinit`, so an ``arm(at:)`` racing ``stop()`` still arms
/// this timer's own descriptor (to no effect), never a closed one whose number was reused.
public final class WakeTimer: Sendable {
    public enum Reason: Sendable, Equatable {
        /// The armed instant has been reached.
        case due
        /// The wall clock was set discontinuously; re-read it and re-arm.
        case clockChanged
    }

    private let timerFD: Int32
    private let loop: EventLoop
    private let registration = Mutex<EventLoop.Registration?>(nil)

    /// Watches the timer (disarmed) on `loop`. `handler` runs on the loop's thread: keep it short.
    public init(loop: EventLoop, handler: @escaping @Sendable (Reason) -> Void) throws(FileSystem.ReadError) {
        let t = sundial_timerfd_create()
        guard t >= 0 else { throw .cannotOpen(path: "timerfd", reason: FileSystem.errnoString()) }
        timerFD = t
        self.loop = loop
        let added = loop.add(t) { [self] in
            var expirations: UInt64 = 0
            let r = withUnsafeMutableBytes(of: &expirations) { read(timerFD, $0.baseAddress, 8) }
            if r == 8 {
                handler(.due)
            } else if r < 0, errno == ECANCELED {
                handler(.clockChanged)
            }
        }
        guard let added else { throw .cannotOpen(path: "timerfd", reason: FileSystem.errnoString()) }
        registration.withLock { $0 = added }
    }

    deinit { close(timerFD) }

    var descriptorForTesting: Int32 { timerFD }

    /// Arms the timer for `instant` (replacing any earlier arming); `nil` disarms.
    public func arm(at instant: Instant?) {
        _ = sundial_timerfd_arm(timerFD, instant.map { max(0, $0.unixMillis) } ?? -1)
    }

    /// Stops reporting. Arming afterwards is harmless.
    public func stop() {
        guard
            let r = registration.withLock({ r in
                defer { r = nil }
                return r
            })
        else { return }
        loop.remove(r, fd: timerFD)
        _ = sundial_timerfd_arm(timerFD, -1)
    }
}
