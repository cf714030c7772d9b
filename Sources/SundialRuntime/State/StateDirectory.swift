import CSundialShim
import SundialCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The agent's state directory (design §6: `/var/lib/sundial` as root, else `./.sundial`), held
/// exclusively: one agent per directory (issue 7, "Single instance").
///
/// `acquire` creates the directory (mode 0700: history and the control socket are private) and
/// takes an exclusive `flock` on `sundial.lock`, writing the holder's pid into it. The kernel
/// drops the lock when the process dies, however it dies, so a `kill -9` never leaves a stale
/// lock behind (unlike a pid file checked with `kill(pid, 0)`, which a recycled pid fools).
///
/// A lock on a file can be bypassed by deleting the file (or the whole directory): a second
/// agent would lock a new file of the same name. So the agent also binds an abstract Unix
/// socket named after the directory's canonical path (``instanceName(for:)``). Abstract names
/// live in the kernel, not in the file system, and vanish with their holder: nothing on disk
/// can release them. And the agent watches its directory (``watchForRemoval(_:)``) and stops
/// (`agent.fatal`) when the directory, the lock file or the database is removed or replaced.
public final class StateDirectory: Sendable {
    public let path: String
    private let lockFD: Mutex<Int32>
    /// The database file's own lock (``lockDatabase()``), -1 until taken.
    private let databaseLockFD = Mutex<Int32>(-1)
    /// The abstract socket that holds the instance name (-1 once released).
    private let instanceFD: Mutex<Int32>

    public var databasePath: String { path + "/state.db" }
    public var defaultSocketPath: String { path + "/sundial.sock" }
    public var lockPath: String { path + "/sundial.lock" }
    /// Written at the first start and never removed by Sundial: a directory with this marker
    /// has had a database, so a missing or empty `state.db` there means state was lost.
    public var markerPath: String { path + "/state.id" }

    /// Creates `path` if needed and locks it.
    ///
    /// - Throws: ``StateError`` `.locked` naming the holder's pid when another agent (or another
    ///   `StateDirectory` in this process) holds it; `.io` when the directory cannot be created
    ///   or the lock file opened.
    public static func acquire(path: String) throws -> StateDirectory {
        try makeDirectories(path)
        let lockPath = path + "/sundial.lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StateError(.io, path: lockPath, message: "cannot open: \(errnoText())") }
        // A killed agent's lock can outlive it by a moment: a job it was spawning holds a copy
        // of the descriptor until its exec closes it (close-on-exec). So a restart right after a
        // crash waits briefly (2 s at most) before declaring the directory taken.
        let name = instanceName(for: path)
        var attempts = 0
        var instance: Int32 = -1
        // Abstract sockets always exist on Linux; should creating one fail for another reason
        // (no descriptors left), the flock alone still guards the directory.
        var instanceUsable = true
        while true {
            if instanceUsable, instance < 0 {
                instance = bindInstance(name)
                if instance < 0, errno != EADDRINUSE { instanceUsable = false }
            }
            var err = EADDRINUSE
            if !instanceUsable || instance >= 0 {
                if flock(fd, LOCK_EX | LOCK_NB) == 0 { break }
                err = errno
            }
            guard err == EWOULDBLOCK || err == EADDRINUSE, attempts < 40 else {
                let holder = readPID(fd) ?? instanceHolder(name)
                close(fd)
                if instance >= 0 { close(instance) }
                if err == EWOULDBLOCK || err == EADDRINUSE {
                    throw StateError(.locked, path: path, message: "locked", holderPID: holder)
                }
                throw StateError(.io, path: lockPath, message: "cannot lock: \(String(cString: strerror(err)))")
            }
            attempts += 1
            usleep(50_000)
        }
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return StateDirectory(path: path, fd: fd, instance: instance)
    }

    private init(path: String, fd: Int32, instance: Int32) {
        self.path = path
        self.lockFD = Mutex(fd)
        self.instanceFD = Mutex(instance)
    }

    deinit { release() }

