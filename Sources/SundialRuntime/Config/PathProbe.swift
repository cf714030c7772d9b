// With MemberImportVisibility, a clean build may attribute `timespec`'s fields to the shim's
// headers rather than to Glibc (CI failed on `st_mtim.tv_sec` here): both are imported.
import CSundialShim
import Glibc
import SundialCore

/// Thin, allocation-light wrappers over `stat`, `readdir` and `readlink` for the config listing
/// and the watcher.
///
/// Why Glibc and not `FileManager`: both need `lstat` versus `stat`, device and inode numbers
/// (loop protection, deduplication, polling stamps) and nanosecond mtimes, which `FileManager`
/// hides behind attribute dictionaries and `Date`.
enum PathProbe {
    /// A file's identity: the same file reached through two paths has one `FileID`.
    struct FileID: Hashable, Sendable {
        var device: UInt64
        var inode: UInt64
    }

    enum Kind: Hashable, Sendable { case regular, directory, symlink, other }

    /// What `stat`/`lstat` reported about a path.
    struct Status: Hashable, Sendable {
        var id: FileID
        var kind: Kind
        var size: Int64
        var mode: UInt32
        var mtimeSeconds: Int64
        var mtimeNanoseconds: Int64
        var ctimeSeconds: Int64
        var ctimeNanoseconds: Int64
    }

    /// `stat` (follows symlinks) or `lstat` (does not); on failure the `errno` value.
    static func status(_ path: String, followLinks: Bool) -> Result<Status, Errno> {
        status(raw: Array(path.utf8), followLinks: followLinks)
    }

    /// ``status(_:followLinks:)`` of a path as bytes (file names need not be UTF-8).
    static func status(raw path: [UInt8], followLinks: Bool) -> Result<Status, Errno> {
        var st = stat()
        let c = cString(path)
        let rc = followLinks ? stat(c, &st) : lstat(c, &st)
        guard rc == 0 else { return .failure(Errno(errno)) }
        let kind: Kind
        switch st.st_mode & S_IFMT {
        case S_IFREG: kind = .regular
        case S_IFDIR: kind = .directory
        case S_IFLNK: kind = .symlink
        default: kind = .other
        }
        return .success(
            Status(
                id: FileID(device: UInt64(st.st_dev), inode: UInt64(st.st_ino)),
                kind: kind,
                size: Int64(st.st_size),
                mode: UInt32(st.st_mode),
                mtimeSeconds: Int64(st.st_mtim.tv_sec), mtimeNanoseconds: Int64(st.st_mtim.tv_nsec),
                ctimeSeconds: Int64(st.st_ctim.tv_sec), ctimeNanoseconds: Int64(st.st_ctim.tv_nsec)
            ))
    }

    /// The names in a directory, without `.` and `..`, unsorted; on failure the `errno` value.
    /// Reads at most `limit` names, so a pathological directory cannot exhaust memory. Names
    /// that are not UTF-8 come back escaped (``display(_:)``), fine for the watcher's sets.
    static func entries(of directory: String, limit: Int = 100_000) -> Result<[String], Errno> {
        // Names that are UTF-8 are kept as they are, so that they can be joined and looked at
        // again (the watcher does); ``display(_:)`` escapes controls and bidi characters for
        // printing, which made such a subdirectory unwatched. Others can only be shown escaped.
        entries(raw: Array(directory.utf8), limit: limit).map { $0.map { String(validating: $0, as: UTF8.self) ?? display($0) } }
    }

