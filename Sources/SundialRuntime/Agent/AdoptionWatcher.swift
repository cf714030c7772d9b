import CSundialShim
import SundialCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What the agent needs to supervise runs that outlived a crashed agent (``AdoptedRun``): watch
/// each to its end, stop one. The real one is ``AdoptionWatcher``; scenario tests use a fake.
public protocol RunAdopter: Sendable {
    /// Watches `run`'s process; calls `ended` exactly once, on any thread, when it has exited
    /// (at once if it is already gone). The outcome is ``RunOutcome/unknown`` (the process is
    /// not the agent's child: its exit status cannot be collected), or ``RunOutcome/timeout``
    /// when the watcher stopped it for its job's `timeout`.
    func watch(_ run: AdoptedRun, ended: @escaping @Sendable (RunCompletion) -> Void)
    /// SIGTERM to the run's process group (SIGKILL at once when `grace` is zero), SIGKILL after
    /// `grace`. Ignored for runs not watched or already ended.
    func terminate(_ runID: RunID, grace: Duration)
}

/// Watches adopted runs with pidfds (`pidfd_open(2)`), on one thread (`sundial-adopt`) that
/// exists only while something is watched and sleeps in `poll` without a timeout unless a
/// deadline (a job's `timeout`, a `kill_grace`) is pending.
///
/// A pidfd refers to the process itself, never to a later holder of its pid, and polls readable
/// when it exits, whoever its parent is. Its identity is checked once more after the pidfd is
/// opened (start time, boot), so the descriptor is known to be the run's. Signals to the
/// process group are sent only while that pidfd says the leader is alive: a live leader keeps
/// its pid (and so its group id) from being reused.
public final class AdoptionWatcher: RunAdopter {
    struct Entry {
        var run: AdoptedRun
        var pidfd: Int32
        var ended: @Sendable (RunCompletion) -> Void
        /// Monotonic ms at which the job's `timeout` expires (`nil`: none, or already acted on).
        var timeoutAt: Int64?
        /// Monotonic ms at which a SIGKILL follows an earlier SIGTERM.
        var killAt: Int64?
        var timedOut = false
    }

    struct State {
        var entries: [RunID: Entry] = [:]
        var threadRunning = false
    }

    private let state = Mutex(State())
    /// Wakes the thread when entries or deadlines change; created once.
    private let wakeFD: Int32
    /// At most this many runs are watched at once (each holds a descriptor); beyond it a run is
    /// reported ended at once rather than left unsupervised in silence.
    public static let maxWatched = 4096

    public init() { wakeFD = sundial_eventfd() }

    public func watch(_ run: AdoptedRun, ended: @escaping @Sendable (RunCompletion) -> Void) {
        let fd = sundial_pidfd_open(run.identity.pid)
        // Opened, then checked: if the pid was reused between the restart's check and the
        // open, the start time differs and this is not the run's process.
        guard fd >= 0, wakeFD >= 0, ProcessProbe.isAlive(run.identity) else {
            if fd >= 0 { close(fd) }
            ended(Self.completion(run, outcome: .unknown))
            return
        }
        var entry = Entry(run: run, pidfd: fd, ended: ended)
        if let timeout = run.timeoutMs {
            let elapsed = Self.elapsedMs(since: run.identity.startTicks) ?? 0
            entry.timeoutAt = sundial_monotonic_ms() &+ max(0, timeout - elapsed)
        }
        let (accepted, startThread) = state.withLock { s -> (Bool, Bool) in
            guard s.entries.count < Self.maxWatched, s.entries[run.runID] == nil else { return (false, false) }
            s.entries[run.runID] = entry
            if s.threadRunning { return (true, false) }
            s.threadRunning = true
            return (true, true)
        }
        guard accepted else {
            close(fd)
            ended(Self.completion(run, outcome: .unknown))
            return
        }
        if startThread, !DetachedThread.run("sundial-adopt", { [self] in loop() }) {
            // No thread to be had: poll on the caller until this one ends is not an option
            // (the caller is the agent); stop watching and say so through the outcome.
            let dropped = state.withLock { s -> [Entry] in
                s.threadRunning = false
                defer { s.entries = [:] }
                return Array(s.entries.values)
            }
            for e in dropped {
                close(e.pidfd)
                e.ended(Self.completion(e.run, outcome: .unknown))
            }
            return
        }
        sundial_eventfd_signal(wakeFD)
    }

