#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSundialShim
import Synchronization

/// Appends lines to a file (`--log FILE`), rotating it by size (`--log-max-bytes`,
/// `--log-keep`): `FILE` → `FILE.1` → … → `FILE.keep`, the oldest deleted.
///
/// The descriptor is `O_APPEND`, so each line's single `write(2)` lands whole at the end even
/// if another process appends to the same file. A failed open or rotation is retried on the
/// next line rather than reported as fatal: a full disk degrades logging, never scheduling.
public final class FileEventSink: EventSink {
    public let path: String
    /// Rotate before a line would make the file larger than this; `nil`: never rotate.
    public let maxBytes: Int64?
    /// Rotated files kept (`FILE.1` … `FILE.keep`); 0 truncates in place.
    public let keep: Int

    private struct State {
        var fd: Int32 = -1
        var size: Int64 = 0
        var writer = LineWriter()
    }

    private let state = Mutex(State())

    /// Opens (creating, mode 0640) `path` for appending.
    /// - Throws: ``SinkError`` if the file cannot be opened now (a bad path is a usage error).
    public init(path: String, maxBytes: Int64? = nil, keep: Int = 5) throws(SinkError) {
        self.path = path
        self.maxBytes = maxBytes.map { max(1, $0) }
        self.keep = max(0, keep)
        try state.withLock { (s: inout State) throws(SinkError) in try open(&s, truncate: false) }
    }

    deinit { state.withLock { s in if s.fd >= 0 { close(s.fd) } } }

    public func write(_ line: [UInt8]) throws(SinkError) {
        try state.withLock { (s: inout State) throws(SinkError) in
            if s.fd < 0 { try open(&s, truncate: false) }
            if let maxBytes, s.size > 0, s.size + Int64(line.count) > maxBytes { rotate(&s) }
            do throws(SinkError) {
                try s.writer.write(fd: s.fd, line, timeoutMs: 0)
                s.size += Int64(line.count)
            } catch {
                // The size is unknown after a partial write; ask the file next time.
                var st = stat()
                if fstat(s.fd, &st) == 0 { s.size = Int64(st.st_size) }
                throw error
            }
        }
    }

    /// Closes and reopens the file (after an external `logrotate`, on SIGHUP).
    public func reopen() throws(SinkError) {
        try state.withLock { (s: inout State) throws(SinkError) in
            if s.fd >= 0 { close(s.fd); s.fd = -1 }
            try open(&s, truncate: false)
        }
    }

    private func open(_ s: inout State, truncate: Bool) throws(SinkError) {
        let flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0)
        let fd = Glibc.open(path, flags, 0o640)
        guard fd >= 0 else { throw SinkError(code: errno) }
        var st = stat()
        s.size = fstat(fd, &st) == 0 ? Int64(st.st_size) : 0
        s.fd = fd
    }

    private func rotate(_ s: inout State) {
        if keep > 0 {
            if keep > 1 {
                for i in stride(from: keep - 1, through: 1, by: -1) { _ = rename("\(path).\(i)", "\(path).\(i + 1)") }
            }
            guard rename(path, "\(path).1") == 0 else {
                // Cannot rotate (permissions?): keep appending, try again after another maxBytes.
                s.size = 0
                return
            }
        }
        close(s.fd)
        s.fd = -1
        s.writer.brokenLine = false
        do throws(SinkError) { try open(&s, truncate: keep == 0) } catch { s.size = 0 }
    }
}
