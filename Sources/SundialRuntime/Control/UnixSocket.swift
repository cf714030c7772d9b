import CSundialShim  // `timeval`'s initializer (see PathProbe.swift)

#if canImport(Glibc)
import Glibc
import SundialCore
#endif

/// The few Unix-domain socket calls the control server and client share.
enum UnixSocket {
    struct Failure: Error, CustomStringConvertible {
        var call: String
        var errnoValue: Int32
        var description: String { "\(call): \(String(cString: strerror(errnoValue)))" }
    }

    /// `sun_path` holds 108 bytes including the terminating NUL.
    static let maxPathBytes = 107

    /// A new stream socket (close-on-exec; non-blocking for the server's event loop).
    static func make(nonBlocking: Bool = false) throws(Failure) -> Int32 {
        let flags = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | (nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0)
        let fd = socket(AF_UNIX, flags, 0)
        guard fd >= 0 else { throw Failure(call: "socket", errnoValue: errno) }
        return fd
    }

    /// Calls `body` with a `sockaddr_un` for `path`.
    static func withAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) throws(Failure) -> T {
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count <= maxPathBytes else {
            throw Failure(call: "socket path too long (at most \(maxPathBytes) bytes)", errnoValue: ENAMETOOLONG)
        }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    /// Bounds every `read`/`write` (and, for Unix sockets, `connect`) on `fd`.
    static func setTimeouts(_ fd: Int32, _ d: Duration) {
        let ms = max(1, d.milliseconds)
        var tv = timeval(tv_sec: Int(ms / 1000), tv_usec: Int((ms % 1000) * 1000))
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Writes all of `bytes` (never raising SIGPIPE); false when the peer went away or timed out.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += n
        }
        return true
    }
}
