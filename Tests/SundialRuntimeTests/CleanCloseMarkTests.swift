import CSundialShim
import Foundation
import SundialCore
import SundialTesting
import Testing

@testable import SundialRuntime

/// `PRAGMA quick_check` reads the whole database at open; it is skipped only when the file is
/// exactly as this store's last clean close left it, and runs after a crash, after any change
/// to the file by something else, and whenever the mark is missing or unreadable.
@Suite("SQLiteStateStore check on open", .offPool)
struct CleanCloseMarkTests {
    /// A database with some history, closed cleanly.
    func closedStore(_ dir: TempDir) throws -> String {
        let path = dir.path + "/state.db"
        let store = try SQLiteStateStore(path: path)
        #expect(store.checkedOnOpen)  // a new file has no mark
        for i in 0..<200 {
            let r = RunRecord(id: rid(i), job: "job-\(i % 7)", trigger: .schedule, scheduledFor: at(Int64(i)), startedAt: at(Int64(i)))
            try store.apply([
                .fired(job: r.job, scheduledFor: at(Int64(i))), .runStarted(r), .runFinished(runID: r.id, outcome: .success(exitCode: 0), at: at(Int64(i))),
            ])
        }
        try store.close()
        return path
    }

    @Test func aCleanCloseLetsTheNextOpenSkipTheCheckOnce() throws {
        let dir = TempDir("clean-open")
        defer { dir.remove() }
        let path = try closedStore(dir)
        #expect(FileManager.default.fileExists(atPath: path + ".clean"))

        let store = try SQLiteStateStore(path: path)
        #expect(!store.checkedOnOpen)
        #expect(!FileManager.default.fileExists(atPath: path + ".clean"))  // consumed at open
        #expect(try store.history(job: "job-0", limit: 100).count == 29)
        try store.close()
        let again = try SQLiteStateStore(path: path)
        #expect(!again.checkedOnOpen)
        try again.close()
    }

    @Test func aStoreThatWasNotClosedIsCheckedAtTheNextOpen() throws {
        let dir = TempDir("crash-open")
        defer { dir.remove() }
        let path = try closedStore(dir)
        do {
            // Opened (the mark consumed), written, and dropped without `close()`: as a crash.
            let store = try SQLiteStateStore(path: path)
            try store.apply([.runStarted(RunRecord(id: rid(999), job: "job-0", trigger: .manual, scheduledFor: nil, startedAt: at(999)))])
        }
        #expect(!FileManager.default.fileExists(atPath: path + ".clean"))
        let store = try SQLiteStateStore(path: path)
        defer { try? store.close() }
        #expect(store.checkedOnOpen)
    }

    @Test(arguments: ["append", "rewrite", "truncate", "replace", "garbage mark", "wal"])
    func aFileChangedAfterTheCleanCloseIsChecked(change: String) throws {
        let dir = TempDir("changed-open")
        defer { dir.remove() }
        let path = try closedStore(dir)
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        var other: SQLiteConnection?
        switch change {
        case "append":
            let h = try FileHandle(forUpdating: URL(fileURLWithPath: path))
            try h.seekToEnd()
            try h.write(contentsOf: Data(repeating: 0, count: 1024))
            try h.close()
        case "rewrite":
            // Same size, one byte of the last page changed in place, and the modification time
            // set back as `cp -p`, `rsync -a` or `touch -r` would: the status-change time,
            // which nothing can set back, still tells.
            var before = stat()
            _ = stat(path, &before)
            let h = try FileHandle(forUpdating: URL(fileURLWithPath: path))
            try h.seek(toOffset: UInt64(size - 10))
            try h.write(contentsOf: Data([0x5A]))
            try h.close()
            var times = [before.st_atim, before.st_mtim]
            #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
            var after = stat()
            _ = stat(path, &after)
            #expect(after.st_mtim.tv_sec == before.st_mtim.tv_sec && after.st_mtim.tv_nsec == before.st_mtim.tv_nsec && after.st_size == before.st_size)
        case "truncate":
            let h = try FileHandle(forUpdating: URL(fileURLWithPath: path))
            try h.truncate(atOffset: UInt64(size / 2))
            try h.close()
        case "replace":
            // A copy put in its place (a restore from backup): another inode.
            try FileManager.default.copyItem(atPath: path, toPath: path + ".copy")
            _ = rename(path + ".copy", path)
        case "garbage mark":
            try Data("sundial-clean-close 2 1 2 3\n".utf8).write(to: URL(fileURLWithPath: path + ".clean"))
        default:
            // Another program writing: its changes sit in the write-ahead log, not in the
            // file, whose size and time stay as marked.
            other = try SQLiteConnection(path: path)
            try other?.execute(script: "PRAGMA wal_autocheckpoint = 0; INSERT INTO paused(name) VALUES ('x')")
        }
        defer { other?.close() }
        if change == "truncate" {
            // The check runs and finds the damage.
            let error = #expect(throws: StateError.self) { try SQLiteStateStore(path: path) }
            #expect(error?.code == .corrupt)
            return
        }
        let store = try SQLiteStateStore(path: path)
        #expect(store.checkedOnOpen, "after \(change)")
        try store.close()
    }

