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

/// A line could not be written; `code` is the `errno` (ENOSPC, EIO, EAGAIN after the timeout...).
public struct SinkError: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: Int32
    public init(code: Int32) { self.code = code }
    public var description: String { errnoText(code) }
}

/// Writing whole lines to a descriptor, shared by the file and standard-output sinks.
enum LineWriter {
    /// Writes `line` with one system call in the normal case. A short write (disk filling up,
    /// a pipe) is continued, at most 16 times; a non-blocking descriptor that would block is
    /// waited for at most `timeoutMs` in all.
    ///
    /// `brokenLine`: a previous line was written only in part, so this write starts with `\n`
    /// (in the same `writev`), terminating the fragment so every later line stays parseable.
    /// Updated for the next call.
    static func write(fd: Int32, _ line: [UInt8], brokenLine: inout Bool, timeoutMs: Int32) throws(SinkError) {
        var offset = 0
        var prefix = brokenLine
        var waitedMs: Int64 = 0
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
            if e == EAGAIN || e == EWOULDBLOCK, waitedMs < Int64(timeoutMs) {
                let start = sundial_monotonic_ms()
                _ = sundial_wait_writable(fd, Int32(Int64(timeoutMs) - waitedMs))
                waitedMs += max(1, sundial_monotonic_ms() - start)
                continue
            }
            if offset > 0 { brokenLine = true }
            throw SinkError(code: e)
        }
        if offset > 0 { brokenLine = true }
        throw SinkError(code: EIO)
    }
}
