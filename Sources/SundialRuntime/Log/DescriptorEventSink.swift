import CSundialShim

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Writes lines to an open descriptor, standard output by default (`--log -`).
///
/// A pipe or socket (journald, `| tee`) can block when its reader stalls; such a descriptor is
/// switched to non-blocking (a pipe also grown to ``LineWriter/pipeCapacity``) and a line that
/// does not fit now is dropped at once, counted, and reported by the next `log.dropped` once the
/// reader drains: a stuck reader never stops the scheduler. No wait at all, not even one per
/// stall: a reader that drains a little at a time would start a new stall, and a new wait on
/// the scheduler's loop, each time. Terminals and files are left as they are (the descriptor's
/// flags are shared with whoever else holds it, a shell's terminal for one).
public final class DescriptorEventSink: EventSink {
    public let fd: Int32
    /// Whether the last line was cut. Held (as a writer) across the write, which keeps lines
    /// longer than `PIPE_BUF` whole on a pipe; the write never waits, so neither does the lock
    /// for long.
    private let brokenLine = ReadMostly(false)

    public init(fd: Int32 = 1) {
        self.fd = fd
        sundial_ignore_sigpipe()
        if sundial_fd_is_stream(fd) == 1 {
            _ = sundial_set_nonblocking(fd, 1)
            _ = sundial_grow_pipe(fd, LineWriter.pipeCapacity)
        }
    }

    public func write(_ line: [UInt8]) throws(SinkError) {
        try brokenLine.write { (broken: inout Bool) throws(SinkError) in
            try LineWriter.write(fd: fd, line, brokenLine: &broken)
        }
    }
}
