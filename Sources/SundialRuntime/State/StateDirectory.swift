#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import SundialCore

/// The agent's state directory (design §6: `/var/lib/sundial` as root, else `./.sundial`), held
/// exclusively: one agent per directory (issue 7, "Single instance").
///
/// `acquire` creates the directory (mode 0700: history and the control socket are private) and
/// takes an exclusive `flock` on `sundial.lock`, writing the holder's pid into it. The kernel
/// drops the lock when the process dies, however it dies, so a `kill -9` never leaves a stale
/// lock behind (unlike a pid file checked with `kill(pid, 0)`, which a recycled pid fools).
public final class StateDirectory: Sendable {
    public let path: String
    private let lockFD: Mutex<Int32>

    public var databasePath: String { path + "/state.db" }
    public var defaultSocketPath: String { path + "/sundial.sock" }
    public var lockPath: String { path + "/sundial.lock" }

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
        var attempts = 0
        while flock(fd, LOCK_EX | LOCK_NB) != 0, errno == EWOULDBLOCK, attempts < 40 {
            attempts += 1
            usleep(50_000)
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let err = errno
            let holder = readPID(fd)
            close(fd)
            if err == EWOULDBLOCK {
                throw StateError(.locked, path: path, message: "locked", holderPID: holder)
            }
            throw StateError(.io, path: lockPath, message: "cannot lock: \(String(cString: strerror(err)))")
        }
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return StateDirectory(path: path, fd: fd)
    }

    private init(path: String, fd: Int32) {
        self.path = path
        self.lockFD = Mutex(fd)
    }

    deinit { release() }

    /// Releases the lock (also done when the process exits). The lock file stays: removing it
    /// would race with a new agent that just opened it.
    public func release() {
        lockFD.withLock { fd in
            guard fd >= 0 else { return }
            close(fd)  // closing the last descriptor drops the flock
            fd = -1
        }
    }

    /// The pid in a lock file, if it holds one.
    private static func readPID(_ fd: Int32) -> Int32? {
        var buf = [UInt8](repeating: 0, count: 32)
        let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        let text = String(decoding: buf[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return Int32(text)
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
