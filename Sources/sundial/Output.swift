#if canImport(Glibc)
import Glibc
#endif

/// Writes to standard error, unbuffered, without Foundation.
func printError(_ text: String) {
    var text = text
    text.withUTF8 { writeAll(2, UnsafeRawBufferPointer($0)) }
}

/// Writes every byte to `fd`, retrying short writes and EINTR; gives up on any other error
/// (a closed pipe: the reader is gone, and SIGPIPE is ignored by the agent).
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) {
    var off = 0
    while off < bytes.count {
        let n = write(fd, bytes.baseAddress! + off, bytes.count - off)
        if n < 0, errno == EINTR { continue }
        if n <= 0 { break }
        off += n
    }
}
