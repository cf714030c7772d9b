#if canImport(Glibc)
import Glibc
#endif
import CSundialShim
import Synchronization
import SundialCore

/// Sleeps until a wall-clock instant, and notices when the wall clock is stepped.
///
/// One thread blocks in `poll()` on a `CLOCK_REALTIME` timerfd armed with
/// `TFD_TIMER_CANCEL_ON_SET`: the agent wakes exactly when the next job is due (no periodic
/// ticks while idle, so an idle box sees no wake-ups at all), and a clock step (NTP on a box
/// without an RTC, `date -s`) wakes it at once so the scheduler can apply design §2's rules.
public final class WakeTimer: Sendable {
    public enum Reason: Sendable, Equatable {
        /// The armed instant has been reached.
        case due
        /// The wall clock was set discontinuously; re-read it and re-arm.
        case clockChanged
    }

    private let timerFD: Int32
    private let stopFD: Int32
    private let handler: @Sendable (Reason) -> Void
    private let stopped = Atomic<Bool>(false)

    /// Starts the timer thread (disarmed). `handler` runs on that thread: keep it short.
    public init(handler: @escaping @Sendable (Reason) -> Void) throws(FileSystem.ReadError) {
        let t = sundial_timerfd_create()
        let s = sundial_eventfd()
        guard t >= 0, s >= 0 else { throw .cannotOpen(path: "timerfd", reason: FileSystem.errnoString()) }
        timerFD = t
        stopFD = s
        self.handler = handler
        let thread = DetachedThread(name: "sundial-timer") { [self] in self.loop() }
        thread.start()
    }

    /// Arms the timer for `instant` (replacing any earlier arming); `nil` disarms.
    public func arm(at instant: Instant?) {
        _ = sundial_timerfd_arm(timerFD, instant.map { max(0, $0.unixMillis) } ?? -1)
    }

    /// Stops the thread. The timer cannot be used afterwards.
    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { write(stopFD, $0.baseAddress, 8) }
    }

    private func loop() {
        var fds = [pollfd(fd: timerFD, events: Int16(POLLIN), revents: 0), pollfd(fd: stopFD, events: Int16(POLLIN), revents: 0)]
        while !stopped.load(ordering: .acquiring) {
            for i in fds.indices { fds[i].revents = 0 }
            let n = poll(&fds, 2, -1)
            if n < 0 { if errno == EINTR { continue } else { break } }
            if fds[1].revents != 0 { break }
            guard fds[0].revents != 0 else { continue }
            var expirations: UInt64 = 0
            let r = withUnsafeMutableBytes(of: &expirations) { read(timerFD, $0.baseAddress, 8) }
            if r == 8 {
                handler(.due)
            } else if r < 0, errno == ECANCELED {
                handler(.clockChanged)
            }
        }
        close(timerFD)
        close(stopFD)
    }
}
