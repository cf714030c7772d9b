import CSundialShim
import SundialCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Appends lines to a file (`--log FILE`), rotating it by size (`--log-max-bytes`,
/// `--log-keep`): `FILE` → `FILE.1` → … → `FILE.keep`, the oldest deleted.
///
/// The descriptor is `O_APPEND`, so each line's single `write(2)` lands whole at the end even
/// with concurrent writers (threads, or another process appending to the same file). The write
/// happens outside any lock: a lock only guards which file is current, and the open file is
/// reference-counted, so a rotation never closes a descriptor another thread is writing to (its
/// line lands, whole, in the file just rotated; a file may so exceed `maxBytes` by a few lines).
/// A failed open or rotation is retried later rather than reported as fatal: a full disk, a
/// missing directory or a FIFO nobody reads degrades logging, never scheduling.
///
/// What `FILE` names decides how it is written:
/// - A regular file is rotated. Its size is `fstat`'s at open plus what this process wrote.
/// - Anything else (a character device such as `/dev/null` or a terminal, a FIFO) is a stream:
///   written, never renamed. It is opened and written non-blocking, so a FIFO without a reader
///   (ENXIO at open) or with a stalled one (EAGAIN) drops and counts lines instead of waiting.
/// - A symlink is followed. When it names a regular file, the link is resolved at each open and
///   rotation renames the file it names (`TARGET` → `TARGET.1` …, beside the target): the link
///   keeps naming the live file, and no rotation ever renames the link itself.
///
/// Every ``pathCheckIntervalMs`` at most (and before each rotation) the sink checks, with one
/// `stat`, that `FILE` still names the open file. When the file was deleted or renamed away
/// (`rm`, a logrotate without SIGUSR1), the path is opened again; if that fails (the directory
/// is gone) lines are dropped and counted, and the open retried at the same rate, rather than
/// written without bound to a file nobody can reach. A sink without a file (a FIFO without a
/// reader) retries its open at that rate too. The per-line cost is a clock read (vDSO).
public final class FileEventSink: EventSink {
    /// The largest `keep`: each rotation renames every kept file, on the scheduler's thread.
    public static let maximumKeep = 1000
    /// How often, at most, the path is checked against the open file (and a missing file's
    /// open retried).
    public static let pathCheckIntervalMs: Int64 = 1000

    public let path: String
    /// Rotate before a line would make the file larger than this; `nil`: never rotate.
    public let maxBytes: Int64?
    /// Rotated files kept (`FILE.1` … `FILE.keep`), at most ``maximumKeep``; 0 truncates in place.
    public let keep: Int
    private let clock: any SundialClock

    /// One opened file; closed when the last writer using it lets go.
    private final class OpenFile: Sendable {
        let fd: Int32
        /// Which file it is, to tell whether the path still names it.
        let device: UInt64
        let inode: UInt64
        /// The path rotation renames: `path`, or what a symlink there resolved to; `nil` for
        /// anything not a regular file (a stream: never rotated).
        let rotationPath: String?
        /// Bytes in the file as far as this process knows (for rotation).
        let size: Atomic<Int64>
        /// The last line written to it was cut (see ``LineWriter``).
        let brokenLine = Atomic<Bool>(false)

        init(fd: Int32, device: UInt64, inode: UInt64, rotationPath: String?, size: Int64) {
            self.fd = fd
            self.device = device
            self.inode = inode
            self.rotationPath = rotationPath
            self.size = Atomic(size)
        }

        deinit { close(fd) }
    }

    private struct Current {
        /// `nil` while the path cannot be opened (lines are dropped meanwhile).
        var file: OpenFile?
        /// Why the last open failed, thrown for each line dropped for it.
        var openError: Int32 = 0
    }

    private let current = ReadMostly(Current())
    /// Monotonic milliseconds of the next path check (see the type's comment); read per line,
    /// changed under `current`'s write lock.
    private let nextCheckMs: Atomic<Int64>

    /// Opens (creating, mode 0640) `path` for appending.
    /// - Parameter clock: its monotonic time paces the path checks and reopen attempts.
    /// - Throws: ``SinkError`` if the path cannot be opened now (a bad path is a usage error).
    ///   A FIFO without a reader is not an error: lines are dropped until one comes.
    public init(path: String, maxBytes: Int64? = nil, keep: Int = 5, clock: any SundialClock = SystemClock()) throws(SinkError) {
        self.path = path
        self.maxBytes = maxBytes.map { max(1, $0) }
        self.keep = min(max(0, keep), Self.maximumKeep)
        self.clock = clock
        nextCheckMs = Atomic(clock.monotonicNow() + Self.pathCheckIntervalMs)
        do throws(SinkError) {
            let file = try openFile(truncate: false)
            current.write { $0.file = file }
        } catch {
            var st = stat()
            guard error.code == ENXIO, stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFIFO else { throw error }
            current.write { $0.openError = ENXIO }
        }
    }

    public func write(_ line: [UInt8]) throws(SinkError) {
        let file = try fileForLine(of: Int64(line.count))
        var broken = file.brokenLine.load(ordering: .relaxed)
        let wasBroken = broken
        defer { if broken != wasBroken { file.brokenLine.store(broken, ordering: .relaxed) } }
        do throws(SinkError) {
            try LineWriter.write(fd: file.fd, line, brokenLine: &broken)
            file.size.add(Int64(line.count), ordering: .relaxed)
        } catch {
            // The size is unknown after a partial write; ask the file.
            var st = stat()
            if file.rotationPath != nil, fstat(file.fd, &st) == 0 { file.size.store(Int64(st.st_size), ordering: .relaxed) }
            throw error
        }
    }

    /// Closes and reopens the file (after an external `logrotate`; the agent calls it on SIGUSR1,
    /// SIGHUP being the reload).
    public func reopen() throws(SinkError) {
        let file = try openFile(truncate: false)
        current.write { $0.file = file }
    }

    /// The file to write a line of `count` bytes to, checking the path, opening or rotating
    /// first if needed.
    private func fileForLine(of count: Int64) throws(SinkError) -> OpenFile {
        let now = clock.monotonicNow()
        // Normal path: share the read lock with every other writer.
        let file = current.read { $0.file }
        if let file, now < nextCheckMs.load(ordering: .relaxed), !needsRotation(file, count) { return file }
        return try current.write { (slot: inout Current) throws(SinkError) -> OpenFile in
            // Another writer may have checked, opened or rotated while this one waited.
            if now >= nextCheckMs.load(ordering: .relaxed) {
                nextCheckMs.store(now + Self.pathCheckIntervalMs, ordering: .relaxed)
                if slot.file.map({ pathState(of: $0) == .moved }) ?? true { openAgain(&slot) }
            }
            guard let file = slot.file else { throw SinkError(code: slot.openError) }
            return needsRotation(file, count) ? try rotate(&slot, file) : file
        }
    }

    private func needsRotation(_ file: OpenFile, _ count: Int64) -> Bool {
        guard let maxBytes, file.rotationPath != nil else { return false }
        let size = file.size.load(ordering: .relaxed)
        return size > 0 && size + count > maxBytes
    }

    private enum PathState { case same, moved, unknown }

    /// Whether `path` still names `file`: `moved` when it names another file or nothing
    /// (deleted, renamed away, its directory gone); `unknown` when `stat` cannot tell (EACCES).
    private func pathState(of file: OpenFile) -> PathState {
        var st = stat()
        guard stat(path, &st) == 0 else { return errno == ENOENT || errno == ENOTDIR ? .moved : .unknown }
        return UInt64(st.st_dev) == file.device && UInt64(st.st_ino) == file.inode ? .same : .moved
    }

    /// Opens the path again; on failure the sink has no file (its lines are dropped) until a
    /// later check opens it: never written to a file the path no longer names.
    private func openAgain(_ slot: inout Current) {
        do throws(SinkError) {
            slot.file = try openFile(truncate: false)
        } catch {
            slot.file = nil
            slot.openError = error.code
        }
    }

    private func openFile(truncate: Bool) throws(SinkError) -> OpenFile {
        // O_NONBLOCK: a FIFO's open and writes never wait for a reader (regular files ignore it).
        // O_NOCTTY: a terminal named as the log never becomes the agent's controlling terminal.
        let flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | (truncate ? O_TRUNC : 0)
        let fd = open(path, flags, 0o640)
        guard fd >= 0 else { throw SinkError(code: errno) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let code = errno
            close(fd)
            throw SinkError(code: code)
        }
        let regular = st.st_mode & S_IFMT == S_IFREG
        if regular {
            return OpenFile(
                fd: fd, device: UInt64(st.st_dev), inode: UInt64(st.st_ino), rotationPath: rotationPath(naming: st),
                size: Int64(st.st_size))
        }
        sundial_ignore_sigpipe()  // a FIFO whose reader left: EPIPE, not a signal
        _ = sundial_grow_pipe(fd, LineWriter.pipeCapacity)  // -1 (nothing done) if not a FIFO
        return OpenFile(fd: fd, device: UInt64(st.st_dev), inode: UInt64(st.st_ino), rotationPath: nil, size: 0)
    }

    /// The path to rotate the regular file `opened` (just opened at `path`) by: `path` itself,
    /// or what the symlink at `path` resolves to. `nil` (not rotated until the next open) if
    /// the path changed in between.
    private func rotationPath(naming opened: stat) -> String? {
        func names(_ candidate: String, follow: Bool) -> Bool {
            var st = stat()
            guard (follow ? stat(candidate, &st) : lstat(candidate, &st)) == 0 else { return false }
            return st.st_dev == opened.st_dev && st.st_ino == opened.st_ino
        }
        if names(path, follow: false) { return path }
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        let target = String(cString: resolved)
        return names(target, follow: false) ? target : nil
    }

    /// Renames the files along and opens a fresh one; the current file (keep writing it, and
    /// try again after another `maxBytes`) if that is impossible right now. When the path no
    /// longer names the file (deleted or renamed away), opens the path again instead.
    private func rotate(_ slot: inout Current, _ file: OpenFile) throws(SinkError) -> OpenFile {
        guard let base = file.rotationPath else { return file }
        // Renaming whatever is at the path now would rotate a file that is not this one.
        if pathState(of: file) == .moved { return try reopenMoved(&slot) }
        if keep > 0 {
            if keep > 1 {
                for i in stride(from: keep - 1, through: 1, by: -1) { _ = rename("\(base).\(i)", "\(base).\(i + 1)") }
            }
            guard rename(base, "\(base).1") == 0 else {
                if errno == ENOENT { return try reopenMoved(&slot) }
                file.size.store(0, ordering: .relaxed)
                return file
            }
        }
        do throws(SinkError) {
            let fresh = try openFile(truncate: keep == 0)
            slot.file = fresh
            return fresh
        } catch {
            // Keeps writing the renamed file; the next path check reopens or drops it.
            file.size.store(0, ordering: .relaxed)
            return file
        }
    }

    private func reopenMoved(_ slot: inout Current) throws(SinkError) -> OpenFile {
        openAgain(&slot)
        guard let file = slot.file else { throw SinkError(code: slot.openError) }
        return file
    }
}
