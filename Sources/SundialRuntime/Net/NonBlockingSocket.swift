import CSundialShim

#if canImport(Glibc)
import Glibc
#endif

/// The non-blocking socket calls of the event-loop servers (control socket, metrics endpoint).
/// Every call returns at once: a server thread serves all its connections, so no call may wait
/// on one peer.
enum NonBlockingSocket {
    /// How many connections one loop turn accepts at most, so a burst of connects cannot keep
    /// the loop from reading the connections it already holds (see ``ConnectionTable``).
    static let acceptBatch = 16

    /// How long the listening socket is left unpolled after accept failed for lack of file
    /// descriptors: the pending connection keeps it readable, and polling it would spin.
    static let acceptBackoffMillis: Int64 = 100

    /// The bytes read from each ready connection per loop turn: one fast sender cannot starve
    /// the others, and the loop's scratch buffer has this size.
    static let readChunk = 4096

    enum AcceptResult {
        case connection(Int32)
        /// Nothing more is waiting (or a transient error such as ECONNABORTED).
        case none
        /// Out of file descriptors: back off (``acceptBackoffMillis``).
        case exhausted
    }

    /// One pending connection, non-blocking and close-on-exec from birth.
    static func accept(_ listenFD: Int32) -> AcceptResult {
        while true {
            let fd = sundial_accept_nonblocking(listenFD)
            if fd >= 0 { return .connection(fd) }
            switch errno {
            case EINTR: continue
            case EMFILE, ENFILE, ENOBUFS, ENOMEM: return .exhausted
            default: return .none
            }
        }
    }

    enum ReadResult: Equatable {
        /// This many bytes were appended.
        case read(Int)
        /// Nothing to read now.
        case wouldBlock
        /// End of stream or an error: the connection is over.
        case closed
    }

    /// Reads at most ``readChunk`` bytes (fewer if `limit` says so) and appends them to `buffer`.
    static func read(_ fd: Int32, appendingTo buffer: inout [UInt8], scratch: inout [UInt8], limit: Int = readChunk) -> ReadResult {
        let want = min(max(1, limit), scratch.count)
        while true {
            let n = scratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress, want, 0) }
            if n > 0 {
                buffer.append(contentsOf: scratch[0..<n])
                return .read(n)
            }
            if n == 0 { return .closed }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: return .closed
            }
        }
    }

    /// Writes as much of `bytes[offset...]` as the socket takes now, never raising SIGPIPE.
    /// Returns the new offset, or nil when the peer is gone.
    static func write(_ fd: Int32, _ bytes: [UInt8], from offset: Int) -> Int? {
        var offset = offset
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if n > 0 {
                offset += n
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return offset }
            return nil
        }
        return offset
    }

    /// A parting message (refusal, eviction) written only if the socket takes it at once; the
    /// connection is closed either way.
    static func sayAndClose(_ fd: Int32, _ bytes: [UInt8]) {
        _ = write(fd, bytes, from: 0)
        close(fd)
    }

    /// The `poll` timeout until `deadline` (monotonic ms): -1 (sleep until an event) when there
    /// is none, so an idle server never wakes up on its own.
    static func pollTimeout(until deadline: Int64?, now: Int64) -> Int32 {
        guard let deadline else { return -1 }
        return Int32(clamping: max(0, deadline - now))
    }
}