    /// Locks the database file itself (an exclusive `flock` on `state.db`, through any link),
    /// for the agent's life. The directory's lock does not cover a database two directories
    /// share: `st2/state.db` a link to `st/state.db` let two agents run on one database, and
    /// planned fires were recorded (and run) twice. SQLite's own locks are `fcntl` locks,
    /// which `flock` does not touch.
    ///
    /// - Throws: ``StateError`` `.locked` when another agent holds it.
    public func lockDatabase() throws {
        let fd = open(databasePath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StateError(.io, path: databasePath, message: "cannot open: \(errnoText())") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let err = errno
            close(fd)
            if err == EWOULDBLOCK {
                throw StateError(.locked, path: databasePath, message: "the database is in use by another agent (through another state directory)")
            }
            throw StateError(.io, path: databasePath, message: "cannot lock: \(String(cString: strerror(err)))")
        }
        databaseLockFD.withLock { old in
            if old >= 0 { close(old) }
            old = fd
        }
    }

    /// Releases the lock (also done when the process exits). The lock file stays: removing it
    /// would race with a new agent that just opened it.
    public func release() {
        databaseLockFD.withLock { fd in
            guard fd >= 0 else { return }
            close(fd)
            fd = -1
        }
        lockFD.withLock { fd in
            guard fd >= 0 else { return }
            close(fd)  // closing the last descriptor drops the flock
            fd = -1
        }
        instanceFD.withLock { fd in
            guard fd >= 0 else { return }
            close(fd)
            fd = -1
        }
    }

    /// The pid in a lock file, if it holds one.
    private static func readPID(_ fd: Int32) -> Int32? {
        var buf = [UInt8](repeating: 0, count: 32)
        let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        let digits = buf[0..<n].drop { $0 == 0x20 || $0 == 0x0A || $0 == 0x09 || $0 == 0x0D }.prefix { $0 >= 0x30 && $0 <= 0x39 }
        return Int32(String(decoding: digits, as: UTF8.self))
    }

    /// `mkdir -p`, with mode 0700 for the directories it creates.
    private static func makeDirectories(_ path: String) throws {
        var st = stat()
        if stat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else { throw StateError(.io, path: path, message: "not a directory") }
            return
        }
        let parent = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        if !parent.isEmpty, parent != path { try makeDirectories(parent) }
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw StateError(.io, path: path, message: "cannot create directory: \(errnoText())")
        }
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }

extension StateDirectory {
    /// The state directory when `--state` is not given (design §6): `$SUNDIAL_STATE`, else
    /// `/var/lib/sundial` for root, else `./.sundial`.
    public static func defaultPath(environment: [String: String], uid: UInt32) -> String {
        if let env = environment["SUNDIAL_STATE"], !env.isEmpty { return env }
        return uid == 0 ? "/var/lib/sundial" : ".sundial"
    }

    /// The control socket a client should use: `--control`, else `STATE/sundial.sock` with
    /// STATE from `--state` or ``defaultPath(environment:uid:)``.
    public static func socketPath(control: String?, state: String?, environment: [String: String], uid: UInt32) -> String {
        if let control, !control.isEmpty { return control }
        let dir = state.flatMap { $0.isEmpty ? nil : $0 } ?? defaultPath(environment: environment, uid: uid)
        return (dir.hasSuffix("/") ? String(dir.dropLast()) : dir) + "/sundial.sock"
    }
}

// MARK: - The instance name (a lock files cannot undo)

extension StateDirectory {
    /// The abstract socket name that stands for the state directory at `path`: its canonical
    /// path (symlinks resolved, so two spellings of one directory clash), or a hash of it when
    /// too long for `sun_path`. Visible in `ss -xl` as `@sundial-state:/var/lib/sundial`.
    static func instanceName(for path: String) -> [UInt8] {
        var canonical = path
        if let resolved = realpath(path, nil) {
            canonical = String(cString: resolved)
            free(resolved)
        }
        let plain = Array("sundial-state:\(canonical)".utf8)
        if plain.count <= 100 { return plain }
        var hash = ContentHash()
        hash.combine(canonical)
        return Array("sundial-state:#\(hash.hex)".utf8)
    }

