import CSundialShim
import SundialCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs a `notify: - command:` argv once: the facts as `SUNDIAL_*` variables (plus `PATH`) and
/// as one JSON document on standard input, its output kept for the failure reason (last line,
/// bounded), stopped after ``timeoutMs``.
///
/// Started under a watcher (``sundial_spawn_notify``) because the agent's job runner reaps
/// every child: the watcher's status record is how this learns the exit code. Blocking: runs on
/// the notifier's thread.
public struct CommandDelivery: Sendable {
    public static let defaultTimeoutMs: Int64 = 30_000
    /// `PATH` of the command: the agent's own when it has one (systemd sets a standard one).
    static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    public var timeoutMs: Int64
    /// `PATH` for the command; `nil`: the agent's own (tests point it at fakes).
    public var path: String?
    public init(timeoutMs: Int64 = CommandDelivery.defaultTimeoutMs, path: String? = nil) {
        self.timeoutMs = timeoutMs
        self.path = path
    }

    public func run(argv: [String], facts: NotificationFacts) -> DeliveryResult {
        guard let first = argv.first else { return .failed(reason: "empty command") }
        let pathVariable = path ?? getenv("PATH").map { String(cString: $0) } ?? Self.defaultPath
        guard let program = Self.resolve(first, path: pathVariable) else {
            return .failed(reason: "\(first): command not found in PATH (\(pathVariable))")
        }
        let environment = ["PATH=" + pathVariable] + facts.environment.map { "\($0.name)=\($0.value)" }
        var body = Array(facts.json.jsonText.utf8)
        body.append(0x0A)

        var fds: [[Int32]] = []
        defer {
            for p in fds {
                close(p[0])
                if p[1] >= 0 { close(p[1]) }
            }
        }
        for _ in 0..<3 {
            var p: [Int32] = [-1, -1]
            guard sundial_pipe_cloexec(&p) == 0 else { return .failed(reason: "pipe: \(FileSystem.errnoString())") }
            fds.append(p)
        }
        let (input, output, status) = (fds[0], fds[1], fds[2])
        let argvC = CStringArray([program] + argv.dropFirst())
        let envC = CStringArray(environment)
        let watcher = sundial_spawn_notify(program, argvC.pointer, envC.pointer, input[0], output[1], status[1])
        // The child's ends are the watcher's now.
        close(output[1])
        fds[1][1] = -1
        close(status[1])
        fds[2][1] = -1
        guard watcher > 0 else { return .failed(reason: "\(program): \(FileSystem.errnoString(-watcher))") }
        // The JSON is small (a few hundred bytes, below a pipe's 64 KiB), so one non-blocking
        // write either takes it all or the command is not reading: it gets what fit.
        _ = fcntl(input[1], F_SETFL, O_NONBLOCK)
        _ = body.withUnsafeBytes { write(input[1], $0.baseAddress, $0.count) }
        close(input[1])
        fds[0][1] = -1
        for fd in [output[0], status[0]] { _ = fcntl(fd, F_SETFL, O_NONBLOCK) }

        let deadline = sundial_monotonic_ms() + timeoutMs
        var tail = BoundedTail(capacity: 2048)
        var report: [UInt8] = []
        var open = [true, true]
        var buffer = [UInt8](repeating: 0, count: 4096)
        var timedOut = false
        var graceEnds: Int64?
        while open.contains(true) {
            let now = sundial_monotonic_ms()
            if now >= deadline {
                timedOut = true
                break
            }
            // A background process of the command keeping the output open must not hold the
            // worker once the command itself has ended.
            if let g = graceEnds, now >= g { break }
            var p = [
                pollfd(fd: open[0] ? output[0] : -1, events: Int16(POLLIN), revents: 0),
                pollfd(fd: open[1] ? status[0] : -1, events: Int16(POLLIN), revents: 0),
            ]
            _ = poll(&p, 2, Int32(min(deadline, graceEnds ?? deadline) - now))
            for (i, fd) in [output[0], status[0]].enumerated() where open[i] && p[i].revents != 0 {
                // At most 64 KiB per wake-up: a command that writes without pause (`yes`) keeps
                // the pipe full, and must not keep the loop from its deadline.
                var reads = 0
                while reads < 16 {
                    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                    if n > 0 {
                        if i == 0 { tail.append(buffer[0..<n]) } else if report.count < 64 { report += buffer[0..<n] }
                        reads += 1
                        continue
                    }
                    if n == 0 {
                        open[i] = false
                        if i == 1 { graceEnds = sundial_monotonic_ms() + 500 }
                    } else if errno == EINTR {
                        continue
                    }
                    break
                }
            }
        }
        if open[1] { kill(watcher, SIGKILL) }
        var st: Int32 = 0
        while waitpid(watcher, &st, 0) < 0 && errno == EINTR {}
        if timedOut && open[1] { return .failed(reason: "\(first): still running after \(DurationParser.format(milliseconds: timeoutMs)), killed") }
        guard report.count >= 8 else { return .failed(reason: "\(first): its watcher ended without a report") }
        let kind = report.withUnsafeBytes { $0.load(fromByteOffset: 0, as: Int32.self) }
        let value = report.withUnsafeBytes { $0.load(fromByteOffset: 4, as: Int32.self) }
        let said = tail.lastLine.map { ": \($0)" } ?? ""
        switch kind {
        case 1 where value == 0: return .sent(detail: "exit 0")
        case 1: return .failed(reason: "\(first) exited \(value)\(said)")
        case 2: return .failed(reason: "\(first) killed by \(signalName(value))\(said)")
        default: return .failed(reason: "\(program): \(FileSystem.errnoString(value))")
        }
    }

    /// `name` itself when it has a slash, else the first executable file of that name in `path`.
    static func resolve(_ name: String, path: String) -> String? {
        if name.contains("/") { return name }
        for dir in path.split(separator: ":", omittingEmptySubsequences: true) {
            let candidate = "\(dir)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }
}
