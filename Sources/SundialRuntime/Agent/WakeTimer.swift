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
    /// A second timerfd, armed `early.lead` before the main one (see ``init(early:handler:)``).
    private let earlyFD: Int32
    private let early: Early?
    private let handler: @Sendable (Reason) -> Void
    private let stopped = Atomic<Bool>(false)
    /// The armed instant in Unix milliseconds, or `Int64.min` when disarmed.
    private let armedMillis = Atomic<Int64>(.min)

    /// Something to do shortly before a wake-up that follows a long sleep: the agent maps its
    /// code again then (``IdleMemory/prefault()``), off the launch path.
    public struct Early: Sendable {
        /// How long before the wake-up.
        public var lead: Duration
        /// Only for sleeps at least this long (shorter ones keep everything warm anyway, and
        /// need no second wake-up).
        public var minimumSleep: Duration
        public var action: @Sendable () -> Void

        public init(lead: Duration, minimumSleep: Duration, action: @escaping @Sendable () -> Void) {
            self.lead = lead
            self.minimumSleep = minimumSleep
            self.action = action
        }
    }

    /// Starts the timer thread (disarmed). `handler` (and `early`'s action) run on that thread:
    /// keep them short.
    public init(early: Early? = nil, handler: @escaping @Sendable (Reason) -> Void) throws(FileSystem.ReadError) {
        let t = sundial_timerfd_create()
        let s = sundial_eventfd()
        let e = early == nil ? -1 : sundial_timerfd_create()
        guard t >= 0, s >= 0, early == nil || e >= 0 else { throw .cannotOpen(path: "timerfd", reason: FileSystem.errnoString()) }
        timerFD = t
        stopFD = s
        earlyFD = e
        self.early = early
        self.handler = handler
        let thread = DetachedThread(name: "sundial-timer") { [self] in self.loop() }
        thread.start()
    }

    /// Arms the timer for `instant` (replacing any earlier arming); `nil` disarms.
    public func arm(at instant: Instant?) {
        armedMillis.store(instant?.unixMillis ?? .min, ordering: .relaxed)
        _ = sundial_timerfd_arm(timerFD, instant.map { max(0, $0.unixMillis) } ?? -1)
        if let early {
            var at: Int64 = -1
            if let instant, instant.unixMillis - SystemClock().wallNow().unixMillis >= early.minimumSleep.milliseconds {
                at = instant.unixMillis - early.lead.milliseconds
            }
            _ = sundial_timerfd_arm(earlyFD, at)
        }
    }

    /// The instant the timer is armed for (`nil`: disarmed, nothing scheduled).
    public var armedAt: Instant? {
        let ms = armedMillis.load(ordering: .relaxed)
        return ms == .min ? nil : Instant(unixMillis: ms)
    }

    /// Stops the thread. The timer cannot be used afterwards.
    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { write(stopFD, $0.baseAddress, 8) }
    }

    private func loop() {
        var fds = [pollfd(fd: timerFD, events: Int16(POLLIN), revents: 0), pollfd(fd: stopFD, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: earlyFD, events: Int16(POLLIN), revents: 0)]
        while !stopped.load(ordering: .acquiring) {
            for i in fds.indices { fds[i].revents = 0 }
            let n = poll(&fds, early == nil ? 2 : 3, -1)
            if n < 0 { if errno == EINTR { continue } else { break } }
            if fds[1].revents != 0 { break }
            if early != nil, fds[2].revents != 0 {
                var expirations: UInt64 = 0
                // ECANCELED (a clock step) needs nothing here: the main timer reports it. When
                // the wake-up itself is already due, the early action is pointless: skip it.
                let r = withUnsafeMutableBytes(of: &expirations) { read(earlyFD, $0.baseAddress, 8) }
                if r == 8, fds[0].revents == 0 { early?.action() }
            }
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
        if earlyFD >= 0 { close(earlyFD) }
    }
}

/// A minimal detached, named thread: Foundation's `Thread` would pull Foundation into the
/// runtime's hot path for one call. The name (at most 15 bytes, the kernel's limit) shows in
/// `top -H`, `ps -L` and `/proc/PID/task/*/comm`, so an operator can tell the agent's threads
/// apart.
final class DetachedThread: Sendable {
    private let name: String
    private let body: @Sendable () -> Void

    init(name: String, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }

    /// Starts the thread. Returns `false` (and runs nothing) if the kernel refused one.
    @discardableResult
    func start() -> Bool {
        let box = Unmanaged.passRetained(self)
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { raw in
            let me = Unmanaged<DetachedThread>.fromOpaque(raw!).takeRetainedValue()
            _ = sundial_set_thread_name(me.name)
            me.body()
            return nil
        }, box.toOpaque())
        if rc == 0 { pthread_detach(tid) } else { box.release() }
        return rc == 0
    }

    /// Runs `body` on a new named thread.
    @discardableResult
    static func run(_ name: String, _ body: @escaping @Sendable () -> Void) -> Bool {
        DetachedThread(name: name, body: body).start()
    }
}
