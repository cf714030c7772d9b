#if canImport(Glibc)
import Glibc
#endif
import CSundialShim
import Synchronization

/// Reads the agent's signals from a signalfd on a thread of its own.
///
/// The signals are blocked in every thread (``AgentHost/blockSignals()``), so they stay
/// pending for the process and the signalfd reports them: no async-signal-safety puzzles,
/// and a SIGTERM during a launch is never lost.
final class SignalThread: Sendable {
    private let fd: Int32
    private let stopFD: Int32
    private let stopped = Atomic<Bool>(false)

    init?(handler: @escaping @Sendable (Int32) -> Void) {
        var sigs = AgentHost.handledSignals
        let fd = sigs.withUnsafeMutableBufferPointer { sundial_signalfd($0.baseAddress, Int32($0.count)) }
        let stopFD = sundial_eventfd()
        guard fd >= 0, stopFD >= 0 else { return nil }
        self.fd = fd
        self.stopFD = stopFD
        DetachedThread(name: "sundial-signals") { [self] in self.loop(handler) }.start()
    }

    private func loop(_ handler: @Sendable (Int32) -> Void) {
        do {
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: stopFD, events: Int16(POLLIN), revents: 0)]
            while !stopped.load(ordering: .acquiring) {
                fds[0].revents = 0
                fds[1].revents = 0
                if poll(&fds, 2, -1) < 0 { if errno == EINTR { continue } else { break } }
                if fds[1].revents != 0 { break }
                while true {
                    let s = sundial_signalfd_read(fd)
                    if s <= 0 { break }
                    handler(s)
                }
            }
            close(fd)
            close(stopFD)
        }
    }

    func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        sundial_eventfd_signal(stopFD)
    }
}
