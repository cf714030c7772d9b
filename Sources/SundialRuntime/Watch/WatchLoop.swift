import CSundialShim
import Glibc
import SundialCore
import Synchronization

/// The config watcher's work on an ``EventLoop``: owns the inotify descriptor, the watches, the
/// polling snapshot, the debouncer and a monotonic timerfd for the debounce and poll deadlines.
///
/// `@unchecked Sendable`: its mutable state is touched by `prepare()` on the starting thread,
/// then only by its handlers, which the event loop calls one at a time on its thread. `stop()`
/// touches only the registrations (behind a lock); the event loop's `remove` returns once no
/// handler of this loop is running. Descriptors are closed in `deinit` (the handlers hold this
/// object, so no handler can be using one then).
final class WatchLoop: @unchecked Sendable {
    private struct Watched {
        var directory: String
        var interest: WatchPlan.Interest
    }

    private struct Registrations {
        var inotify: EventLoop.Registration?
        var timer: EventLoop.Registration?
        var stopped = false
    }

    private let paths: [String]
    private let options: ConfigWatcher.Options
    private let loop: EventLoop
    private let timerFD: Int32
    private let registrations = Mutex(Registrations())
    private let status: StatusCell
    private let handler: @Sendable (WatchNotification) -> Void

    private var debouncer: Debouncer
    private var inotifyFD: Int32 = -1
    private var watches: [Int32: Watched] = [:]
    private var snapshot: PollSnapshot?
    private var nextPoll: Int64 = 0
    private var pendingFallback: String?
    /// When a rescan that could not get two agreeing readings looks again (monotonic ms).
    private var rescanDue: Int64?
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: WatchLoop.bufferSize, alignment: 8)

    private static let eventMask: UInt32 =
        UInt32(IN_CLOSE_WRITE) | UInt32(IN_CREATE) | UInt32(IN_DELETE) | UInt32(IN_MOVED_FROM)
        | UInt32(IN_MOVED_TO) | UInt32(IN_ATTRIB) | UInt32(IN_DELETE_SELF) | UInt32(IN_MOVE_SELF)
        | UInt32(IN_ONLYDIR) | UInt32(IN_EXCL_UNLINK)

    /// One read's buffer; room for hundreds of events (each 16 bytes plus a padded name).
    private static let bufferSize = 64 * 1024
    /// Reads per wake-up before the loop looks at its timers again.
    private static let maxReadsPerWake = 16

    /// - Returns: nil, with `errno` set, when no timerfd can be had.
    init?(
        paths: [String], options: ConfigWatcher.Options, loop: EventLoop, status: StatusCell,
        handler: @escaping @Sendable (WatchNotification) -> Void
    ) {
        let t = sundial_monotonic_timerfd_create()
        guard t >= 0 else { return nil }
        self.timerFD = t
        self.paths = paths
        self.options = options
        self.loop = loop
        self.status = status
        self.handler = handler
        self.debouncer = Debouncer(quiet: options.debounce, maxWait: options.maxWait)
    }

    deinit {
        if inotifyFD >= 0 { Glibc.close(inotifyFD) }
        Glibc.close(timerFD)
        buffer.deallocate()
    }

    private var pollIntervalMillis: Int64 { max(10, options.pollInterval.milliseconds) }

    // MARK: - Setup and teardown

    /// Sets up inotify (or polling) on the caller's thread, so `start()` returns watching.
    func prepare() {
        guard options.mode == .auto else {
            enterPolling(reason: nil)
            return
        }
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else {
            enterPolling(reason: "inotify unavailable (\(PathProbe.Errno(errno)))")
            return
        }
        inotifyFD = fd
        status.mode = .inotify
        rescan()
    }

    /// Registers the descriptors with the event loop and arms the first deadline (a polling
    /// fallback found by `prepare()` is reported from the loop's thread).
    /// - Returns: false, with `errno` set, when the event loop refuses them.
    func begin() -> Bool {
        guard let timer = loop.add(timerFD, { [self] in onTimer() }) else { return false }
        registrations.withLock { $0.timer = timer }
        if inotifyFD >= 0 {
            guard let reg = loop.add(inotifyFD, { [self] in onInotify() }) else {
                stop()
                return false
            }
            registrations.withLock { $0.inotify = reg }
        }
        _ = sundial_timerfd_arm_after(timerFD, pendingFallback != nil ? 0 : nextDeadline(at: monotonicMillis()))
        return true
    }

    /// Stops for good: no handler runs after it returns (unless called from one, which is then
    /// the last). Descriptors close with the object. Idempotent.
    func stop() {
        let taken = registrations.withLock { r -> Registrations in
            defer { r = Registrations(stopped: true) }
            return r
        }
        if let t = taken.timer { loop.remove(t, fd: timerFD) }
        if let i = taken.inotify { loop.remove(i, fd: inotifyFD) }
        status.mode = .stopped
    }

    private var isStopped: Bool { registrations.withLock { $0.stopped } }

    /// Switches to polling for good: closes inotify (dropping every watch at once) and takes
    /// the first snapshot. A `reason` is reported to the handler from the watcher's thread.
    private func enterPolling(reason: String?) {
        if inotifyFD >= 0 {
            // Registered (on the loop's thread): unregister before closing. Taken by a
            // concurrent stop(): leave the descriptor to deinit, stop() is unregistering it.
            let (registered, stopped) = registrations.withLock { r in
                defer { r.inotify = nil }
                return (r.inotify, r.stopped)
            }
            if let registered { loop.remove(registered, fd: inotifyFD) }
            if !stopped {
                Glibc.close(inotifyFD)
                inotifyFD = -1
            }
        }
        watches = [:]
        snapshot = PollSnapshot(paths: paths)
        nextPoll = monotonicMillis() + pollIntervalMillis
        status.mode = .polling
        if let reason { pendingFallback = reason }
    }

    // MARK: - Loop

    private func onInotify() {
        guard inotifyFD >= 0 else { return }
        let (sawChange, needsRescan) = drainEvents()
        let differed = needsRescan && rescan()
        step(changed: sawChange || differed)
    }

    private func onTimer() {
        var expirations: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &expirations) { read(timerFD, $0.baseAddress, 8) }
        step(changed: false)
    }

    /// What the old thread's loop did after each wake-up: report a fallback, note a change,
    /// poll when due, fire the debouncer; then arm the timer for the next deadline.
    private func step(changed: Bool) {
        if let reason = pendingFallback {
            pendingFallback = nil
            handler(.pollingFallback(reason: "\(reason); polling every \(pollIntervalMillis) ms"))
            if isStopped { return }
        }
        var now = monotonicMillis()
        var changed = changed
        if let due = rescanDue, now >= due, inotifyFD >= 0 {
            changed = rescan() || changed
            now = monotonicMillis()
        }
        if changed { debouncer.noteChange(at: now) }
        if inotifyFD < 0 {
            // Polling: look at the files when the interval is up, and again when a pending
            // change is due, so the notification only fires once the files are quiet.
            let due = debouncer.deadline.map { now >= $0 } ?? false
            if now >= nextPoll || due {
                let current = PollSnapshot(paths: paths)
                if current != snapshot {
                    snapshot = current
                    debouncer.noteChange(at: now)
                }
                nextPoll = now + pollIntervalMillis
            }
        }
        if debouncer.fire(at: now) {
            handler(.changed)
            if isStopped { return }
        }
        _ = sundial_timerfd_arm_after(timerFD, nextDeadline(at: monotonicMillis()))
    }

    /// Milliseconds until the debouncer or the next poll is due; -1 when nothing is timed
    /// (inotify with no pending change: the loop sleeps until an event).
    private func nextDeadline(at now: Int64) -> Int64 {
        var timeout = debouncer.timeout(at: now)
        if let due = rescanDue, inotifyFD >= 0 {
            let untilRescan = max(0, due - now)
            timeout = min(timeout ?? untilRescan, untilRescan)
        }
        if inotifyFD < 0 {
            let untilPoll = max(0, nextPoll - now)
            timeout = min(timeout ?? untilPoll, untilPoll)
        }
        return timeout.map { max(0, $0) } ?? -1
    }

    // MARK: - inotify

    /// Reads and classifies pending events: whether the config set changed, and whether the
    /// watches must be recomputed.
    private func drainEvents() -> (changed: Bool, rescan: Bool) {
        var changed = false
        var needsRescan = false
        for _ in 0..<WatchLoop.maxReadsPerWake {
            let n = read(inotifyFD, buffer.baseAddress, buffer.count)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }  // EAGAIN: drained
            for event in InotifyEvent.parse(UnsafeRawBufferPointer(rebasing: buffer[0..<n])) {
                let (c, r) = classify(event)
                changed = changed || c
                needsRescan = needsRescan || r
            }
        }
        return (changed, needsRescan)
    }

    private func classify(_ event: InotifyEvent) -> (changed: Bool, rescan: Bool) {
        let directory: EventDirectory
        if let watched = watches[event.watch] {
            if event.has(IN_IGNORED) {
                watches[event.watch] = nil  // the kernel dropped the watch: deleted or unmounted
                directory = .dropped
            } else {
                directory = .watched(watched.directory, watched.interest)
            }
        } else {
            directory = .unknown
        }
        return WatchLoop.classify(event, in: directory)
    }

    /// What the loop knows about the directory an event is about.
    enum EventDirectory {
        /// A directory being watched, with its (resolved) path and what matters in it.
        case watched(String, WatchPlan.Interest)
        /// A watch the kernel just dropped (IN_IGNORED for a directory still in the map).
        case dropped
        /// No longer watched (removed by a rescan) or a queue overflow.
        case unknown
    }

    /// Whether an event changes the config set, and whether the watches must be recomputed.
    /// Pure but for an `lstat` when a new entry might be a link to a directory.
    static func classify(_ event: InotifyEvent, in directory: EventDirectory) -> (changed: Bool, rescan: Bool) {
        if event.has(IN_Q_OVERFLOW) { return (true, true) }  // events were lost: assume anything
        let path: String
        let interest: WatchPlan.Interest
        switch directory {
        case .unknown: return (false, false)
        case .dropped: return (true, true)
        case .watched(let p, let i): (path, interest) = (p, i)
        }
        if event.has(IN_DELETE_SELF) || event.has(IN_MOVE_SELF) || event.has(IN_UNMOUNT) {
            return (true, true)
        }
        guard !event.name.isEmpty else {
            // An attribute change of a watched tree directory itself (its permissions).
            return interest.tree && event.has(IN_ATTRIB) ? (true, true) : (false, false)
        }
        let relevant = interest.isRelevant(name: event.name, isDirectory: event.isDirectory) {
            guard event.has(IN_CREATE) || event.has(IN_MOVED_TO) else { return false }
            let entry = PathProbe.join(path, event.name)
            if case .success(let st) = PathProbe.status(entry, followLinks: false) { return st.kind == .symlink }
            return false
        }
        guard relevant else { return (false, false) }
        // A job file's content or mode changed: no new directory or link to follow.
        let contentOnly = (event.has(IN_CLOSE_WRITE) || event.has(IN_ATTRIB)) && !event.isDirectory
        return (true, !contentOnly)
    }

    /// How many times `rescan()` reads the file system again before it stops chasing a tree
    /// that keeps changing under it (an unpacking, a `git checkout`): each reading of a large
    /// tree takes milliseconds on the loop's thread. Past it, a rescan is scheduled
    /// ``followUpRescanMillis`` later instead.
    private static let maxRescanPasses = 3
    private static let followUpRescanMillis: Int64 = 50

    /// Recomputes the watches from the file system: adds new directories, drops gone ones.
    /// Falls back to polling when the watch limit is reached.
    ///
    /// A directory created after the plan read the file system but before the watch on its
    /// parent was added sends no event to anyone (`mkdir -p later/jobs.d` racing the rescan
    /// that `later` caused), and every file written into it would go unseen. So the plan is
    /// read again once its watches are in place, until two readings agree: a directory that
    /// appears after that is reported by a watch.
    /// - Returns: whether a later reading differed from the first. Files may have been
    ///   written in a directory before its watch: the caller counts a change, so the reload
    ///   that follows (after the debounce, i.e. after the watch was added) reads them. (A
    ///   rescan caused by an event has its change counted already; one from the follow-up
    ///   timer has not.)
    @discardableResult
    private func rescan() -> Bool {
        rescanDue = nil
        guard inotifyFD >= 0 else { return false }
        var plan = readPlan()
        for pass in 0..<WatchLoop.maxRescanPasses {
            guard apply(plan) else { return false }
            let again = readPlan()
            if again.directories == plan.directories && again.exceeded == plan.exceeded { return pass > 0 }
            plan = again
        }
        // Still changing: watch what is there now, and look again shortly (from the timer, so
        // the loop's other work goes on), until a reading holds still.
        if apply(plan) { rescanDue = monotonicMillis() + WatchLoop.followUpRescanMillis }
        return true
    }

    /// The watches the file system calls for now (and, in tests, the moment a directory made
    /// by someone else can race them: after the reading, before the watches).
    private func readPlan() -> WatchPlan {
        let plan = WatchPlan(paths: paths)
        options.planHookForTesting?.run()
        return plan
    }

    /// Makes the watches those of `plan`. Returns false when it fell back to polling.
    @discardableResult
    private func apply(_ plan: WatchPlan) -> Bool {
        guard inotifyFD >= 0 else { return false }
        if plan.exceeded {
            enterPolling(reason: "more than \(WatchPlan.maxDirectories) directories to watch")
            return false
        }
        if let limit = options.watchLimitForTesting, plan.directories.count > limit {
            enterPolling(reason: WatchLoop.watchLimitReason)
            return false
        }
        var updated: [Int32: Watched] = [:]
        for (directory, interest) in plan.directories.sorted(by: { $0.key < $1.key }) {
            let wd = inotify_add_watch(inotifyFD, directory, WatchLoop.eventMask)
            guard wd >= 0 else {
                let error = errno
                if error == ENOSPC || error == ENOMEM {
                    enterPolling(reason: WatchLoop.watchLimitReason)
                    return false
                }
                // ENOENT/ENOTDIR: removed meanwhile, its parent's watch reports that;
                // EACCES: unreadable, which the listing reports as a problem.
                continue
            }
            // Two paths to one directory share a descriptor: merge what matters.
            if var existing = updated[wd] {
                existing.interest.merge(interest)
                updated[wd] = existing
            } else {
                updated[wd] = Watched(directory: directory, interest: interest)
            }
        }
        for wd in watches.keys where updated[wd] == nil {
            inotify_rm_watch(inotifyFD, wd)
        }
        watches = updated
        return true
    }

    private static let watchLimitReason = "inotify watch limit reached (fs.inotify.max_user_watches)"
}
