#if canImport(Glibc)
import Glibc
#endif

/// Writing test files through `O_CLOEXEC` descriptors.
///
/// Why not Foundation's `String.write(toFile:)`: it opens without `O_CLOEXEC` (atomically or
/// not), and the child swift-testing spawns for an exit test inherits every such descriptor
/// numbered below its own pipes (it closes only from its highest pipe up) and keeps it for its
/// whole life, seconds under load. A script still open for writing there fails to execute
/// (`ETXTBSY`); a watched file's `IN_CLOSE_WRITE` comes seconds late.
public enum TestFile {
    public struct WriteError: Error, CustomStringConvertible {
        public let path: String
        public let errno: Int32
        public var description: String { "writing \(path): \(String(cString: strerror(errno)))" }
    }

    /// Creates or truncates `path` with `mode` (applied even when the file existed) and
    /// writes `bytes` in full.
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw WriteError(path: path, errno: errno) }
        defer { close(fd) }
        guard fchmod(fd, mode) == 0 else { throw WriteError(path: path, errno: errno) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw WriteError(path: path, errno: n < 0 ? errno : EIO) }
            done += n
        }
    }

    public static func write(_ text: String, to path: String, mode: mode_t = 0o644) throws {
        try write(Array(text.utf8), to: path, mode: mode)
    }
}