    /// Damage that SQLite met while the store was open (a page that went bad at rest: here the
    /// file overwritten under the open store) makes even a clean close leave no mark, however
    /// the error was handled.
    @Test func corruptionMetWhileOpenLeavesNoMark() throws {
        let dir = TempDir("corrupt-close")
        defer { dir.remove() }
        let path = try closedStore(dir)
        let store = try SQLiteStateStore(path: path)
        #expect(!store.checkedOnOpen)
        // Every page but the first (the schema) overwritten: the runs' b-tree is garbage.
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        let h = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try h.seek(toOffset: 1024)
        try h.write(contentsOf: Data(repeating: 0xFF, count: size - 1024))
        try h.close()
        _ = try? store.history(job: "job-0", limit: 10)  // the error dropped, as `try?` callers do
        #expect(store.aux.metCorruption)
        try? store.close()
        #expect(!FileManager.default.fileExists(atPath: path + ".clean"))
    }

    /// The agent stops when its database is replaced under it (StateDirectoryWatch); the
    /// store must not then vouch for the replacement, which it never opened.
    @Test func aDatabaseReplacedWhileOpenIsNotMarked() throws {
        let dir = TempDir("replaced-close")
        defer { dir.remove() }
        let path = try closedStore(dir)
        let store = try SQLiteStateStore(path: path)
        try FileManager.default.copyItem(atPath: path, toPath: path + ".other")
        #expect(rename(path + ".other", path) == 0)
        try store.close()
        #expect(!FileManager.default.fileExists(atPath: path + ".clean"))
    }

    /// A file left unchecked by clean closes for 30 days is checked anyway, and a store that
    /// never checks (`checkOnOpen` off) vouches for nothing.
    @Test func aMarkOlderThanThirtyDaysAndAnUncheckedStoreDoNotSkipTheCheck() throws {
        let dir = TempDir("old-mark")
        defer { dir.remove() }
        let path = try closedStore(dir)
        let text = try String(contentsOfFile: path + ".clean", encoding: .utf8)
        var record = try #require(CleanCloseMark.Record(line: Substring(text.dropLast())))
        record.checkedAtUnixSeconds -= CleanCloseMark.maximumUncheckedSeconds + 60
        try Data(record.line.utf8).write(to: URL(fileURLWithPath: path + ".clean"))
        let store = try SQLiteStateStore(path: path)
        #expect(store.checkedOnOpen)
        try store.close()
        // That check restarted the 30 days: the next open skips it.
        let again = try SQLiteStateStore(path: path)
        #expect(!again.checkedOnOpen)
        try again.close()

        var options = SQLiteStateStore.Options()
        options.checkOnOpen = false
        try SQLiteStateStore(path: path, options: options).close()
        #expect(!FileManager.default.fileExists(atPath: path + ".clean"))
    }

    @Test func theMarkRecordsTheFilesIdentityAndParsesOnlyItsOwnFormat() throws {
        let id = CleanCloseMark.FileIdentity(
            device: 2049, inode: 77, size: 40960, modifiedNanoseconds: 1_780_000_000_123_456_789, changedNanoseconds: 1_780_000_000_223_456_789)
        let record = CleanCloseMark.Record(identity: id, checkedAtUnixSeconds: 1_780_000_000)
        #expect(CleanCloseMark.Record(line: Substring(record.line.dropLast())) == record)
        for bad in [
            "", "sundial-clean-close 1 2049 77 40960 1 2 3", "sundial-clean-close 2 2049 77 40960 1 2", "x 2 2049 77 40960 1 2 3",
            "sundial-clean-close 2 a 77 40960 1 2 3",
        ] {
            #expect(CleanCloseMark.Record(line: Substring(bad)) == nil, "\(bad)")
        }
    }
}
