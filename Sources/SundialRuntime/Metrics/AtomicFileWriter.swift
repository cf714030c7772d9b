import Glibc

/// Replaces a file's content atomically: readers see the old file or the new one, never a
/// half-written one, even across a power cut.
///
/// The sequence node_exporter's textfile collector documents: write a temporary file in the
/// same directory (so `rename(2)` stays on one file system), `fsync` it, `rename` it over the
/// target, then `fsync` the directory so the rename itself is durable. The temporary name does
/// not end in `.prom`, so the collector never reads it.
public enum AtomicFileWriter {
    public struct WriteError: Error, Hashable, Sendable, CustomStringConvertible {
        public var path: String
        public var step: String
        public var errno: Int32
        public var description: String { "cannot write \(path): \(step): \(String(cString: strerror(errno)))" }
    }

    /// Writes `bytes` to `path` (mode `mode`, subject to the umask).
    /// - Throws: `WriteError` naming the failed step; the temporary file is removed then and
    ///   the previous content of `path` is left as it was.
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws(WriteError) {
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let temp = (dir == "/" ? "" : dir) + "/." + base + ".tmp." + String(getpid())

        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw WriteError(path: path, step: "create \(temp)", errno: errno) }
        var ok = false
        defer { if !ok { unlink(temp) } }
        do {
            defer { close(fd) }
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw WriteError(path: path, step: "write", errno: errno)
                }
                offset += n
            }
            guard fsync(fd) == 0 else { throw WriteError(path: path, step: "fsync", errno: errno) }
        }
        guard rename(temp, path) == 0 else { throw WriteError(path: path, step: "rename", errno: errno) }
        ok = true
        // Durability of the rename; a failure here does not undo the (already visible) write.
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }
}
