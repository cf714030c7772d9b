import Foundation
import SundialTesting
import Testing

@testable import SundialRuntime

/// The real watcher on temporary directories. Every wait has a deadline; negative checks
/// ("no notification") wait several debounce periods. A test's write returns once its event is
/// queued (`TempDirectory.write`), so no write made before a check is reported inside it.
@Suite(.offPool) struct ConfigWatcherTests {
    enum Kind: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case inotify, polling
        var options: ConfigWatcher.Options { self == .inotify ? .fast : .fastPolling }
        var testDescription: String { rawValue }
    }

    /// A started watcher on `tmp` (as a directory) with `a.yaml` in it.
    private func watched(_ kind: Kind, _ body: (TempDirectory, NotificationRecorder, ConfigWatcher) async throws -> Void) async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("conf/a.yaml", "version: 1\n")
        let recorder = NotificationRecorder()
        let watcher = try startWatcher([tmp.url("conf")], recorder: recorder, options: kind.options)
        defer { watcher.stop() }
        #expect(watcher.activeMode == (kind == .inotify ? .inotify : .polling))
        try await body(tmp, recorder, watcher)
        #expect(recorder.fallbacks.isEmpty)
    }

    // MARK: - The changes users make

    @Test(arguments: Kind.allCases) func inPlaceEdit(kind: Kind) async throws {
        try await watched(kind) { tmp, recorder, _ in
            try tmp.write("conf/a.yaml", "version: 1\njobs: {}\n")
            #expect(await recorder.waitForChanges(1))
            #expect(await recorder.staysQuiet(for: .milliseconds(300)))
            #expect(recorder.changes == 1)
        }
    }

    @Test(arguments: Kind.allCases) func atomicRename(kind: Kind) async throws {
        try await watched(kind) { tmp, recorder, _ in
            try tmp.writeAtomically("conf/a.yaml", "version: 1\njobs: {x: {}}\n")
            #expect(await recorder.waitForChanges(1))
            // The watch survives the replaced inode: a second edit is seen too.
            try tmp.write("conf/a.yaml", "version: 1\njobs: {y: {}}\n")
            #expect(await recorder.waitForChanges(2))
        }
    }

    @Test(arguments: Kind.allCases) func newFile(kind: Kind) async throws {
        try await watched(kind) { tmp, recorder, _ in
            try tmp.write("conf/b.yml", "version: 1\n")
            #expect(await recorder.waitForChanges(1))
        }
    }

    @Test(arguments: Kind.allCases) func deletedFile(kind: Kind) async throws {
        try await watched(kind) { tmp, recorder, _ in
            try tmp.delete("conf/a.yaml")
            #expect(await recorder.waitForChanges(1))
        }
    }

    @Test(arguments: Kind.allCases) func newSubdirectoryWithFiles(kind: Kind) async throws {
        try await watched(kind) { tmp, recorder, _ in
            try tmp.write("conf/team/b.yaml", "version: 1\n")
            try tmp.write("conf/team/deeper/c.yaml", "version: 1\n")
            #expect(await recorder.waitForChanges(1))
            // The new directories are watched now: editing inside them is seen.
            try tmp.write("conf/team/deeper/c.yaml", "version: 1\njobs: {}\n")
            #expect(await recorder.waitForChanges(2))
        }
    }

    @Test(arguments: Kind.allCases) func removedSubdirectory(kind: Kind) async throws {
        try await watched(kind) { tmp, recorder, _ in
            try tmp.write("conf/team/b.yaml", "version: 1\n")
            #expect(await recorder.waitForChanges(1))
            try tmp.delete("conf/team")
            #expect(await recorder.waitForChanges(2))
        }
    }

    @Test(arguments: Kind.allCases) func editorLeftoversAndHiddenFilesAreIgnored(kind: Kind) async throws {
        try await watched(kind) { tmp, recorder, _ in
            try tmp.write("conf/.a.yaml.swp", "x")
            try tmp.write("conf/a.yaml.swp", "x")
            try tmp.write("conf/a.yaml~", "x")
            try tmp.write("conf/#a.yaml#", "x")
            try tmp.write("conf/.hidden.yaml", "x")
            try tmp.write("conf/.git/config.yaml", "x")
            try tmp.write("conf/notes.txt", "x")
            try tmp.delete("conf/a.yaml~")
            #expect(await recorder.staysQuiet(for: .milliseconds(400)))
            #expect(recorder.changes == 0)
            // Positive control: the watcher was listening all along.
            try tmp.write("conf/a.yaml", "version: 1\njobs: {}\n")
            #expect(await recorder.waitForChanges(1))
        }
    }

    /// inotify dates an in-place write by the close of the file's last descriptor: while a
    /// copy is open (what a child forked during the write holds until its `close_range` or
    /// `exec`), nothing is reported, so a reload never reads a file still being written; the
    /// change is reported when that copy closes. Such a copy, from a test forking beside this
    /// suite, closed inside a quiet window in parallel runs: `TempDirectory.write` waits for it.
    @Test func aWriteIsReportedWhenItsLastDescriptorCloses() async throws {
        try await watched(.inotify) { tmp, recorder, _ in
            let path = tmp.url("conf/a.yaml")
            let fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
            try #require(fd >= 0)
            // The copy a child forked now would hold. `O_CLOEXEC` as every descriptor in this
            // process: a plain `dup` lost the flag, and an exit-test child spawned meanwhile kept
            // the copy (numbered below its pipes, so not in its `closefrom`) for its whole life.
            let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
            try #require(copy >= 0)
            let text = Array("version: 1\njobs: {}\n".utf8)
            #expect(Glibc.write(fd, text, text.count) == text.count)
            close(fd)
            #expect(TempDirectory.isOpenForWriting(path) == true)
            let held = #expect(throws: TempDirectory.StillOpenForWriting.self) {
                try TempDirectory.waitUntilClosedForWriting(path, within: .milliseconds(50))
            }
            // The timeout names the holder: this process, through the copy.
            #expect(held?.holders.contains("\(getpid()) (\(Self.ownComm)) fd \(copy)") == true, "\(String(describing: held))")
            #expect(await recorder.staysQuiet(for: .milliseconds(300)))
            close(copy)
            // A child that a neighbouring test forked meanwhile may hold a copy of its own.
            try TempDirectory.waitUntilClosedForWriting(path)
            #expect(await recorder.waitForChanges(1))
            #expect(await recorder.staysQuiet(for: .milliseconds(300)))
            #expect(recorder.changes == 1)
        }
    }

    /// This process's `comm`, as `/proc` gives it.
    private static var ownComm: String {
        ((try? String(contentsOfFile: "/proc/self/comm", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    // MARK: - Symbolic links

    /// A Kubernetes ConfigMap volume: `jobs.yaml -> ..data/jobs.yaml`, `..data -> ..<timestamp>`;
    /// an update writes a new timestamped directory and renames a new `..data` link over the old.
    @Test(arguments: Kind.allCases) func kubernetesDataSymlinkSwap(kind: Kind) async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("mount/..2024_01/jobs.yaml", "version: 1\n")
        try tmp.symlink("mount/..data", to: "..2024_01")
        try tmp.symlink("mount/jobs.yaml", to: "..data/jobs.yaml")
        let recorder = NotificationRecorder()
        let watcher = try startWatcher([tmp.url("mount")], recorder: recorder, options: kind.options)
        defer { watcher.stop() }

        try tmp.write("mount/..2024_02/jobs.yaml", "version: 1\njobs: {}\n")
        try tmp.swapSymlink("mount/..data", to: "..2024_02")
        // The swap alone is the change (kubelet deletes the old directory only afterwards).
        #expect(await recorder.waitForChanges(1))
        try tmp.delete("mount/..2024_01")
        #expect(ConfigFiles.list(paths: [tmp.url("mount")]).files == [tmp.url("mount/jobs.yaml")])

        // The new target is watched (re-resolved): a write to the real file is seen.
        try tmp.write("mount/..2024_02/jobs.yaml", "version: 1\njobs: {a: {}}\n")
        #expect(await recorder.waitForChanges(2))
    }

    /// A config path that is a link to a release directory, switched with `ln -sfn`.
    @Test(arguments: Kind.allCases) func symlinkedDirectorySwap(kind: Kind) async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("releases/v1/jobs.yaml", "version: 1\n")
        try tmp.write("releases/v2/jobs.yaml", "version: 1\njobs: {}\n")
        try tmp.symlink("current", to: "releases/v1")
        let recorder = NotificationRecorder()
        let watcher = try startWatcher([tmp.url("current")], recorder: recorder, options: kind.options)
        defer { watcher.stop() }

        try tmp.swapSymlink("current", to: "releases/v2")
        #expect(await recorder.waitForChanges(1))
        try tmp.write("releases/v2/jobs.yaml", "version: 1\njobs: {b: {}}\n")
        #expect(await recorder.waitForChanges(2))
        // The old release is no longer part of the set.
        try tmp.write("releases/v1/jobs.yaml", "version: 1\njobs: {old: {}}\n")
        #expect(await recorder.staysQuiet(for: .milliseconds(300)))
    }

    @Test(arguments: Kind.allCases) func linkedSubdirectoryInsideATree(kind: Kind) async throws {
        try await watched(kind) { tmp, recorder, _ in
            try tmp.write("shared/common.yaml", "version: 1\n")
            try tmp.symlink("conf/shared", to: "../shared")
            #expect(await recorder.waitForChanges(1))
            try tmp.write("shared/common.yaml", "version: 1\njobs: {}\n")
            #expect(await recorder.waitForChanges(2))
        }
    }

    // MARK: - Config paths that are files or missing

    @Test(arguments: Kind.allCases) func singleFileConfigPath(kind: Kind) async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("jobs.yaml", "version: 1\n")
        try tmp.write("other.yaml", "version: 1\n")
        let recorder = NotificationRecorder()
        let watcher = try startWatcher([tmp.url("jobs.yaml")], recorder: recorder, options: kind.options)
        defer { watcher.stop() }
        try tmp.write("other.yaml", "version: 1\njobs: {}\n")  // a sibling, not a config path
        #expect(await recorder.staysQuiet(for: .milliseconds(300)))
        try tmp.writeAtomically("jobs.yaml", "version: 1\njobs: {}\n")
        #expect(await recorder.waitForChanges(1))
    }

    @Test(arguments: Kind.allCases) func missingConfigPathThatAppears(kind: Kind) async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        let recorder = NotificationRecorder()
        let watcher = try startWatcher([tmp.url("later/jobs.d")], recorder: recorder, options: kind.options)
        defer { watcher.stop() }
        try tmp.write("later/jobs.d/a.yaml", "version: 1\n")
        #expect(await recorder.waitForChanges(1))
        try tmp.write("later/jobs.d/a.yaml", "version: 1\njobs: {}\n")
        #expect(await recorder.waitForChanges(2))
    }

    /// `mkdir -p later/jobs.d` racing the rescan that `later` caused: `jobs.d` appears after
    /// the watcher read the file system but before its watch on `later` was in place, so no
    /// event says so. The watcher must still end up watching `jobs.d` (it once did not, and a
    /// loaded CI machine lost the next write in `missingConfigPathThatAppears`).
    @Test func directoryCreatedWhileTheWatchesAreAddedIsWatched() async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        let recorder = NotificationRecorder()
        var options = ConfigWatcher.Options.fast
        let later = tmp.url("later")
        options.planHookForTesting = .init {
            // Only in the rescan `later` causes: create `jobs.d` between reading and watching.
            var st = stat()
            if stat(later, &st) == 0, stat(later + "/jobs.d", &st) != 0 { _ = Glibc.mkdir(later + "/jobs.d", 0o755) }
        }
        let watcher = try startWatcher([tmp.url("later/jobs.d")], recorder: recorder, options: options)
        defer { watcher.stop() }
        try tmp.mkdir("later")
        #expect(await recorder.waitForChanges(1))
        #expect(FileManager.default.fileExists(atPath: later + "/jobs.d"))
        try tmp.write("later/jobs.d/a.yaml", "version: 1\n")
        #expect(await recorder.waitForChanges(2))
    }

    /// A tree that keeps changing through every reading of a rescan (one more level made
    /// inside each reading's window, as an unpacking might): the rescan stops chasing after a
    /// few readings, and the watcher looks again from its timer until a reading holds still,
    /// so the deepest directory ends up watched all the same.
    @Test func treeStillChangingAfterTheRescansReadingsIsWatchedFromTheTimer() async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        let levels = ["a", "b", "c", "d", "e", "f", "jobs.d"]
        let root = tmp.path
        var options = ConfigWatcher.Options.fast
        options.planHookForTesting = .init {
            // Each reading: make the next missing level.
            var path = root
            var st = stat()
            for level in levels {
                path += "/" + level
                if stat(path, &st) != 0 {
                    _ = Glibc.mkdir(path, 0o755)
                    return
                }
            }
        }
        let recorder = NotificationRecorder()
        let deepest = tmp.url(levels.joined(separator: "/"))
        let watcher = try startWatcher([deepest], recorder: recorder, options: options)
        defer { watcher.stop() }
        // The first rescan (in `start()`) made only some of the levels; the timer's make the rest.
        let clock = ContinuousClock()
        let end = clock.now + .seconds(5)
        while !FileManager.default.fileExists(atPath: deepest), clock.now < end { try await Task.sleep(for: .milliseconds(5)) }
        #expect(FileManager.default.fileExists(atPath: deepest))
        var quiet = false
        for _ in 0..<10 where !quiet { quiet = await recorder.staysQuiet(for: .milliseconds(300)) }
        #expect(quiet)
        let before = recorder.changes
        try tmp.write(levels.joined(separator: "/") + "/a.yaml", "version: 1\n")
        #expect(await recorder.waitForChanges(before + 1))
    }

    // MARK: - Debounce and bursts

    /// 1,000 rewrites (a tool rewriting files in a loop) are one reload, or a few under load.
    @Test(arguments: Kind.allCases) func burstOfRewritesIsOneNotification(kind: Kind) async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("conf/a.yaml", "version: 1\n")
        let recorder = NotificationRecorder()
        var options = kind.options
        options.debounce = .milliseconds(250)
        let watcher = try startWatcher([tmp.url("conf")], recorder: recorder, options: options)
        defer { watcher.stop() }
        let clock = ContinuousClock()
        let burstStart = clock.now
        for i in 0..<1_000 {
            if i % 2 == 0 {
                try tmp.write("conf/a.yaml", "version: 1\n# \(i)\n")
            } else {
                try tmp.writeAtomically("conf/b.yaml", "version: 1\n# \(i)\n")
            }
        }
        let burst = clock.now - burstStart
        #expect(await recorder.waitForChanges(1))
        // Under load a poll may land mid-burst and see the tail as a second change (which must
        // be reported: the last content has to be loaded). Wait for quiet, bounded.
        var quiet = false
        for _ in 0..<10 where !quiet { quiet = await recorder.staysQuiet(for: .milliseconds(800)) }
        #expect(quiet)
        // A burst longer than `maxWait` is reported every `maxWait` while it lasts (so a file
        // rewritten forever still gets loaded), then once more at its end. A loaded machine can
        // stretch the 1,000 writes past 5 s: the bound follows the burst's real length.
        let maxWaitMs = options.maxWait.components.seconds * 1000 + options.maxWait.components.attoseconds / 1_000_000_000_000_000
        let burstMs = burst.components.seconds * 1000 + burst.components.attoseconds / 1_000_000_000_000_000
        let allowed = 3 + Int(burstMs / max(1, maxWaitMs))
        #expect((1...allowed).contains(recorder.changes), "\(recorder.changes) notifications for a burst of \(burstMs) ms")
    }

    // MARK: - Polling fallback

    @Test func fallsBackToPollingWhenTheWatchLimitIsReached() async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("conf/a.yaml", "version: 1\n")
        let recorder = NotificationRecorder()
        var options = ConfigWatcher.Options.fast
        options.watchLimitForTesting = 1
        let watcher = try startWatcher([tmp.url("conf")], recorder: recorder, options: options)
        defer { watcher.stop() }
        #expect(watcher.activeMode == .polling)
        try tmp.write("conf/a.yaml", "version: 1\njobs: {}\n")
        #expect(await recorder.waitForChanges(1))
        #expect(recorder.fallbacks.count == 1)
        #expect(recorder.fallbacks.first?.contains("max_user_watches") == true)
    }

    @Test func fallsBackWhenANewSubdirectoryExceedsTheLimit() async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("conf/a.yaml", "version: 1\n")
        let recorder = NotificationRecorder()
        var options = ConfigWatcher.Options.fast
        options.watchLimitForTesting = 2  // `tmp` (for the name `conf`) and `conf`
        let watcher = try startWatcher([tmp.url("conf")], recorder: recorder, options: options)
        defer { watcher.stop() }
        #expect(watcher.activeMode == .inotify)
        try tmp.write("conf/sub/b.yaml", "version: 1\n")
        #expect(await recorder.waitForChanges(1))
        #expect(watcher.activeMode == .polling)
        #expect(recorder.fallbacks.count == 1)
        try tmp.write("conf/sub/b.yaml", "version: 1\njobs: {}\n")
        #expect(await recorder.waitForChanges(2))
    }

    /// Polling sees a rewrite that keeps the size and the mtime, through the content hash.
    @Test func pollingSeesSameSizeSameMtimeRewrite() async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("conf/a.yaml", "version: 1\n# aaaa\n")
        let path = tmp.url("conf/a.yaml")
        let before = try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as! Date
        let recorder = NotificationRecorder()
        let watcher = try startWatcher([tmp.url("conf")], recorder: recorder, options: .fastPolling)
        defer { watcher.stop() }
        try tmp.write("conf/a.yaml", "version: 1\n# bbbb\n")
        try FileManager.default.setAttributes([.modificationDate: before], ofItemAtPath: path)
        #expect(await recorder.waitForChanges(1))
    }

    // MARK: - Lifecycle

    @Test func noNotificationAfterStop() async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("conf/a.yaml", "version: 1\n")
        let recorder = NotificationRecorder()
        let watcher = try startWatcher([tmp.url("conf")], recorder: recorder, options: .fast)
        watcher.stop()
        watcher.stop()  // idempotent
        #expect(watcher.activeMode == .stopped)
        try tmp.write("conf/a.yaml", "version: 1\njobs: {}\n")
        #expect(await recorder.staysQuiet(for: .milliseconds(300)))
    }

    @Test func stopFromTheHandler() async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("conf/a.yaml", "version: 1\n")
        let recorder = NotificationRecorder()
        let box = WatcherBox()
        let watcher = ConfigWatcher(paths: [tmp.url("conf")], options: .fast) { notification in
            recorder.record(notification)
            box.watcher?.stop()
        }
        box.watcher = watcher
        try watcher.start()
        try tmp.write("conf/a.yaml", "version: 1\njobs: {}\n")
        #expect(await recorder.waitForChanges(1))
        try tmp.write("conf/a.yaml", "version: 1\njobs: {x: {}}\n")
        #expect(await recorder.staysQuiet(for: .milliseconds(300)))
        box.watcher = nil
    }

    @Test func restartAfterStop() async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("conf/a.yaml", "version: 1\n")
        let recorder = NotificationRecorder()
        let watcher = try startWatcher([tmp.url("conf")], recorder: recorder, options: .fast)
        defer { watcher.stop() }
        watcher.stop()
        try watcher.start()
        try tmp.write("conf/a.yaml", "version: 1\njobs: {}\n")
        #expect(await recorder.waitForChanges(1))
    }
}

/// Lets a handler reach the watcher it belongs to (test only).
final class WatcherBox: @unchecked Sendable {
    // @unchecked: set before `start()` and cleared after the last wait; never raced.
    var watcher: ConfigWatcher?
}

/// The `AsyncStream` form the agent uses.
@Suite(.offPool) struct ConfigWatcherStreamTests {
    @Test func changesArriveOnTheStreamAndStopFinishesIt() async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("conf/a.yaml", "version: 1\n")
        let (watcher, notifications) = try ConfigWatcher.stream(paths: [tmp.url("conf")], options: .fast)
        try tmp.write("conf/a.yaml", "version: 1\njobs: {}\n")
        let first = await withTaskGroup(of: WatchNotification?.self) { group in
            group.addTask { await notifications.first { _ in true } }
            group.addTask {
                try? await Task.sleep(for: .seconds(5))
                return nil
            }
            let result = await group.next() ?? nil
            group.cancelAll()
            return result
        }
        #expect(first == .changed)
        watcher.stop()
        // Finished: iteration ends instead of waiting forever.
        var rest: [WatchNotification] = []
        for await n in notifications { rest.append(n) }
        #expect(rest.isEmpty)
    }
}