    /// The names in a directory as bytes, exactly as the kernel has them.
    static func entries(raw directory: [UInt8], limit: Int = 100_000) -> Result<[[UInt8]], Errno> {
        guard let dir = opendir(cString(directory)) else { return .failure(Errno(errno)) }
        defer { closedir(dir) }
        var names: [[UInt8]] = []
        while names.count < limit, let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix(while: { $0 != 0 })) }
            if name == [0x2E] || name == [0x2E, 0x2E] { continue }
            names.append(name)
        }
        return .success(names)
    }

    /// The target of a symbolic link, or nil when `path` is not a readable link.
    static func linkTarget(_ path: String) -> String? { linkTarget(raw: Array(path.utf8)) }

    static func linkTarget(raw path: [UInt8]) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(cString(path), &buffer, buffer.count - 1)
        guard n >= 0 else { return nil }
        return display(buffer[0..<n].map { UInt8(bitPattern: $0) })
    }

    /// A NUL-terminated copy of a path's bytes, for the C calls.
    static func cString(_ bytes: [UInt8]) -> [CChar] { bytes.map { CChar(bitPattern: $0) } + [0] }

    /// How a path is printed: as is when it is printable UTF-8; otherwise every byte that is not
    /// (invalid UTF-8, control characters such as a newline that would break a
    /// `file:line:column` line, C1 controls and bidirectional overrides, ``TerminalText``) as
    /// `\xHH`, and a backslash as `\\` so the form is unambiguous.
    /// Lossless: the file is still opened by its real bytes, never by this text.
    static func display(_ bytes: [UInt8]) -> String {
        if let text = String(validating: bytes, as: UTF8.self), !text.unicodeScalars.contains(where: isUnprintable) {
            return text
        }
        var out = ""
        var i = 0
        let hex = Array("0123456789abcdef")
        func escape(_ b: UInt8) {
            out += "\\x"
            out.append(hex[Int(b >> 4)])
            out.append(hex[Int(b & 15)])
        }
        while i < bytes.count {
            let b = bytes[i]
            let length = b < 0x80 ? 1 : b >= 0xF0 && b < 0xF5 ? 4 : b >= 0xE0 ? 3 : b >= 0xC2 && b < 0xE0 ? 2 : 0
            if length > 0, i + length <= bytes.count,
                let scalar = String(validating: bytes[i..<(i + length)], as: UTF8.self), !scalar.unicodeScalars.contains(where: isUnprintable)
            {
                out += scalar == "\\" ? "\\\\" : scalar
                i += length
            } else {
                escape(b)
                i += 1
            }
        }
        return out
    }

    /// A tab too, unlike ``TerminalText``: a name has no columns to line up.
    private static func isUnprintable(_ s: Unicode.Scalar) -> Bool { s.value == 0x09 || TerminalText.isUnsafe(s) }

    /// The process's working directory, or "/" if it cannot be read.
    static func currentDirectory() -> String {
        guard let cwd = getcwd(nil, 0) else { return "/" }
        defer { free(cwd) }
        return String(cString: cwd)
    }

    /// `path` made absolute against the working directory (lexically; symlinks untouched).
    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : join(currentDirectory(), path)
    }

    /// `path` without trailing slashes (but "/" stays "/").
    static func trimmed(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        return String(p)
    }

    /// `directory/name`, without doubling a slash after "/".
    static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    /// The lexical parent of an absolute path ("/a/b" → "/a", "/a" → "/").
    static func parent(_ path: String) -> String {
        let p = trimmed(path)
        guard let slash = p.lastIndex(of: "/") else { return "." }
        return slash == p.startIndex ? "/" : String(p[..<slash])
    }

    /// The last path component ("/a/b" → "b").
    static func baseName(_ path: String) -> String {
        let p = trimmed(path)
        guard let slash = p.lastIndex(of: "/") else { return p }
        return String(p[p.index(after: slash)...])
    }
}

extension PathProbe {
    /// An `errno` value with its message, lower-cased to read like a compiler diagnostic.
    struct Errno: Error, Hashable, Sendable, CustomStringConvertible {
        var code: Int32
        init(_ code: Int32) { self.code = code }
        var description: String {
            guard let text = strerror(code) else { return "error \(code)" }
            let message = String(cString: text)
            return message.prefix(1).lowercased() + message.dropFirst()
        }
    }
}
