#if canImport(Glibc)
import Glibc
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
/// records — the file's device, inode, size and modification time, and an empty write-ahead
/// log. So like a file system's "clean" flag (ext4 checks after an unclean unmount, not at
/// every mount), the check runs when the mark is missing, unreadable or does not match.
/// Damage that leaves size and time alone (a flash cell going bad at rest) is what SQLite
/// reports as corruption when it reads the page, as it does in any other program.
///
/// The mark is consumed (removed) before the database is opened, so a store that then
/// crashes leaves none behind. Writing and removing it are best effort: a mark that could not
/// be written or removed only means a check at the next open (a stale mark cannot match a file
/// written since, whose time changed).
struct CleanCloseMark {
    /// The database file's identity as the kernel reports it.
    struct FileIdentity: Equatable {
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var modifiedNanoseconds: Int64

        init?(path: String) {
            var st = stat()
            guard stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return nil }
            device = UInt64(st.st_dev)
            inode = UInt64(st.st_ino)
            size = Int64(st.st_size)
            modifiedNanoseconds = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        }

        init(device: UInt64, inode: UInt64, size: Int64, modifiedNanoseconds: Int64) {
            self.device = device
            self.inode = inode
            self.size = size
            self.modifiedNanoseconds = modifiedNanoseconds
        }

        /// One line: a tag with the format's version, then the four numbers.
        var line: String { "sundial-clean-close 1 \(device) \(inode) \(size) \(modifiedNanoseconds)\n" }

        init?(line: Substring) {
            let fields = line.split(separator: " ")
            guard fields.count == 6, fields[0] == "sundial-clean-close", fields[1] == "1",
                let device = UInt64(fields[2]), let inode = UInt64(fields[3]), let size = Int64(fields[4]),
                let time = Int64(fields[5])
            else { return nil }
            self.init(device: device, inode: inode, size: size, modifiedNanoseconds: time)
        }
    }

    /// The database whose closes this marks.
    let databasePath: String
    var path: String { databasePath + ".clean" }

    /// Records the database as it is now: call after the last connection closed.
    func write() {
        guard let identity = FileIdentity(path: databasePath) else { return }
        // A write-ahead log with frames holds changes the file does not: not a clean close.
        if let wal = FileIdentity(path: databasePath + "-wal"), wal.size > 0 { return }
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { return }
        let bytes = Array(identity.line.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == bytes.count, rename(temporary, path) == 0 else {
            unlink(temporary)
            return
        }
    }

    /// Removes the mark, and says whether it matched the database as it is now (so the
    /// check may be skipped).
    func consume() -> Bool {
        defer { unlink(path) }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 128)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0, n < buffer.count, buffer[n - 1] == UInt8(ascii: "\n") else { return false }
        let text = String(decoding: buffer[..<(n - 1)], as: UTF8.self)
        guard let marked = FileIdentity(line: Substring(text)), let now = FileIdentity(path: databasePath) else { return false }
        if let wal = FileIdentity(path: databasePath + "-wal"), wal.size > 0 { return false }
        return marked == now
    }
}
