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
    /// EPIPE, not death), puts /dev/null on any closed standard descriptor, raises the soft
    /// open-files limit to the hard one where jobs can get the original back at no cost (x86-64
    /// with clone3 and Linux 5.11; `sundial_raise_open_files_limit` says why: each run in flight
    /// holds three descriptors, and started with a soft limit of 512, an agent with 400 jobs due
    /// every second lost 1,446 of 2,400 starts to EMFILE in 6 s) and sizes the descriptor table
    /// for bursts (``descriptorTableSlots``). Call before any thread exists, i.e. at the top of
    /// `main`, before the first `await`.
    public static func prepareProcess() {
        var sigs = handled
        _ = sundial_block_signals(&sigs, Int32(sigs.count))
        sundial_ignore_sigpipe()
        _ = sundial_ensure_standard_fds()
        _ = sundial_raise_open_files_limit()
        _ = sundial_reserve_descriptor_table(Int32(descriptorTableSlots))
    }

    /// Whether ``prepareProcess()`` raises the soft open-files limit on this machine: x86-64 with
    /// clone3 and Linux 5.11 (`sundial_open_files_raise_applies`). The tests ask it rather than
    /// assume it from the architecture, since an older kernel or a seccomp filter says no.
    public static var raisesOpenFilesLimit: Bool { sundial_open_files_raise_applies() == 1 }

    /// The descriptor table the agent starts with (less if the soft `RLIMIT_NOFILE` is lower).
    ///
    /// Why: each run holds three descriptors while it runs (its two output pipes and a pidfd),
    /// so 100 jobs due together need about 320. The kernel starts a process with 64 slots and
    /// grows the table as needed, and growing a table that several threads share waits for an
    /// RCU grace period while every thread that opens a descriptor meanwhile sleeps. Traced on
    /// a fresh agent's first burst of 100 jobs (2 CPUs): both spawning threads asleep in
    /// `pipe2` for 7 to 13 ms, the first burst's last job 47–73 ms late against 35–42 ms for
    /// the next ones (docs/benchmarks.md, "Twenty-first session"). Grown here, while the process
    /// has one thread, the table costs no wait; it never shrinks. 4,096 slots hold a burst of
    /// 1,300 runs and cost the kernel 8 bytes each (32 KiB, not in the agent's RssAnon); a
    /// larger burst grows it further as before.
    public static let descriptorTableSlots = 4096
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
