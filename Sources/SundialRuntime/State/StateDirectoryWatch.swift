import CSundialShim
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Notices the agent's state directory, its lock file or its database being removed, moved or
/// replaced while the agent runs, and says so once (the agent then stops with `agent.fatal`).
///
/// Why stop: the agent would go on writing to files that no longer have a name (its history
/// lost at the next start), its control socket would be gone (unreachable), and a new directory
/// on the same path would look free to a second agent. The abstract instance name
/// (``StateDirectory``) keeps that second agent out while this one runs; stopping at once
/// hands the path over cleanly (systemd restarts the unit on a fresh directory).
///
/// inotify on the directory, watched by the agent's ``EventLoop`` (no thread of its own, no
/// timeout: an idle agent is never woken by it). Only events naming the guarded files or the directory
/// itself count; the database's `-wal`/`-shm` files and the control socket come and go freely.
public final class StateDirectoryWatch: Sendable {
    public struct StartError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    private let inotifyFD: Int32
    private let loop: EventLoop
    private let registration = Mutex<EventLoop.Registration?>(nil)

    /// The files whose removal or replacement is fatal.
    public static let guardedNames: Set<String> = ["sundial.lock", "state.db"]

    /// Starts watching `directory` (held as `StateDirectory`) on `loop`; `onLost` is called at
    /// most once, on the loop's thread (or on the caller's, for a loss found at once), with a
    /// sentence saying what happened.
    ///
    /// - Throws: ``StartError`` when inotify cannot be had (the agent then runs unguarded and
    ///   says so in a warning; the instance name still keeps a second agent out).
    public init(directory: StateDirectory, loop: EventLoop, onLost: @escaping @Sendable (String) -> Void) throws(StartError) {
        let fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard fd >= 0 else { throw StartError(description: "inotify: \(String(cString: strerror(errno)))") }
        let mask =
            UInt32(IN_DELETE_SELF) | UInt32(IN_MOVE_SELF) | UInt32(IN_DELETE) | UInt32(IN_MOVED_FROM)
            | UInt32(IN_MOVED_TO) | UInt32(IN_CREATE) | UInt32(IN_ONLYDIR)
        let watching = inotify_add_watch(fd, directory.path, mask) >= 0
        let watchErrno = errno
        // A directory removed while the agent was starting is the loss itself (reported below),
        // not a reason to run unguarded (seen: removed between `agent.started` and this).
        if !watching, directory.lossReason() == nil {
            close(fd)
            throw StartError(description: "cannot watch \(directory.path): \(String(cString: strerror(watchErrno)))")
        }
        inotifyFD = fd
        self.loop = loop
        guard watching else {
            if let reason = directory.lossReason() { onLost(reason) }
            return
        }
        let path = directory.path
        let added = loop.add(fd) { [self] in
            guard let reason = readEvents(path: path, directory: directory) else { return }
            // Once: the first to take the registration reports.
            guard stopWatching() else { return }
            onLost(reason)
        }
        guard let added else {
            throw StartError(description: "cannot watch the inotify descriptor: \(String(cString: strerror(errno)))")
        }
        registration.withLock { $0 = added }
        // Anything replaced between taking the lock and adding the watch is caught here.
        if let reason = directory.lossReason(), stopWatching() {
            onLost(reason)
        }
    }

    deinit { close(inotifyFD) }

    /// Stops watching (a clean stop removes the control socket; nothing else is reported).
    public func stop() { _ = stopWatching() }

    /// Removes the registration; false when it was already gone (stopped, or reported).
    private func stopWatching() -> Bool {
        guard
            let r = registration.withLock({ r in
                defer { r = nil }
                return r
            })
        else { return false }
        loop.remove(r, fd: inotifyFD)
        return true
    }

    /// Drains the inotify descriptor (at most 64 reads, so a flood cannot hold the loop) and
    /// returns the first event that matters.
    private func readEvents(path: String, directory: StateDirectory) -> String? {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
        defer { buffer.deallocate() }
        var reason: String?
        for _ in 0..<64 {
            let n = read(inotifyFD, buffer.baseAddress, buffer.count)
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { break }
            for event in InotifyEvent.parse(UnsafeRawBufferPointer(rebasing: buffer[0..<n])) where reason == nil {
                reason = Self.classify(event, path: path, directory: directory)
            }
        }
        return reason
    }

    /// What an event means for the agent: `nil` when nothing it depends on changed.
    static func classify(_ event: InotifyEvent, path: String, directory: StateDirectory) -> String? {
        if event.has(IN_DELETE_SELF) || event.has(IN_IGNORED) || event.has(IN_UNMOUNT) {
            return "the state directory \(path) was removed"
        }
        if event.has(IN_MOVE_SELF) { return "the state directory \(path) was moved or renamed" }
        if event.has(IN_Q_OVERFLOW) { return directory.lossReason() }  // events lost: look
        guard guardedNames.contains(event.name) else { return nil }
        let file = "\(path)/\(event.name)"
        if event.has(IN_DELETE) { return "\(file) was removed" }
        if event.has(IN_MOVED_FROM) { return "\(file) was moved away" }
        if event.has(IN_CREATE) || event.has(IN_MOVED_TO) { return "\(file) was replaced by another file" }
        return nil
    }
}
