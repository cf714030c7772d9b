#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reads a job's `env_file`: `KEY=VALUE` lines.
///
/// The accepted syntax is the common subset of systemd's `EnvironmentFile=` and Docker's
/// `--env-file`, so files written for either work:
/// - blank lines and lines whose first non-blank character is `#` are ignored;
/// - an optional leading `export ` is ignored (so the file can also be `source`d by a shell);
/// - `KEY` matches `[A-Za-z_][A-Za-z0-9_]*`; blanks around `KEY` and `=` are ignored;
/// - `VALUE` is the rest of the line with surrounding blanks removed; no inline comments;
/// - `'single quoted'` values are literal; `"double quoted"` values understand `\"`, `\\`,
///   `\n`, `\t` and `\$`; nothing may follow the closing quote except blanks or a `# comment`.
/// Later lines win. Errors carry the file and line.
///
/// Hand-written (fifty lines) because no package in the allowed set parses this format.
public enum EnvironmentFile {
    /// The largest file accepted: an env file is a handful of lines, not a data file.
    public static let maximumBytes = 1 << 20

    /// Parses `text`, reporting errors against `path`.
    public static func parse(_ text: String, path: String) throws(LaunchError) -> [(key: String, value: String)] {
        var result: [(key: String, value: String)] = []
        var lineNumber = 0
        // Split on the byte: "\r\n" is one `Character` in Swift, so a `Character` split would
        // read a file with CRLF line ends as a single line.
        for rawLine in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = Substring(rawLine)
            if line.last == "\r" { line = line.dropLast() }
            line = line.drop(while: { $0 == " " || $0 == "\t" })
            if line.isEmpty || line.first == "#" { continue }
            if line.hasPrefix("export ") { line = line.dropFirst(7).drop(while: { $0 == " " || $0 == "\t" }) }
            func fail(_ m: String) -> LaunchError { LaunchError(.envFile, "env_file \(path):\(lineNumber): \(m)") }
            guard let eq = line.firstIndex(of: "=") else { throw fail("expected KEY=VALUE") }
            let key = String(line[..<eq]).trimmingBlanks()
            // The text is not quoted: a line that is not `KEY=VALUE` is often a bare secret (a
            // connection string, a base64 token ending in `=`), and this reason is logged, stored
            // with the run and sent to notifications, before any of the file's values is known
            // to the masker.
            guard isValidKey(key) else {
                throw fail(
                    "the text before the first `=` (\(key.count) characters) is not a variable name "
                        + "(use letters, digits and _, not starting with a digit)")
            }
            let rawValue = Substring(String(line[line.index(after: eq)...]).trimmingBlanks())
            var value = ""
            if let quote = rawValue.first, quote == "\"" || quote == "'" {
                var i = rawValue.index(after: rawValue.startIndex)
                var closed = false
                while i < rawValue.endIndex {
                    let c = rawValue[i]
                    if c == quote {
                        closed = true
                        i = rawValue.index(after: i)
                        break
                    }
                    if quote == "\"", c == "\\", rawValue.index(after: i) < rawValue.endIndex {
                        i = rawValue.index(after: i)
                        switch rawValue[i] {
                        case "n": value.append("\n")
                        case "t": value.append("\t")
                        case "\"", "\\", "$": value.append(rawValue[i])
                        default:
                            value.append("\\")
                            value.append(rawValue[i])
                        }
                    } else {
                        value.append(c)
                    }
                    i = rawValue.index(after: i)
                }
                guard closed else { throw fail("unterminated \(quote == "\"" ? "double" : "single") quote") }
                let trailing = rawValue[i...].drop(while: { $0 == " " || $0 == "\t" })
                guard trailing.isEmpty || trailing.first == "#" else { throw fail("unexpected text after the closing quote") }
            } else {
                value = String(rawValue)
            }
            guard !value.utf8.contains(0) else { throw fail("value of \(key) contains a NUL byte") }
            result.append((key, value))
        }
        return result
    }

    /// Reads and parses the file at `path`. With `requirePrivate`, refuses a file that group
    /// or others may read (it would expose the job's secrets to other users): the launch asks
    /// for it when the job has secret variables (`secrets`, a webhook's `secret_env`), the
    /// webhook delivery when it reads its signing key.
    public static func load(path: String, requirePrivate: Bool) throws(LaunchError) -> [(key: String, value: String)] {
        // O_NONBLOCK: a FIFO (or a device) put where the file was expected must not block the
        // launching thread in `open` or `read`; it is refused below as not a regular file.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { throw LaunchError(.envFile, "env_file \(path): cannot open: \(errnoText(errno))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw LaunchError(.envFile, "env_file \(path): \(errnoText(errno))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw LaunchError(.envFile, "env_file \(path): not a regular file") }
        if requirePrivate, st.st_mode & 0o044 != 0 {
            let mode = String(st.st_mode & 0o777, radix: 8)
            throw LaunchError(
                .insecureEnvFile,
                "env_file \(path) is readable by group or others (mode 0\(mode)) but holds the job's secrets (`secrets`, a webhook's `secret_env`); run: chmod 600 \(path)"
            )
        }
        guard st.st_size <= maximumBytes else { throw LaunchError(.envFile, "env_file \(path): larger than \(maximumBytes) bytes") }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size) + 1)
        var used = 0
        while used < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + used, $0.count - used) }
            if n < 0 {
                if errno == EINTR { continue }
                throw LaunchError(.envFile, "env_file \(path): read failed: \(errnoText(errno))")
            }
            if n == 0 { break }
            used += n
            if used == bytes.count, used <= maximumBytes { bytes.append(contentsOf: repeatElement(0, count: 4096)) }
            guard used <= maximumBytes else { throw LaunchError(.envFile, "env_file \(path): larger than \(maximumBytes) bytes") }
        }
        return try parse(String(decoding: bytes[..<used], as: UTF8.self), path: path)
    }

    static func isValidKey(_ key: String) -> Bool {
        guard let first = key.utf8.first, first == UInt8(ascii: "_") || isLetter(first) else { return false }
        return key.utf8.allSatisfy { $0 == UInt8(ascii: "_") || isLetter($0) || ($0 >= 48 && $0 <= 57) }
    }

    private static func isLetter(_ c: UInt8) -> Bool { (c | 0x20) >= UInt8(ascii: "a") && (c | 0x20) <= UInt8(ascii: "z") }
}

extension String {
    func trimmingBlanks() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
