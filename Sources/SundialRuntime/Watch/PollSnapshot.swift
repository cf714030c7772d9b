import Glibc

/// What the polling fallback compares between two looks at the config set: every listed job
/// file's size, mtime, ctime, inode and mode, a content hash of small files, and the listing
/// problems (so a missing path that appears is a change).
///
/// The hash catches a rewrite that keeps size and mtime (a coarse-mtime file system, or a tool
/// that restores mtimes); files above `hashLimit` bytes rely on the stamps alone, so one poll
/// never reads more than `ConfigFiles.maxFiles × hashLimit` bytes.
struct PollSnapshot: Hashable, Sendable {
    struct Stamp: Hashable, Sendable {
        var status: PathProbe.Status?
        var contentHash: UInt64?
    }

    static let hashLimit = 64 * 1024

    var files: [String] = []
    var stamps: [Stamp] = []
    var problems: [String] = []

    /// Looks at the config set now.
    init(paths: [String]) {
        let listing = ConfigFiles.listFiles(paths: paths)
        files = listing.files.map(\.display)
        stamps = listing.files.map { file in
            guard case .success(let status) = PathProbe.status(raw: file.raw, followLinks: true) else {
                return Stamp(status: nil, contentHash: nil)
            }
            let hash = status.size <= Int64(PollSnapshot.hashLimit) ? PollSnapshot.hash(file.raw) : nil
            return Stamp(status: status, contentHash: hash)
        }
        problems = listing.problems.map { "\($0.path): \($0.message)" }
    }

    /// FNV-1a over the file's bytes (at most `hashLimit + 1`), or nil when unreadable.
    /// Hand-written: change detection needs no cryptographic hash, and no dependency is worth it.
    static func hash(_ path: [UInt8]) -> UInt64? {
        let fd = open(PathProbe.cString(path), O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        var total = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 * 1024, alignment: 8)
        defer { buffer.deallocate() }
        while total <= hashLimit {
            let n = read(fd, buffer.baseAddress, buffer.count)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return nil }
            if n == 0 { break }
            for byte in buffer[0..<n] {
                h = (h ^ UInt64(byte)) &* 0x100_0000_01b3
            }
            total += n
        }
        return h
    }
}
