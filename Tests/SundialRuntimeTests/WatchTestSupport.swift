import Foundation
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

    /// Writes in place (truncate and write), as an editor without backup does.
    func write(_ relative: String, _ text: String) throws {
        let full = url(relative)
        try FileManager.default.createDirectory(
            atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: full, atomically: false, encoding: .utf8)
    }

    /// Writes a hidden temporary file and renames it into place (Ansible, Salt, `git`).
    func writeAtomically(_ relative: String, _ text: String) throws {
        let full = url(relative)
        let directory = (full as NSString).deletingLastPathComponent
        let temporary = directory + "/.tmp-" + UUID().uuidString
        try text.write(toFile: temporary, atomically: false, encoding: .utf8)
        guard rename(temporary, full) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

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
