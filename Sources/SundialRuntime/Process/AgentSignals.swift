import CSundialShim
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Process-wide set-up the agent does first thing in `main`, and its signal stream.
///
/// Signals are blocked before any thread starts, so every thread inherits the mask and the
/// signals stay pending until ``SignalListener`` reads them from a signalfd: no async-signal-safe
/// handler code, no thread picked at random. Jobs get an empty mask and default dispositions
/// (see the shim's `sundial_spawn`).
public enum AgentSignals {
    /// SIGTERM, SIGINT (shutdown), SIGHUP (reload), SIGUSR1 (reopen the `--log` file after a
    /// logrotate; blocked early because its default action kills) and SIGCHLD (read from a
    /// signalfd by the orphan-reaping runner of `sundial run`; the runners' own children are
    /// watched through pidfds).
    public static let handled: [Int32] = [SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGCHLD]

    /// Blocks ``handled`` in the calling thread, ignores SIGPIPE (a closed log pipe is an
    /// EPIPE, not death) and puts /dev/null on any closed standard descriptor. Call before any
    /// thread exists, i.e. at the top of `main`, before the first `await`.
    public static func prepareProcess() {
        var sigs = handled
        _ = sundial_block_signals(&sigs, Int32(sigs.count))
        sundial_ignore_sigpipe()
        _ = sundial_ensure_standard_fds()
    }
}

/// Hands blocked signals, read from a signalfd on the agent's ``EventLoop``, to a handler on the
/// loop's thread, one call per signal in the order the kernel gives them.
///
/// No buffer stands between the signalfd and the handler (an `AsyncStream` with
/// `.bufferingNewest(64)` did, which a burst of 64 signals after a SIGTERM would have
/// overflowed): the agent's handler hands each to its lossless inbox (``AgentRef``), and the
/// kernel itself keeps at most one pending instance of each standard signal.
///
/// ```swift
/// AgentSignals.prepareProcess()   // first, in main
/// let listener = try SignalListener([SIGTERM, SIGINT, SIGHUP], loop: loop) { signal in ... }
/// ```
public final class SignalListener: Sendable {
    private let fd: Int32
    private let loop: EventLoop
    private let registration = Mutex<EventLoop.Registration?>(nil)

    /// - Parameter onSignal: called on the loop's thread for each signal; must be short.
    /// - Throws: ``RunnerError`` if the signalfd cannot be created or watched.
    public init(_ watched: [Int32], loop: EventLoop, onSignal: @escaping @Sendable (Int32) -> Void) throws(RunnerError) {
        var sigs = watched
        // Blocked here too, so the listener works even if prepareProcess() came late (then only
        // signals aimed at no unblocked thread reach it; call prepareProcess() first).
        _ = sundial_block_signals(&sigs, Int32(sigs.count))
        fd = sundial_signalfd(&sigs, Int32(sigs.count))
        guard fd >= 0 else { throw RunnerError("cannot create a signalfd: \(errnoText(errno))") }
        self.loop = loop
        let added = loop.add(fd) { [fd] in
            while true {
                let sig = sundial_signalfd_read(fd)
                if sig <= 0 { break }
                onSignal(sig)
            }
        }
        guard let added else { throw RunnerError("cannot watch the signalfd: \(errnoText(errno))") }
        registration.withLock { $0 = added }
    }

    deinit { close(fd) }

    /// Stops calling the handler (waiting for a call in progress); signals stay blocked
    /// (pending ones are dropped with the process).
    public func stop() {
        guard
            let r = registration.withLock({ r in
                defer { r = nil }
                return r
            })
        else { return }
        loop.remove(r, fd: fd)
    }
}
