import SundialCore

#if canImport(Glibc)
import Glibc
#endif

/// Small, bounded file reads for the shell. No Foundation: the agent reads config files on
/// every reload and must never slurp a 100 MB file into memory to find out it is too large.
public enum FileSystem {
    public enum ReadError: Error, Equatable, CustomStringConvertible {
        case cannotOpen(path: String, reason: String)
        case tooLarge(path: String, size: Int, limit: Int)
        case readFailed(path: String, reason: String)

        public var description: String {
            switch self {
            case let .cannotOpen(path, reason): "cannot open \(path): \(reason)"
            case let .tooLarge(path, size, limit): "\(path) is \(size) bytes, larger than the limit of \(limit) bytes"
            case let .readFailed(path, reason): "cannot read \(path): \(reason)"
            }
        }
    }

    /// Reads a whole regular file of at most `limit` bytes.
    ///
    /// Opened with `O_NONBLOCK`, so that a FIFO (or a device) put where a job file was expected
    /// cannot block the caller in `open` or `read`, and refused after `fstat` unless it is a
    /// regular file: the check is on what was opened, not on a name that can be swapped
    /// between a `stat` and the `open`.
    public static func read(_ path: String, limit: Int) throws(ReadError) -> [UInt8] {
        try read(cPath: Array(path.utf8CString), display: path, limit: limit)
    }

    /// ``read(_:limit:)`` of a path given as raw bytes (a file name that is not UTF-8 is
    /// opened by its bytes; `display` is how messages name it).
    public static func read(rawPath: [UInt8], display: String, limit: Int) throws(ReadError) -> [UInt8] {
        try read(cPath: rawPath.map { CChar(bitPattern: $0) } + [0], display: display, limit: limit)
    }

    private static func read(cPath: [CChar], display path: String, limit: Int) throws(ReadError) -> [UInt8] {
        let fd = open(cPath, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { throw .cannotOpen(path: path, reason: errnoString()) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .readFailed(path: path, reason: errnoString()) }
        switch st.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw .cannotOpen(path: path, reason: "is a directory")
        case S_IFIFO: throw .cannotOpen(path: path, reason: "is a FIFO, not a regular file")
        case S_IFSOCK: throw .cannotOpen(path: path, reason: "is a socket, not a regular file")
        default: throw .cannotOpen(path: path, reason: "is a device, not a regular file")
        }
        if Int(st.st_size) > limit { throw .tooLarge(path: path, size: Int(st.st_size), limit: limit) }
        return try readAll(fd, display: path, sizeHint: Int(st.st_size), limit: limit)
    }

    /// Standard input to its end (a pipe: `import-crontab -`), at most `limit` bytes.
    public static func readStandardInput(limit: Int) throws(ReadError) -> [UInt8] {
        try readAll(0, display: "<stdin>", sizeHint: 0, limit: limit)
    }

    private static func readAll(_ fd: Int32, display path: String, sizeHint: Int, limit: Int) throws(ReadError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(min(sizeHint, limit))
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .readFailed(path: path, reason: errnoString())
            }
            if n == 0 { break }
            out += buffer[0..<n]
            // The file may grow while we read it (a writer in progress): still bounded.
            if out.count > limit { throw .tooLarge(path: path, size: out.count, limit: limit) }
        }
        return out
    }

    /// Whether `path` names something that can be opened for reading by this process.
    public static func isReadable(_ path: String) -> Bool { access(path, R_OK) == 0 }

    public static func errnoString(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }
}
