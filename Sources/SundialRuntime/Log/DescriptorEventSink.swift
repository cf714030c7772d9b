import CSundialShim

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Writes lines to an open descriptor, standard output by default (`--log -`).
///
/// A pipe or socket (journald, `| tee`) can block when its reader stalls; such a descriptor is
/// switched to non-blocking and a write waits at most `writeTimeoutMs` before the line counts as
/// dropped, so a stuck reader never stops the scheduler. Terminals and files are left as they are.
public final class DescriptorEventSink: EventSink {
    public let fd: Int32
    public let writeTimeoutMs: Int32
    /// Whether the last line was cut. Held (as a writer: it sleeps, never spins) across the
    /// write, which also keeps lines longer than `PIPE_BUF` whole on a pipe.
    private let brokenLine = ReadMostly(false)

    public init(fd: Int32 = 1, writeTimeoutMs: Int32 = 250) {
        self.fd = fd
        self.writeTimeoutMs = writeTimeoutMs
        sundial_ignore_sigpipe()
        if sundial_fd_is_stream(fd) == 1 { _ = sundial_set_nonblocking(fd, 1) }
    }

    public func write(_ line: [UInt8]) throws(SinkError) {
        try brokenLine.write { (broken: inout Bool) throws(SinkError) in
            try LineWriter.write(fd: fd, line, brokenLine: &broken, timeoutMs: writeTimeoutMs)
        }
    }
}