    /// Binds and listens on the abstract name; -1 when it is taken (EADDRINUSE) or sockets fail.
    /// Listening lets a second agent learn the holder's pid (``instanceHolder(_:)``).
    static func bindInstance(_ name: [UInt8]) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return -1 }
        let ok = withAbstractAddress(name) { bind(fd, $0, $1) == 0 } && listen(fd, 4) == 0
        if !ok {
            let e = errno
            close(fd)
            errno = e
            return -1
        }
        return fd
    }

    /// The pid of the process holding the abstract name (its credentials at `listen`), if any.
    static func instanceHolder(_ name: [UInt8]) -> Int32? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard withAbstractAddress(name, { connect(fd, $0, $1) == 0 }) else { return nil }
        var uid: UInt32 = 0
        var gid: UInt32 = 0
        var pid: Int32 = 0
        guard sundial_peer_credentials(fd, &uid, &gid, &pid) == 0, pid > 0 else { return nil }
        return pid
    }

    private static func withAbstractAddress<T>(_ name: [UInt8], _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let count = min(name.count, MemoryLayout.size(ofValue: addr.sun_path) - 1)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw[0] = 0  // abstract: a leading NUL, then the name (not NUL-terminated)
            for i in 0..<count { raw[1 + i] = name[i] }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + 1 + count)
        return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) } }
    }
}

// MARK: - Still ours? Lost state?

extension StateDirectory {
    /// `nil` while the directory and the lock file at their paths are the ones this agent
    /// locked; otherwise what changed (for `agent.fatal`).
    public func lossReason() -> String? {
        var mine = stat()
        let held = lockFD.withLock { fd in fd >= 0 && fstat(fd, &mine) == 0 }
        guard held else { return nil }  // released: nothing to guard
        var now = stat()
        guard stat(path, &now) == 0, (now.st_mode & S_IFMT) == S_IFDIR else { return "the state directory \(path) was removed" }
        guard stat(lockPath, &now) == 0 else { return "\(lockPath) was removed" }
        guard now.st_dev == mine.st_dev, now.st_ino == mine.st_ino else { return "\(lockPath) was replaced by another file" }
        return nil
    }

    /// What a start finds of earlier state, before it opens the database: `nil` when nothing
    /// is amiss, else a sentence for `state.reset`. State was lost when `state.db` is missing
    /// or empty (0 bytes) although the directory has held a database before: the marker
    /// `state.id` (written at the first start) or a write-ahead log with content is there.
    /// SQLite would silently take such a file as a new, empty database.
    public func lostDatabase() -> String? {
        var st = stat()
        let db = databasePath
        let dbState: String
        if stat(db, &st) != 0 {
            dbState = "is missing"
        } else if st.st_size == 0 {
            dbState = "is empty (0 bytes)"
        } else {
            return nil
        }
        var evidence: [String] = []
        if stat(markerPath, &st) == 0 { evidence.append("\(markerPath) shows the directory was in use") }
        if stat(db + "-wal", &st) == 0, st.st_size > 0 { evidence.append("a write-ahead log of \(st.st_size) bytes is left") }
        guard !evidence.isEmpty else { return nil }
        return "\(db) \(dbState) although \(evidence.joined(separator: " and ")): every job's last fired instant, "
            + "the run history, the runs in flight and the why ledger are lost; starting with an empty database "
            + "(no catch-up of fires missed meanwhile; a run still in flight is not adopted)"
    }

    /// Writes the marker if it is missing (after the database opened). Best effort: without
    /// it, only a future loss goes unreported.
    public func writeMarker(now: Instant) {
        var st = stat()
        guard stat(markerPath, &st) != 0 else { return }
        let text = "sundial state directory\ncreated \(RFC3339.format(now, utcOffsetSeconds: 0, fractionDigits: 3))\n"
        try? AtomicFileWriter.write(Array(text.utf8), to: markerPath, mode: 0o600)
    }
}