    public func terminate(_ runID: RunID, grace: Duration) {
        let graceMs = max(0, grace.milliseconds)
        state.withLock { s in
            guard var e = s.entries[runID], !Self.hasExited(e.pidfd) else { return }
            Self.signal(e, graceMs == 0 ? SIGKILL : SIGTERM)
            if graceMs > 0, e.killAt == nil { e.killAt = sundial_monotonic_ms() &+ graceMs }
            s.entries[runID] = e
        }
        sundial_eventfd_signal(wakeFD)
    }

    /// Runs being watched (tests, diagnostics).
    public var watchedRunIDs: Set<RunID> { state.withLock { Set($0.entries.keys) } }

    // MARK: - The thread

    private func loop() {
        var fds: [pollfd] = []
        var ids: [RunID] = []
        while true {
            let now = sundial_monotonic_ms()
            var deadline: Int64?
            fds.removeAll(keepingCapacity: true)
            ids.removeAll(keepingCapacity: true)
            fds.append(pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0))
            let finished = state.withLock { s -> [Entry] in
                var done: [Entry] = []
                for (id, var e) in s.entries {
                    if Self.hasExited(e.pidfd) {
                        done.append(e)
                        s.entries[id] = nil
                        continue
                    }
                    if let t = e.timeoutAt, t <= now {
                        // The job's timeout, enforced as the runner would: SIGTERM to the group,
                        // SIGKILL after kill_grace.
                        e.timeoutAt = nil
                        e.timedOut = true
                        Self.signal(e, e.run.killGraceMs <= 0 ? SIGKILL : SIGTERM)
                        if e.killAt == nil { e.killAt = now &+ max(0, e.run.killGraceMs) }
                    }
                    if let k = e.killAt, k <= now {
                        e.killAt = nil
                        Self.signal(e, SIGKILL)
                    }
                    s.entries[id] = e
                    for d in [e.timeoutAt, e.killAt].compactMap({ $0 }) { deadline = min(deadline ?? d, d) }
                    fds.append(pollfd(fd: e.pidfd, events: Int16(POLLIN), revents: 0))
                    ids.append(id)
                }
                if s.entries.isEmpty, done.isEmpty { s.threadRunning = false }
                return done
            }
            for e in finished {
                close(e.pidfd)
                e.ended(Self.completion(e.run, outcome: e.timedOut ? .timeout : .unknown))
            }
            if fds.count == 1 {
                if finished.isEmpty { return }  // nothing left: the thread ends (threadRunning cleared)
                continue
            }
            let timeout: Int32 = deadline.map { Int32(clamping: max(0, $0 - sundial_monotonic_ms())) } ?? -1
            let rc = poll(&fds, nfds_t(fds.count), timeout)
            if rc < 0, errno != EINTR { usleep(10_000) }  // should not happen; never spin
            if fds[0].revents != 0 { sundial_eventfd_drain(wakeFD) }
        }
    }

    // MARK: - Helpers

    /// Whether the pidfd polls readable: the process has exited.
    static func hasExited(_ pidfd: Int32) -> Bool {
        var p = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, 0) > 0
    }

    /// The group first (every process the job started), then the leader through its pidfd
    /// (in case it left the group). Only called while the leader is alive.
    static func signal(_ e: Entry, _ sig: Int32) {
        let group = e.run.identity.processGroup
        if group > 1 { _ = kill(-group, sig) }
        _ = sundial_pidfd_send_signal(e.pidfd, sig)
    }

    /// Milliseconds since a process started (its start ticks against `/proc/uptime`).
    static func elapsedMs(since startTicks: UInt64) -> Int64? {
        guard let bytes = try? FileSystem.read("/proc/uptime", limit: 256),
            let first = String(decoding: bytes, as: UTF8.self).split(separator: " ").first,
            let uptime = Double(first)
        else { return nil }
        let hz = Double(max(1, sysconf(Int32(_SC_CLK_TCK))))
        return max(0, Int64((uptime - Double(startTicks) / hz) * 1000))
    }

    static func completion(_ run: AdoptedRun, outcome: RunOutcome) -> RunCompletion {
        RunCompletion(
            runID: run.runID, pid: run.identity.pid, outcome: outcome,
            durationMs: elapsedMs(since: run.identity.startTicks) ?? 0)
    }
}
