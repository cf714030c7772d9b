#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One cgroup v2 directory and what the runner does with it: signal or kill every process in
/// it, tell whether any is left, remove it. Static functions over a path so that code holding
/// only a recorded path (a restarted agent adopting a run) can use them too.
///
/// Every read is bounded: control files are read in fixed chunks and parsed as they come.
public enum Cgroup {
    /// Kills every process in the cgroup, descendants that left the process group or the
    /// session included. `cgroup.kill` (Linux 5.14+) does it atomically in the kernel, even
    /// against a fork bomb; without it, `cgroup.procs` is read and each pid gets SIGKILL, in up
    /// to `rounds` passes while processes remain (a process forking meanwhile can need more: the
    /// runner tries again until the cgroup is empty, see ``RunnerEngine``).
    /// Returns true when the kill was issued (the processes die shortly after, asynchronously).
    @discardableResult
    public static func kill(_ path: String, rounds: Int = 4) -> Bool {
        if writeFile(path + "/cgroup.kill", "1") == 0 { return true }
        for _ in 0..<max(1, rounds) {
            if signalAll(path, SIGKILL) == 0 { break }
        }
        return false
    }

    /// Sends `signal` to every process listed in `cgroup.procs`, except those of process group
    /// `sparing` (already signalled as a group: a second SIGTERM reads as "exit now, skip the
    /// clean-up" to many programs, and a shell's trap would run twice); returns how many were
    /// signalled (-1 when the file cannot be read). Between the read and the signal a pid can
    /// exit and, rarely, be reused — the reason ``kill(_:rounds:)`` prefers `cgroup.kill`.
    @discardableResult
    public static func signalAll(_ path: String, _ signal: Int32, sparing group: Int32? = nil) -> Int {
        var count = 0
        let ok = forEachLine(path + "/cgroup.procs") { line in
            if let pid = Int32(line), pid > 0, group == nil || getpgid(pid) != group {
                sendSignal(pid, signal)
                count += 1
            }
        }
        return ok ? count : -1
    }

    /// `populated` of `cgroup.events`: whether a live process is in the cgroup or below it
    /// (zombies do not count). `nil` when the file cannot be read (gone, not a cgroup).
    public static func isPopulated(_ path: String) -> Bool? {
        var populated: Bool?
        _ = forEachLine(path + "/cgroup.events") { line in
            if line.hasPrefix("populated ") { populated = line.hasSuffix(" 1") }
        }
        return populated
    }

    /// Removes the (empty) cgroup and any cgroups a job made below it (a job may manage
    /// cgroups itself: a container tool, or a Sundial agent run as a job), deepest first, at
    /// most `maxDepth` levels: 0, or the errno (EBUSY while processes remain; ENOENT when
    /// already gone).
    public static func remove(_ path: String, maxDepth: Int = 16) -> Int32 {
        if rmdir(path) == 0 { return 0 }
        let e = errno
        guard e == EBUSY || e == ENOTEMPTY, maxDepth > 0, let dir = opendir(path) else { return e }
        var children: [String] = []
        while let entry = readdir(dir), children.count < 10_000 {
            guard entry.pointee.d_type == UInt8(DT_DIR) else { continue }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != ".", name != ".." { children.append(name) }
        }
        closedir(dir)
        guard !children.isEmpty else { return e }
        for child in children { _ = remove(path + "/" + child, maxDepth: maxDepth - 1) }
        return rmdir(path) == 0 ? 0 : errno
    }

    // MARK: - Control files

    /// Writes `text` to an existing control file with one `write(2)` (how cgroupfs takes a
    /// value). Never creates a file. Returns 0 or the errno.
    static func writeFile(_ path: String, _ text: String) -> Int32 {
        let fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        var bytes = Array(text.utf8)
        let n = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress, $0.count) }
        if n == bytes.count { return 0 }
        return n < 0 ? errno : EIO
    }

    /// Calls `body` with each line of the file (at most 4 KiB a line; longer ones are skipped),
    /// reading 4 KiB at a time and at most `maxBytes` in all. False when it cannot be opened.
    static func forEachLine(_ path: String, maxBytes: Int = 16 << 20, _ body: (String) -> Void) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var chunk = [UInt8](repeating: 0, count: 4096)
        var line: [UInt8] = []
        var skipping = false
        var total = 0
        while total < maxBytes {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 { break }
            total += n
            for byte in chunk[0..<n] {
                if byte == UInt8(ascii: "\n") {
                    if !skipping { body(String(decoding: line, as: UTF8.self)) }
                    line.removeAll(keepingCapacity: true)
                    skipping = false
                } else if line.count < 4096 {
                    line.append(byte)
                } else {
                    skipping = true
                }
            }
        }
        if !line.isEmpty, !skipping { body(String(decoding: line, as: UTF8.self)) }
        return true
    }

    /// The whole of a small file (`cgroup.controllers`, `/proc/self/cgroup`), at most `maxBytes`.
    static func readFile(_ path: String, maxBytes: Int = 4 << 20) -> String? {
        var lines: [String] = []
        guard forEachLine(path, maxBytes: maxBytes, { lines.append($0) }) else { return nil }
        return lines.joined(separator: "\n")
    }
}

/// Outside ``Cgroup``, whose own `kill` would shadow the system call.
private func sendSignal(_ pid: Int32, _ signal: Int32) { _ = kill(pid, signal) }
