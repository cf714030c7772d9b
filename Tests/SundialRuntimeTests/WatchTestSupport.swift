import CSundialShim
import Foundation
import SundialTesting
import Synchronization

@testable import SundialRuntime

/// Collects a watcher's notifications so a test can await them with a deadline.
final class NotificationRecorder: Sendable {
    private let received = Mutex<[WatchNotification]>([])

    func record(_ notification: WatchNotification) { received.withLock { $0.append(notification) } }

    var all: [WatchNotification] { received.withLock { $0 } }
    var changes: Int { all.filter { $0 == .changed }.count }
    var fallbacks: [String] {
        all.compactMap { if case .pollingFallback(let reason) = $0 { reason } else { nil } }
    }

    /// Waits until at least `count` `.changed` notifications arrived, or `deadline` passed.
    /// Returns whether they arrived. Checks every few milliseconds; the deadline only bounds a
    /// failing test, a passing one returns as soon as the notification is there.
    func waitForChanges(_ count: Int, within deadline: Duration = .seconds(5)) async -> Bool {
        let clock = ContinuousClock()
        let end = clock.now + deadline
        while clock.now < end {
            if changes >= count { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return changes >= count
    }

    /// Returns true when no further `.changed` arrives within `period` (a negative check:
    /// `period` should be several debounce periods).
    func staysQuiet(for period: Duration) async -> Bool {
        let before = changes
        return await !waitForChanges(before + 1, within: period)
    }
}

/// A fresh temporary directory, removed by `remove()`.
struct TempDirectory {
    let path: String

    init() throws {
        let base = FileManager.default.temporaryDirectory.path
        path = base + "/sundial-watch-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }

    func url(_ relative: String) -> String { path + "/" + relative }

    /// Writes in place (truncate and write), as an editor without backup does. Returns once
    /// the write's inotify event is queued (``waitUntilClosedForWriting(_:within:)``).
    func write(_ relative: String, _ text: String) throws {
        let full = url(relative)
        try FileManager.default.createDirectory(
            atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Self.writeFile(full, text)
        try Self.waitUntilClosedForWriting(full)
    }

    /// Writes a hidden temporary file and renames it into place (Ansible, Salt, `git`). The
    /// temporary is closed everywhere before the rename: a copy of its descriptor closed later
    /// would be reported under the new name.
    func writeAtomically(_ relative: String, _ text: String) throws {
        let full = url(relative)
        let directory = (full as NSString).deletingLastPathComponent
        let temporary = directory + "/.tmp-" + UUID().uuidString
        try Self.writeFile(temporary, text)
        try Self.waitUntilClosedForWriting(temporary)
        guard rename(temporary, full) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    /// Creates or truncates `path` and writes `text`, through an `O_CLOEXEC` descriptor
    /// (``TestFile`` says why not Foundation's writers).
    static func writeFile(_ path: String, _ text: String) throws { try TestFile.write(text, to: path) }

    /// Waits until no descriptor anywhere has the regular file `path` open for writing, so
    /// that its `IN_CLOSE_WRITE` has been queued: a test's write must not be reported later,
    /// inside a quiet window or after a watcher started.
    ///
    /// Why: inotify reports a write when the *last* descriptor of the open file closes, not
    /// when this process's `close` returns. A test beside this one that forks (the process
    /// runner's fork path, `posix_spawn`) copies every descriptor into its child, which drops
    /// them only at its `close_range` or `exec` (`O_CLOEXEC` shortens that, it does not close
    /// the window): on a loaded machine tens or hundreds of milliseconds later. In parallel
    /// runs such a copy of Foundation's descriptor, closed after the watcher started, was a
    /// "change" within a quiet window (`editorLeftoversAndHiddenFilesAreIgnored`,
    /// `singleFileConfigPath`).
    ///
    /// How: a read lease (`F_SETLEASE`, `F_RDLCK`) is granted only while the file is open for
    /// writing nowhere, and the kernel queues the close event before it drops the file's
    /// write count. On a file system without leases there is nothing to wait on: returns.
    /// - Throws: ``StillOpenForWriting``, naming the processes that hold the file, when a
    ///   writer still holds it after `deadline`.
    static func waitUntilClosedForWriting(_ path: String, within deadline: Duration = .seconds(5)) throws {
        let clock = ContinuousClock()
        let end = clock.now + deadline
        while true {
            switch isOpenForWriting(path) {
            case false?, nil: return
            case true?:
                guard clock.now < end else { throw StillOpenForWriting(path: path, holders: writers(of: path)) }
                var pause = timespec(tv_sec: 0, tv_nsec: 1_000_000)
                nanosleep(&pause, nil)
            }
        }
    }

    /// Whether some descriptor (in any process) has `path` open for writing; nil when the
    /// file system does not say (no leases) or `path` is not a regular file.
    static func isOpenForWriting(_ path: String) -> Bool? {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return nil }
        if fcntl(fd, fSetLease, F_RDLCK) == 0 {
            _ = fcntl(fd, fSetLease, F_UNLCK)
            return false
        }
        return errno == EAGAIN ? true : nil
    }

    /// A file still open for writing at a wait's deadline, with who holds it: a test that
    /// times out here says which process kept the descriptor, not just that one did.
    struct StillOpenForWriting: Error, CustomStringConvertible {
        let path: String
        /// "pid (comm) fd N", one per descriptor open for writing, from `/proc`.
        let holders: [String]
        var description: String {
            "\(path) is still open for writing: "
                + (holders.isEmpty ? "no holder visible in /proc" : holders.joined(separator: ", "))
        }
    }

    /// The descriptors, in every process this one may inspect, that have `path` open for
    /// writing: `/proc/PID/fd/N` links to it and `/proc/PID/fdinfo/N` has an access mode
    /// other than `O_RDONLY`. Best effort: processes that end or deny access are skipped.
    static func writers(of path: String) -> [String] {
        // The links name the resolved path.
        var target = path
        if let resolved = realpath(path, nil) {
            target = String(cString: resolved)
            free(resolved)
        }
        var found: [String] = []
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.filter { Int32($0) != nil } ?? []
        for pid in pids {
            guard let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { continue }
            for fd in fds {
                guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"),
                    link == target,
                    let info = try? String(contentsOfFile: "/proc/\(pid)/fdinfo/\(fd)", encoding: .utf8),
                    let flagsLine = info.split(separator: "\n").first(where: { $0.hasPrefix("flags:") }),
                    let flags = Int32(flagsLine.dropFirst("flags:".count).trimmingCharacters(in: .whitespaces), radix: 8),
                    flags & O_ACCMODE != O_RDONLY
                else { continue }
                let comm =
                    (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
                found.append("\(pid) (\(comm)) fd \(fd)")
            }
        }
        return found
    }

    /// `F_SETLEASE` (`F_LINUX_SPECIFIC_BASE`, 1024), which Glibc exports only with _GNU_SOURCE.
    private static let fSetLease: Int32 = 1024

    func mkdir(_ relative: String) throws {
        try FileManager.default.createDirectory(atPath: url(relative), withIntermediateDirectories: true)
    }

    func symlink(_ relative: String, to target: String) throws {
        try FileManager.default.createSymbolicLink(atPath: url(relative), withDestinationPath: target)
    }

    /// Points the link `relative` at `target` atomically: a new link renamed over the old one,
    /// as `ln -sfn` with `mv -T`, or Kubernetes' `..data` swap.
    func swapSymlink(_ relative: String, to target: String) throws {
        let temporary = url(relative) + "_tmp"
        try FileManager.default.createSymbolicLink(atPath: temporary, withDestinationPath: target)
        guard rename(temporary, url(relative)) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    func delete(_ relative: String) throws { try FileManager.default.removeItem(atPath: url(relative)) }
}

/// Starts a watcher on `paths` that records into `recorder`.
func startWatcher(
    _ paths: [String], recorder: NotificationRecorder, options: ConfigWatcher.Options
) throws -> ConfigWatcher {
    let watcher = ConfigWatcher(paths: paths, options: options) { recorder.record($0) }
    try watcher.start()
    return watcher
}

extension ConfigWatcher.Options {
    /// Short periods so the tests take milliseconds, not seconds.
    static let fast = ConfigWatcher.Options(debounce: .milliseconds(50), pollInterval: .milliseconds(50))
    static let fastPolling = ConfigWatcher.Options(debounce: .milliseconds(50), pollInterval: .milliseconds(30), mode: .poll)
}
