import Glibc

/// Replaces a file's content atomically: readers see the old file or the new one, never a
/// half-written one, even across a power cut.
///
/// The sequence node_exporter's textfile collector documents: write a temporary file in the
/// same directory (so `rename(2)` stays on one file system), `fsync` it, `rename` it over the
/// target, then `fsync` the directory so the rename itself is durable. The temporary name does
/// not end in `.prom`, so the collector never reads it.
///
/// Nothing found at either path can block the writer (a probe planted a FIFO at the old,
/// predictable temporary name and hung the metrics thread and shutdown in `open`):
/// - The temporary file gets an unpredictable name and is created with
///   `O_CREAT|O_EXCL|O_NOFOLLOW|O_NONBLOCK`, so it is always a fresh regular file of ours;
///   anything already there is an error, never opened.
/// - Only a regular file is replaced. A device, FIFO, socket or directory at the path is
///   refused (`--metrics-file /dev/null` must not rename a file over the system's /dev/null).
/// - A symlink is written through: its target is replaced, the link stays (node_exporter reads
///   through it). The link must belong to root or to the agent's user, so a link someone else
///   planted cannot point the agent's writes at a file of its choosing, and its target must
///   exist and be a regular file.
public enum AtomicFileWriter {
    public struct WriteError: Error, Hashable, Sendable, CustomStringConvertible {
        public var path: String
        public var step: String
        /// The failed call's `errno`, or 0 when the step text says it all.
        public var errno: Int32
        public var description: String {
            "cannot write \(path): \(step)" + (errno == 0 ? "" : ": \(String(cString: strerror(errno)))")
        }
    }

    /// Names tried for the temporary file before giving up (each is random: a clash means
    /// someone is creating files there on purpose).
    static let tempAttempts = 4

    /// Writes `bytes` to `path` (mode `mode`, subject to the umask).
    /// - Throws: `WriteError` naming the failed step; the temporary file is removed then and
    ///   the previous content of `path` is left as it was.
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws(WriteError) {
        try write(bytes, to: path, mode: mode, tempSuffix: { randomSuffix() })
    }

    /// `tempSuffix` names each temporary file attempt (tests pass a fixed one).
    static func write(_ bytes: [UInt8], to path: String, mode: mode_t, tempSuffix: () -> String) throws(WriteError) {
        let target = try resolve(path)
        let slash = target.lastIndex(of: "/")
        let dir = slash.map { $0 == target.startIndex ? "/" : String(target[..<$0]) } ?? "."
        let base = slash.map { String(target[target.index(after: $0)...]) } ?? target

        var temp = ""
        var fd: Int32 = -1
        for _ in 0..<tempAttempts {
            temp = (dir == "/" ? "" : dir) + "/." + base + ".tmp." + tempSuffix()
            fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, mode)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else { throw WriteError(path: path, step: "create \(temp)", errno: errno) }
        var ok = false
        defer { if !ok { unlink(temp) } }
        do {
            defer { close(fd) }
            // O_EXCL made it ours and new; checked anyway, as the fsync below assumes a file.
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw WriteError(path: path, step: "stat \(temp)", errno: errno) }
            guard st.st_mode & S_IFMT == S_IFREG else {
                throw WriteError(path: path, step: "\(temp) is not a regular file", errno: 0)
            }
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
        guard rename(temp, target) == 0 else { throw WriteError(path: path, step: "rename", errno: errno) }
        ok = true
        // Durability of the rename; a failure here does not undo the (already visible) write.
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }

    /// The path to replace: `path` itself when absent or a regular file, a symlink's target
    /// (see the type's notes); anything else is refused.
    static func resolve(_ path: String) throws(WriteError) -> String {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return path }
            throw WriteError(path: path, step: "stat", errno: errno)
        }
        var target = path
        if st.st_mode & S_IFMT == S_IFLNK {
            guard st.st_uid == 0 || st.st_uid == geteuid() else {
                throw WriteError(
                    path: path,
                    step: "it is a symlink owned by uid \(st.st_uid), neither root nor this agent's user; "
                        + "point the option at the real file, or have root or this user own the link",
                    errno: 0)
            }
            guard let resolved = realpath(path, nil) else {
                let e = errno
                throw WriteError(
                    path: path, step: "cannot resolve the symlink (its target must exist: create it, or point the option at the real file)",
                    errno: e)
            }
            target = String(cString: resolved)
            free(resolved)
            // One hop only, to a path with no other link in it: the owner check above covers
            // this link alone, and a second link (or a linked directory) on the way could be
            // someone else's, turning root's write into a rename over any file.
            guard let direct = directTarget(ofLink: path), direct == target else {
                throw WriteError(
                    path: path,
                    step: "the symlink's target goes through another symlink (it resolves to \(target)); "
                        + "point the link, or the option, straight at the real file",
                    errno: 0)
            }
            guard stat(target, &st) == 0 else { throw WriteError(path: path, step: "stat \(target)", errno: errno) }
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw WriteError(
                path: path,
                step: "\(target == path ? "it" : target) is not a regular file (a device, FIFO, socket or directory is never replaced); "
                    + "point the option at a regular file",
                errno: 0)
        }
        return target
    }

    /// The absolute path the link at `link` names, read lexically (`.` and `..` folded, no
    /// further link followed), from the link's own directory as resolved; `nil` if unreadable.
    static func directTarget(ofLink link: String) -> String? {
        var buf = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = buf.withUnsafeMutableBufferPointer { b in
            b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) { readlink(link, $0, b.count - 1) }
        }
        guard n > 0 else { return nil }
        let raw = String(decoding: buf[..<n], as: UTF8.self)
        var base: [Substring] = []
        if !raw.hasPrefix("/") {
            let slash = link.lastIndex(of: "/")
            let dir = slash.map { link[..<$0].isEmpty ? "/" : String(link[..<$0]) } ?? "."
            guard let real = realpath(dir, nil) else { return nil }
            base = String(cString: real).split(separator: "/")
            free(real)
        }
        for part in raw.split(separator: "/") {
            switch part {
            case ".": continue
            case "..": _ = base.popLast()
            default: base.append(part)
            }
        }
        return "/" + base.joined(separator: "/")
    }

    /// 16 random hex digits: the temporary name cannot be guessed and planted in advance.
    static func randomSuffix() -> String {
        let n = UInt64.random(in: .min ... .max)
        let hex = String(n, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
