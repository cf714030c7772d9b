import CSundialShim

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where the ``EventLog`` puts its lines: a file, standard output, or a test's memory.
///
/// A protocol so tests can make the log fail (ENOSPC, EIO) on demand.
public protocol EventSink: Sendable {
    /// Writes `line`, one complete JSON line ending in `\n`, with a single `write(2)`.
    /// Must return or throw within a bounded time: the scheduler calls this.
    /// - Throws: ``SinkError`` when the line was not (completely) written.
    func write(_ line: [UInt8]) throws(SinkError)
}

/// A line could not be written; `code` is the `errno` (ENOSPC, EIO, EAGAIN: a stream's reader
/// is behind; ENXIO: a FIFO has no reader).
public struct SinkError: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: Int32
    public init(code: Int32) { self.code = code }
    public var description: String { errnoText(code) }
}

/// Writing whole lines to a descriptor, shared by the file and standard-output sinks.
enum LineWriter {
    /// Capacity asked for a pipe or FIFO the log writes to: the slack a reader that falls
    /// behind gets before lines are dropped (the kernel's default, 64 KiB, is ~300 lines). 1 MiB
    /// is the default `/proc/sys/fs/pipe-max-size`; a smaller limit leaves the pipe as it is.
    static let pipeCapacity: Int32 = 1 << 20

    /// Writes `line` with one system call in the normal case. A short write (disk filling up,
    /// a pipe) is continued, at most 16 times.
    ///
    /// Never waits: a non-blocking descriptor that would block (a stalled pipe, FIFO or
    /// socket reader) throws EAGAIN at once. The caller is the scheduler's loop, where a wait
    /// per line is what froze it (200 lines/s at 250 ms each); the pipe's buffer
    /// (``pipeCapacity``) is the slack, and what does not fit is counted in `log.dropped`.
    ///
    /// `brokenLine`: a previous line was written only in part, so this write starts with `\n`
    /// (in the same `writev`), terminating the fragment so every later line stays parseable.
    /// Updated for the next call.
    static func write(fd: Int32, _ line: [UInt8], brokenLine: inout Bool) throws(SinkError) {
        var offset = 0
        var prefix = brokenLine
        for _ in 0..<16 {
            let n = line.withUnsafeBytes { sundial_write_line(fd, $0.baseAddress! + offset, $0.count - offset, prefix ? 1 : 0) }
            if n >= 0 {
                var written = n
                if prefix, written > 0 {
                    prefix = false
                    brokenLine = false
                    written -= 1
                }
                offset += written
                if offset == line.count { return }
                if offset > 0 { brokenLine = true }
                continue
            }
            let e = errno
            if e == EINTR { continue }
            if offset > 0 { brokenLine = true }
            throw SinkError(code: e)
        }
        if offset > 0 { brokenLine = true }
        throw SinkError(code: EIO)
    }
}
