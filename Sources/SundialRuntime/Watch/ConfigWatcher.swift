import CSundialShim
import Glibc
import SundialCore
import Synchronization

/// What the config watcher tells its owner.
public enum WatchNotification: Sendable, Hashable {
    /// Something under the config paths changed (already debounced): reload the whole set.
    case changed
    /// inotify could not be used, so the watcher polls from now on; the agent logs this as a
    /// `warn` event. `reason` is a sentence such as
    /// "inotify watch limit reached (fs.inotify.max_user_watches)".
    case pollingFallback(reason: String)
}

/// Watches config paths (files and directories, recursively, through symbolic links) and
/// reports, after a debounce, that the config set changed (design §2 Reload).
///
/// The inotify descriptor and a monotonic timerfd (debounce, polling) are watched by an
/// ``EventLoop``: the agent's own, or one the watcher starts for itself when given none. An
/// idle watcher costs nothing: no timer is armed while nothing is pending. Events are filtered by the listing rules
/// of `ConfigFiles` (hidden files and editor leftovers never cause a reload), except that the
/// links on the way to a job file always count, so a Kubernetes `..data` swap is seen. After a
/// structural change (a new or removed directory, a link swap, a queue overflow) the set of
/// watches is recomputed. When inotify is unavailable or `max_user_watches` is exhausted, the
/// watcher polls instead (size, mtime, inode, content hash of small files) and says so once.
///
/// The handler runs on the event loop's thread: it must return quickly (hand the work to the agent,
/// e.g. yield into an `AsyncStream`). It may call `stop()`.
public final class ConfigWatcher: Sendable {
    /// How changes are detected.
    public enum Mode: Sendable, Hashable {
        /// inotify, falling back to polling when it cannot be used.
        case auto
        /// Polling only (for file systems without inotify, such as some network mounts, and tests).
        case poll
    }

    /// What the watcher is doing now.
    public enum ActiveMode: Sendable, Hashable { case stopped, inotify, polling }

    public struct Options: Sendable, Hashable {
        /// The quiet period after the last change before `changed` is reported.
        public var debounce: Duration
        /// The longest `changed` is held back while changes keep coming.
        public var maxWait: Duration
        /// How often the polling fallback looks at the files.
        public var pollInterval: Duration
        public var mode: Mode
        /// Tests only: behave as if `inotify_add_watch` failed with ENOSPC once more than this
        /// many directories are watched.
        var watchLimitForTesting: Int?
        /// Tests only: runs each time the watcher has read the file system for its watches,
        /// before it adds them (where a directory created by someone else races it).
        var planHookForTesting: TestHook?

        public init(
            debounce: Duration = .milliseconds(250), maxWait: Duration = .seconds(5),
            pollInterval: Duration = .seconds(2), mode: Mode = .auto
        ) {
            self.debounce = debounce
            self.maxWait = maxWait
            self.pollInterval = pollInterval
            self.mode = mode
        }
    }

    /// A test's callback inside `Options`, which stays `Hashable`: every hook compares equal.
    struct TestHook: Sendable, Hashable {
        let run: @Sendable () -> Void
        static func == (_: TestHook, _: TestHook) -> Bool { true }
        func hash(into hasher: inout Hasher) {}
    }

    /// Why `start()` failed: the process is out of descriptors or threads.
    public struct StartError: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// The config paths, as given.
    public let paths: [String]
    public let options: Options
    private let handler: @Sendable (WatchNotification) -> Void
    private let onStop: (@Sendable () -> Void)?
    /// The agent's loop, or nil: the watcher then starts a loop of its own (`sundial-watch`).
    private let sharedLoop: EventLoop?
    private let control = Mutex<Control>(Control())

    private struct Control: ~Copyable {
        var work: WatchLoop?
        var ownLoop: EventLoop?
        /// The running loop's mode; one cell per start, so a loop still finishing after a
        /// `stop()` from its handler cannot overwrite the mode of a restarted one.
        var status: StatusCell?
    }

