import CSundialShim  // `timespec`'s fields (see PathProbe.swift)

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How the database file looked when a store last closed it cleanly, kept beside it
/// (`state.db.clean`), so that the next open can skip `PRAGMA quick_check` when nothing has
/// touched the file since.
///
/// Why: the check reads the whole file. A box's history at the retention's bounds is about
/// 180 MB per 1,000 jobs; checking it at every start cost about 0.1 s of CPU per 40 MB
/// (2-core machine, page cache warm) and, on an SD card, seconds of reads. The check is
/// there to catch a file damaged by a crash, a power cut or another program; after a clean
/// close by this store, none of those can have happened without changing what the mark
/// records: the file's device and inode (another file put in its place), its size, its
/// modification time, and its status-change time, which no program can set back (`cp -p`,
/// `rsync -a` and `touch -r` restore the modification time, not this one); and an empty
/// write-ahead log. So like a file system's "clean" flag (ext4 checks after an unclean
/// unmount, not at every mount), the check runs when the mark is missing, unreadable or does
/// not match, and at least every ``maximumUncheckedSeconds`` in any case.
///
/// Damage that leaves every one of those alone (a flash cell going bad at rest) is what
/// SQLite reports as corruption when it reads the page; a store that met corruption while
/// open writes no mark (``SQLiteConnection/metCorruption``), and neither does one whose path
/// names another file by the time it closes.
///
/// The mark is consumed (removed, and the removal synced) before the database is opened, so
/// a store that then crashes leaves none behind. Writing it is best effort: a mark that could
/// not be written only means a check at the next open.
struct CleanCloseMark {
    /// A file's identity as the kernel reports it.
    struct FileIdentity: Equatable {
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var modifiedNanoseconds: Int64
        var changedNanoseconds: Int64

        init?(path: String) {
            var st = stat()
            guard stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return nil }
            device = UInt64(st.st_dev)
            inode = UInt64(st.st_ino)
            size = Int64(st.st_size)
            // Wrapping: a time past 2262 (a clock set far ahead) must not trap.
            modifiedNanoseconds = Int64(st.st_mtim.tv_sec) &* 1_000_000_000 &+ Int64(st.st_mtim.tv_nsec)
            changedNanoseconds = Int64(st.st_ctim.tv_sec) &* 1_000_000_000 &+ Int64(st.st_ctim.tv_nsec)
        }

        init(device: UInt64, inode: UInt64, size: Int64, modifiedNanoseconds: Int64, changedNanoseconds: Int64) {
            self.device = device
            self.inode = inode
            self.size = size
            self.modifiedNanoseconds = modifiedNanoseconds
            self.changedNanoseconds = changedNanoseconds
        }

        /// The same file (not another one put at its path), whatever its contents.
        func isSameFile(as other: FileIdentity) -> Bool { device == other.device && inode == other.inode }
    }

    /// The mark's content: the identity, and when the file was last checked whole.
    struct Record: Equatable {
        var identity: FileIdentity
        var checkedAtUnixSeconds: Int64

        /// One line: a tag with the format's version, then the numbers.
        var line: String {
            let i = identity
            return "sundial-clean-close 2 \(i.device) \(i.inode) \(i.size) \(i.modifiedNanoseconds) \(i.changedNanoseconds) \(checkedAtUnixSeconds)\n"
        }

        init(identity: FileIdentity, checkedAtUnixSeconds: Int64) {
            self.identity = identity
            self.checkedAtUnixSeconds = checkedAtUnixSeconds
        }

        init?(line: Substring) {
            let fields = line.split(separator: " ")
            guard fields.count == 8, fields[0] == "sundial-clean-close", fields[1] == "2",
                let device = UInt64(fields[2]), let inode = UInt64(fields[3]), let size = Int64(fields[4]),
                let modified = Int64(fields[5]), let changed = Int64(fields[6]), let checked = Int64(fields[7])
            else { return nil }
            self.init(
                identity: FileIdentity(device: device, inode: inode, size: size, modifiedNanoseconds: modified, changedNanoseconds: changed),
                checkedAtUnixSeconds: checked)
        }
    }

    /// A file left unchecked by clean closes for this long is checked anyway: damage in pages
    /// nothing reads (old history) would otherwise stay unseen across any number of restarts.
    static let maximumUncheckedSeconds: Int64 = 30 * 86_400

    /// The database whose closes this marks.
    let databasePath: String
    var path: String { databasePath + ".clean" }

    /// Records the database as it is now, if it is still `opened` (the file the store opened:
    /// the agent stops when its database is replaced, and must not vouch for the replacement).
    /// Call after the last connection closed. `walPath`: SQLite's name for the write-ahead log.
    func record(opened: FileIdentity, walPath: String, checkedAtUnixSeconds: Int64) {
        guard let identity = FileIdentity(path: databasePath), identity.isSameFile(as: opened) else { return }
        // A write-ahead log with frames holds changes the file does not: not a clean close.
        if let wal = FileIdentity(path: walPath), wal.size > 0 { return }
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { return }
        let bytes = Array(Record(identity: identity, checkedAtUnixSeconds: checkedAtUnixSeconds).line.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == bytes.count, rename(temporary, path) == 0 else {
            unlink(temporary)
            return
        }
    }

    /// Removes the mark (syncing the directory, so that a power cut cannot bring it back), and
    /// returns it if it matched the database as it is now and the whole file was checked
    /// within ``maximumUncheckedSeconds`` of `nowUnixSeconds`: then the check may be skipped.
    func consume(nowUnixSeconds: Int64) -> Record? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 160)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        close(fd)
        if unlink(path) == 0 { syncDirectory() }
        guard n > 0, n < buffer.count, buffer[n - 1] == UInt8(ascii: "\n") else { return nil }
        let text = String(decoding: buffer[..<(n - 1)], as: UTF8.self)
        guard let record = Record(line: Substring(text)), let now = FileIdentity(path: databasePath) else { return nil }
        // SQLite names the log after the database's real path (a symbolic link resolved).
        let real =
            realpath(databasePath, nil).map { p in
                defer { free(p) }
                return String(cString: p)
            } ?? databasePath
        if let wal = FileIdentity(path: real + "-wal"), wal.size > 0 { return nil }
        let age = nowUnixSeconds - record.checkedAtUnixSeconds
        guard record.identity == now, age >= 0, age < Self.maximumUncheckedSeconds else { return nil }
        return record
    }

    private func syncDirectory() {
        let slash = databasePath.lastIndex(of: "/")
        let directory = slash.map { String(databasePath[..<$0]) }.map { $0.isEmpty ? "/" : $0 } ?? "."
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }
}
