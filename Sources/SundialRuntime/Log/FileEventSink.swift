import CSundialShim
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
/// A failed open or rotation is retried on the next line rather than reported as fatal: a full
/// disk degrades logging, never scheduling.
public final class FileEventSink: EventSink {
    public let path: String
    /// Rotate before a line would make the file larger than this; `nil`: never rotate.
    public let maxBytes: Int64?
    /// Rotated files kept (`FILE.1` … `FILE.keep`); 0 truncates in place.
    public let keep: Int

    /// One opened file; closed when the last writer using it lets go.
    private final class OpenFile: Sendable {
        let fd: Int32
        /// Bytes in the file as far as this process knows (for rotation).
        let size: Atomic<Int64>
        /// The last line written to it was cut (see ``LineWriter``).
        let brokenLine = Atomic<Bool>(false)

        init(fd: Int32, size: Int64) {
            self.fd = fd
            self.size = Atomic(size)
        }

        deinit { close(fd) }
    }

    private let current = ReadMostly<OpenFile?>(nil)

    /// Opens (creating, mode 0640) `path` for appending.
    /// - Throws: ``SinkError`` if the file cannot be opened now (a bad path is a usage error).
    public init(path: String, maxBytes: Int64? = nil, keep: Int = 5) throws(SinkError) {
        self.path = path
        self.maxBytes = maxBytes.map { max(1, $0) }
        self.keep = max(0, keep)
        let file = try openFile(truncate: false)
        current.write { $0 = file }
    }

    public func write(_ line: [UInt8]) throws(SinkError) {
        let file = try fileForLine(of: Int64(line.count))
        var broken = file.brokenLine.load(ordering: .relaxed)
        let wasBroken = broken
        defer { if broken != wasBroken { file.brokenLine.store(broken, ordering: .relaxed) } }
        do throws(SinkError) {
            try LineWriter.write(fd: file.fd, line, brokenLine: &broken, timeoutMs: 0)
            file.size.add(Int64(line.count), ordering: .relaxed)
        } catch {
            // The size is unknown after a partial write; ask the file.
            var st = stat()
            if fstat(file.fd, &st) == 0 { file.size.store(Int64(st.st_size), ordering: .relaxed) }
            throw error
        }
    }

    /// Closes and reopens the file (after an external `logrotate`; the agent calls it on SIGUSR1,
    /// SIGHUP being the reload).
    public func reopen() throws(SinkError) {
        let file = try openFile(truncate: false)
        current.write { $0 = file }
    }

    /// The file to write a line of `count` bytes to, opening or rotating first if needed.
    private func fileForLine(of count: Int64) throws(SinkError) -> OpenFile {
        // Normal path: share the read lock with every other writer.
        let file = current.read { $0 }
        if let file, !needsRotation(file, count) { return file }
        return try current.write { (slot: inout OpenFile?) throws(SinkError) -> OpenFile in
            guard let file = slot else {
                let file = try openFile(truncate: false)
                slot = file
                return file
            }
            // Another writer may have rotated while this one waited for the lock.
            return needsRotation(file, count) ? (rotate(&slot) ?? file) : file
        }
    }

    private func needsRotation(_ file: OpenFile, _ count: Int64) -> Bool {
        guard let maxBytes else { return false }
        let size = file.size.load(ordering: .relaxed)
        return size > 0 && size + count > maxBytes
    }

    private func openFile(truncate: Bool) throws(SinkError) -> OpenFile {
        let flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0)
        let fd = open(path, flags, 0o640)
        guard fd >= 0 else { throw SinkError(code: errno) }
        var st = stat()
        return OpenFile(fd: fd, size: fstat(fd, &st) == 0 ? Int64(st.st_size) : 0)
    }

    /// Renames the files along and opens a fresh one; `nil` (keep writing the current file,
    /// and try again after another `maxBytes`) if that is impossible right now.
    private func rotate(_ slot: inout OpenFile?) -> OpenFile? {
        if keep > 0 {
            if keep > 1 {
                for i in stride(from: keep - 1, through: 1, by: -1) { _ = rename("\(path).\(i)", "\(path).\(i + 1)") }
            }
            guard rename(path, "\(path).1") == 0 else {
                slot?.size.store(0, ordering: .relaxed)
                return nil
            }
        }
        do throws(SinkError) {
            let file = try openFile(truncate: keep == 0)
            slot = file
            return file
        } catch {
            slot?.size.store(0, ordering: .relaxed)
            return nil
        }
    }
}
