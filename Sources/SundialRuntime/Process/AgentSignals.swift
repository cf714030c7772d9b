#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSundialShim

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

/// Delivers blocked signals as an `AsyncStream`, read from a signalfd by a small thread.
///
/// ```swift
/// AgentSignals.prepareProcess()   // first, in main
/// let listener = try SignalListener([SIGTERM, SIGINT, SIGHUP])
/// for await signal in listener.signals { ... }
/// ```
public final class SignalListener: Sendable {
    public let signals: AsyncStream<Int32>
    private let fd: Int32
    /// The reading thread (tests direct signals at it with `pthread_kill`).
    let thread: pthread_t

    /// - Throws: ``RunnerError`` if the signalfd or its thread cannot be created.
    public init(_ watched: [Int32]) throws(RunnerError) {
        var sigs = watched
        // Blocked here too, so the listener works even if prepareProcess() came late (then only
        // signals aimed at no unblocked thread reach it; call prepareProcess() first).
        _ = sundial_block_signals(&sigs, Int32(sigs.count))
        fd = sundial_signalfd(&sigs, Int32(sigs.count))
        guard fd >= 0 else { throw RunnerError("cannot create a signalfd: \(errnoText(errno))") }
        let (stream, continuation) = AsyncStream<Int32>.makeStream(bufferingPolicy: .bufferingNewest(64))
        signals = stream
        let box = Unmanaged.passRetained(ListenerContext(fd: fd, signals: sigs, continuation: continuation)).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { arg in
            let ctx = Unmanaged<ListenerContext>.fromOpaque(arg!).takeRetainedValue()
            _ = sundial_set_thread_name("sundial-signals")
            var sigs = ctx.signals
            _ = sundial_block_signals(&sigs, Int32(sigs.count))
            var pfd = pollfd(fd: ctx.fd, events: Int16(POLLIN), revents: 0)
            while true {
                if poll(&pfd, 1, -1) < 0, errno != EINTR { break }
                while true {
                    let sig = sundial_signalfd_read(ctx.fd)
                    if sig <= 0 { break }
                    ctx.continuation.yield(sig)
                }
            }
            ctx.continuation.finish()
            return nil
        }, box)
        guard rc == 0 else {
            Unmanaged<ListenerContext>.fromOpaque(box).release()
            close(fd)
            throw RunnerError("cannot start the signal thread: \(errnoText(rc))")
        }
        pthread_detach(tid)
        thread = tid
    }
}

private final class ListenerContext {
    let fd: Int32
    let signals: [Int32]
    let continuation: AsyncStream<Int32>.Continuation
    init(fd: Int32, signals: [Int32], continuation: AsyncStream<Int32>.Continuation) {
        self.fd = fd
        self.signals = signals
        self.continuation = continuation
    }
}
