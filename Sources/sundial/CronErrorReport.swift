import SundialCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Compiler-style reports for the commands that take a cron expression on the command line.
enum CronErrorReport {
    /// `error: column 4: hour 24 is out of range 0-23`, then the expression with a caret.
    static func text(_ error: CronError, expression: String) -> String {
        let caret = String(repeating: " ", count: max(0, error.column - 1)) + "^"
        return "error: \(error.description)\n  \(expression)\n  \(caret)\n"
    }

    static func printError(_ message: String) {
        let line = message.hasSuffix("\n") ? message : message + "\n"
        var bytes = Array(line.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return }
            bytes = bytes.dropFirst(n)
        }
    }
}