    /// - Parameters:
    ///   - paths: config paths (files or directories; they need not exist yet).
    ///   - handler: receives the notifications on the watcher's thread.
    ///   - loop: the event loop to watch on; nil starts one for the watcher alone.
    public convenience init(
        paths: [String], options: Options = Options(), loop: EventLoop? = nil,
        handler: @escaping @Sendable (WatchNotification) -> Void
    ) {
        self.init(paths: paths, options: options, loop: loop, onStop: nil, handler: handler)
    }

    init(
        paths: [String], options: Options, loop: EventLoop? = nil, onStop: (@Sendable () -> Void)?,
        handler: @escaping @Sendable (WatchNotification) -> Void
    ) {
        self.paths = paths
        self.options = options
        self.sharedLoop = loop
        self.onStop = onStop
        self.handler = handler
    }

    deinit { stop() }

    /// What the watcher is doing now.
    public var activeMode: ActiveMode { control.withLock { $0.status?.mode ?? .stopped } }

    /// Sets up the watches (before returning, so a change made after `start()` returns is seen)
    /// and starts watching them on the event loop. Does nothing when already started.
    /// - Throws: `StartError` only when no timerfd, event loop or thread can be had; inotify
    ///   trouble is not thrown but reported as `.pollingFallback`.
    public func start() throws(StartError) {
        try control.withLock { (control: inout Control) throws(StartError) in
            guard control.work == nil else { return }
            var own: EventLoop?
            let loop: EventLoop
            if let sharedLoop {
                loop = sharedLoop
            } else {
                do throws(EventLoop.StartError) { own = try EventLoop(name: "sundial-watch") } catch {
                    throw StartError(description: "cannot start the watcher's event loop: \(error)")
                }
                loop = own!
            }
            let status = StatusCell()
            guard let work = WatchLoop(paths: paths, options: options, loop: loop, status: status, handler: handler) else {
                own?.stop()
                throw StartError(description: "cannot create a timerfd: \(PathProbe.Errno(errno))")
            }
            work.prepare()
            guard work.begin() else {
                let e = errno
                own?.stop()
                throw StartError(description: "cannot watch on the event loop: \(PathProbe.Errno(e))")
            }
            control.work = work
            control.ownLoop = own
            control.status = status
        }
    }

    /// Stops watching; after it returns no handler call is running or will start (unless called
    /// from the handler itself, which then is the last call). Idempotent.
    public func stop() {
        let stopped: (work: WatchLoop, own: EventLoop?)? = control.withLock { control in
            guard let work = control.work else { return nil }
            defer {
                control.work = nil
                control.ownLoop = nil
                control.status = nil
            }
            return (work, control.ownLoop)
        }
        guard let stopped else { return }
        stopped.work.stop()
        stopped.own?.stop()
        onStop?()
    }
}

extension ConfigWatcher {
    /// A started watcher whose notifications arrive as an `AsyncStream`, for an agent that
    /// funnels them, SIGHUP and `sundial reload` into one reload loop.
    ///
    /// The stream keeps the newest 16 notifications (a slow consumer loses only repeats of
    /// `.changed`, which all mean "reload"). It finishes when the watcher is stopped, and
    /// cancelling its iteration stops the watcher.
    /// - Throws: `StartError` as `start()`.
    public static func stream(
        paths: [String], options: Options = Options(), loop: EventLoop? = nil
    ) throws(StartError) -> (watcher: ConfigWatcher, notifications: AsyncStream<WatchNotification>) {
        let (stream, continuation) = AsyncStream.makeStream(
            of: WatchNotification.self, bufferingPolicy: .bufferingNewest(16))
        let watcher = ConfigWatcher(
            paths: paths, options: options, loop: loop, onStop: { continuation.finish() },
            handler: { continuation.yield($0) })
        continuation.onTermination = { [weak watcher] _ in watcher?.stop() }
        try watcher.start()
        return (watcher, stream)
    }
}

/// The watcher's mode, shared between its thread (writer) and `activeMode` (readers).
final class StatusCell: Sendable {
    private let value = Mutex<ConfigWatcher.ActiveMode>(.stopped)
    var mode: ConfigWatcher.ActiveMode {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}

/// Monotonic milliseconds (`CLOCK_MONOTONIC`), the debouncer's time base.
func monotonicMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}
