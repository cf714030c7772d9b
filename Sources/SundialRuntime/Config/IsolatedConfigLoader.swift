import CSundialShim
import SundialConfig
import SundialCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Loads the configuration in a short-lived child process, so that no job file can crash, hang
/// or bloat the agent.
///
/// Job files are untrusted input: a typo from git, a half-written file from config management,
/// or a hostile file. Parsing them in the agent's own address space means a parser bug is an
/// agent crash, and a crash is every job unsupervised. So the agent runs the loader as a child
/// of its own binary (`sundial internal-load PATH...`, as OpenSSH separates its privileged
/// monitor from the code that parses what the network sends) under resource limits and a
/// wall-clock deadline. The child answers with ``LoaderWire``'s versioned, length-prefixed
/// message. Whatever goes wrong — a crash, a limit, the deadline, a garbled answer — becomes a
/// diagnostic of a rejected load, and the caller keeps its last good set.
///
/// The memory the parse needed dies with the child: after a load the agent holds only the job
/// set (or the diagnostics), never the YAML trees or the schema evaluator's garbage.
public final class IsolatedConfigLoader: Sendable {
    /// Limits of one load. The defaults fit 10,000 files of the largest size the reader accepts
    /// many times over; a load near them is a hostile or broken file, not a big configuration.
    public struct Limits: Sendable {
        /// The child's whole address space (RLIMIT_AS).
        public var addressSpaceBytes: UInt64 = 2 << 30
        /// CPU time (RLIMIT_CPU). 10,000 jobs load in well under a second.
        public var cpuSeconds: UInt64 = 30
        /// The main thread's stack (RLIMIT_STACK); the parser is iterative and needs little.
        public var stackBytes: UInt64 = 8 << 20
        public var openFiles: UInt64 = 256
        /// Wall time from spawn to answer, then SIGKILL (a file on a hung NFS mount, a FIFO).
        public var deadlineMs: Int64 = 60_000
        /// The longest answer read; more is a broken child.
        public var maxAnswerBytes: Int = 256 << 20
        public init() {}
    }

    /// Why a load failed before producing an answer (each a diagnostic at the config path).
    public enum Failure: Error, Hashable, Sendable, CustomStringConvertible {
        case cannotStart(String)
        case crashed(signal: Int32, detail: String?)
        case exited(code: Int32, detail: String?)
        case deadline(ms: Int64)
        case cpuLimit(seconds: UInt64)
        case memoryLimit(bytes: UInt64)
        case answerTooLarge(limit: Int)
        case badAnswer(String)

        public var description: String {
            switch self {
            case let .cannotStart(why): "cannot start the configuration loader: \(why)"
            case let .crashed(signal, detail):
                "the configuration loader crashed (\(signalName(signal)))" + (detail.map { ": \($0)" } ?? "")
            case let .exited(code, detail): "the configuration loader failed (exit status \(code))" + (detail.map { ": \($0)" } ?? "")
            case let .deadline(ms): "the configuration loader did not finish within \(ms / 1000) s and was killed"
            case let .cpuLimit(s): "the configuration loader used more than \(s) s of CPU and was killed"
            case let .memoryLimit(bytes): "the configuration loader needed more than \(bytes >> 20) MiB of memory and was stopped"
            case let .answerTooLarge(limit): "the configuration loader's answer is larger than \(limit) bytes"
            case let .badAnswer(why): "the configuration loader sent an invalid answer: \(why)"
            }
        }

        var hint: String? {
            switch self {
            case .crashed, .exited, .badAnswer:
                "please report this, with the job files that caused it"
            case .deadline:
                "is a job file a FIFO, or on a hung network mount?"
            case .cpuLimit, .memoryLimit:
                "a file this expensive to load is almost surely broken or hostile"
            default: nil
            }
        }
    }

    /// The loader's command line before the config paths: the agent's own binary by default.
    public let command: [String]
    public let limits: Limits
    /// The last valid load's clean files, offered to the next child (``LoaderMemo``: a reload
    /// parses only what changed). This loader's own; two agents in one process share nothing.
    private let memo = Mutex(LoaderMemo())

    /// `command`: the program and its leading arguments; the config paths are appended. The
    /// default runs this very binary (`/proc/self/exe`, which still names the running build
    /// when a package upgrade has replaced the file on disk, so agent and child always agree
    /// on the wire format).
    public init(command: [String] = ["/proc/self/exe", "internal-load"], limits: Limits = Limits()) {
        self.command = command
        self.limits = limits
    }

    /// The `SUNDIAL_LOADER_COMMAND` override (space-separated), used by the tests to stand a
    /// crashing, hanging or garbling program in for the loader; otherwise the default.
    public static func fromEnvironment() -> IsolatedConfigLoader {
        if let raw = getenv("SUNDIAL_LOADER_COMMAND") {
            let words = String(cString: raw).split(separator: " ").map(String.init)
            if !words.isEmpty { return IsolatedConfigLoader(command: words) }
        }
        return IsolatedConfigLoader()
    }

    /// Loads `paths` in a child. Never throws: a failure is a result with one diagnostic.
    ///
    /// The child is offered the files of the last valid load (``LoaderMemo``) and parses only
    /// those that changed; the result is the one a fresh load would give.
    public func load(paths: [String]) -> ConfigLoadResult {
        // A copy: a load that runs beside another (none does in the agent) assembles against
        // the very memo its request came from.
        var known = memo.withLock { $0 }
        // The request in a memory file, so that nothing has to feed the child while it runs.
        // Without one (nothing remembered, or no memory file to be had) the child parses every
        // file: slower, never wrong.
        let request = known.request()
        let input = request.isEmpty ? -1 : request.withUnsafeBytes { sundial_memfd_with($0.baseAddress, $0.count) }
        defer { if input >= 0 { close(input) } }
        // `--` before the paths: a path that looks like an option is still a path.
        let arguments = command + (input >= 0 ? [LoaderMemo.requestFlag] : []) + ["--"] + paths
        switch run(arguments: arguments, input: input) {
        case let .success(bytes):
            do throws(LoaderWire.DecodeError) {
                let result = try known.result(of: LoaderWire.decodeAnswer(bytes, maxBytes: limits.maxAnswerBytes))
                memo.withLock { $0 = known }
                return result
            } catch {
                return failed(.badAnswer(error.description), paths: paths)
            }
        case let .failure(f):
            return failed(f, paths: paths)
        }
    }

    /// How many files the next load may take as they are (for tests and benchmarks).
    public var reusableFiles: Int { memo.withLock { $0.count } }
    /// How many files the last valid load took as they were, unparsed.
    public var reusedInLastLoad: Int { memo.withLock { $0.reusedInLastLoad } }

    func failed(_ failure: Failure, paths: [String]) -> ConfigLoadResult {
        ConfigLoadResult(
            jobSet: nil,
            diagnostics: [
                Diagnostic(at: SourceLocation(file: paths.first ?? ".", line: 1, column: 1), failure.description, hint: failure.hint)
            ])
    }

    // MARK: - The child

    /// Runs the child to completion: its standard output (the answer) or why there is none.
    /// `input`: a descriptor for its standard input (-1: /dev/null), left open.
    func run(arguments: [String], input: Int32 = -1) -> Result<[UInt8], Failure> {
        guard let program = arguments.first else { return .failure(.cannotStart("no command")) }
        var pipes: [[Int32]] = []
        defer { for p in pipes { close(p[0]) } }
        for _ in 0..<3 {
            var p: [Int32] = [-1, -1]
            guard sundial_pipe_cloexec(&p) == 0 else {
                for p in pipes { close(p[1]) }
                return .failure(.cannotStart(FileSystem.errnoString()))
            }
            pipes.append(p)
        }
        let (out, err, status) = (pipes[0][0], pipes[1][0], pipes[2][0])
        var c = sundial_isolate_limits(
            address_space_bytes: limits.addressSpaceBytes, cpu_seconds: limits.cpuSeconds,
            stack_bytes: limits.stackBytes, open_files: limits.openFiles, file_size_bytes: 1)
        let argv = CStringArray(arguments)
        let watcher = sundial_spawn_isolated_input(program, argv.pointer, nil, input, pipes[0][1], pipes[1][1], pipes[2][1], &c)
        for p in pipes { close(p[1]) }
        guard watcher > 0 else { return .failure(.cannotStart("\(program): \(FileSystem.errnoString(-watcher))")) }
        for fd in [out, err, status] { _ = fcntl(fd, F_SETFL, O_NONBLOCK) }

        let deadline = sundial_monotonic_ms() + limits.deadlineMs
        var answer: [UInt8] = []
        var stderrTail = BoundedTail(capacity: 4096)
        var report: [UInt8] = []
        var open = [true, true, true]
        var failure: Failure?
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)

        // Reads what is there now; false at EOF.
        func drain(_ fd: Int32, into sink: (ArraySlice<UInt8>) -> Void) -> Bool {
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    sink(buffer[0..<n])
                    continue
                }
                if n == 0 { return false }
                if errno == EINTR { continue }
                return errno == EAGAIN
            }
        }

        // Until the watcher has reported (its status pipe at EOF) and the child's output has
        // ended. The child can only keep the output open while it lives, and it lives no
        // longer than the watcher.
        var outputGraceEnds: Int64?
        while open.contains(true) {
            let now = sundial_monotonic_ms()
            // A descendant of the child (the loader starts none) holding the output after the
            // watcher reported must not keep us waiting: a moment's grace, then what we have.
            if let grace = outputGraceEnds, now >= grace { break }
            let remaining = min(deadline, outputGraceEnds ?? deadline) - now
            if now >= deadline {
                failure = .deadline(ms: limits.deadlineMs)
                break
            }
            var fds = [out, err, status].enumerated().map { i, fd in pollfd(fd: open[i] ? fd : -1, events: Int16(POLLIN), revents: 0) }
            if poll(&fds, 3, Int32(min(remaining, 60_000))) < 0 && errno != EINTR {
                failure = .cannotStart("poll: \(FileSystem.errnoString())")
                break
            }
            if open[0], fds[0].revents != 0 {
                open[0] = drain(out) { answer += $0 }
                if answer.count > limits.maxAnswerBytes {
                    failure = .answerTooLarge(limit: limits.maxAnswerBytes)
                    break
                }
            }
            if open[1], fds[1].revents != 0 { open[1] = drain(err) { stderrTail.append($0) } }
            if open[2], fds[2].revents != 0 {
                open[2] = drain(status) { if report.count < 64 { report += $0 } }
                if !open[2] { outputGraceEnds = sundial_monotonic_ms() + 1000 }
            }
        }
        if failure != nil && open[2] {
            // The watcher is alive while its status pipe is open, so its pid is its own; its
            // death takes the child with it (PR_SET_PDEATHSIG).
            kill(watcher, SIGKILL)
        }
        reapWatcher(watcher)
        if let failure { return .failure(failure) }

        let records = stride(from: 0, to: report.count - report.count % 8, by: 8).map { i in
            report[i..<(i + 8)].withUnsafeBytes { (kind: $0.load(fromByteOffset: 0, as: Int32.self), value: $0.load(fromByteOffset: 4, as: Int32.self)) }
        }
        if let notRun = records.first(where: { $0.kind == 3 }) {
            return .failure(.cannotStart("\(program): \(FileSystem.errnoString(notRun.value))"))
        }
        guard let end = records.first else { return .failure(.cannotStart("the loader's watcher ended without a report")) }
        let detail = stderrTail.lastLine
        if end.kind == 2 {
            if end.value == SIGXCPU { return .failure(.cpuLimit(seconds: limits.cpuSeconds)) }
            // RLIMIT_AS makes allocations fail; the Swift runtime then stops the process and
            // says so on standard error.
            if let detail, detail.contains("allocate") { return .failure(.memoryLimit(bytes: limits.addressSpaceBytes)) }
            return .failure(.crashed(signal: end.value, detail: detail))
        }
        guard end.value == 0 else { return .failure(.exited(code: end.value, detail: detail)) }
        return .success(answer)
    }

    /// Reaps the watcher unless the agent's job runner (a subreaper reaping every child) already
    /// did. Bounded: it exits right after its report; a runner that reaped it leaves ECHILD.
    private func reapWatcher(_ pid: Int32) {
        for _ in 0..<200 {
            var st: Int32 = 0
            let r = waitpid(pid, &st, WNOHANG)
            if r == pid || (r < 0 && errno != EINTR) { return }
            usleep(1000)
        }
    }
}

/// The last bytes of a stream (a child's standard error), for its final line.
struct BoundedTail {
    let capacity: Int
    private(set) var bytes: [UInt8] = []

    init(capacity: Int) { self.capacity = capacity }

    mutating func append(_ chunk: ArraySlice<UInt8>) {
        bytes += chunk.suffix(capacity)
        if bytes.count > capacity { bytes.removeFirst(bytes.count - capacity) }
    }

    /// The last non-empty line, printable and at most 300 bytes (a Swift runtime error says
    /// "Fatal error: …" there).
    var lastLine: String? {
        let lines = bytes.split(separator: 0x0A).map { String(decoding: $0, as: UTF8.self) }
        guard let last = lines.last(where: { !$0.allSatisfy(\.isWhitespace) }) else { return nil }
        let clean = String(last.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : Character($0) })
        return clean.count > 300 ? String(clean.prefix(300)) + "…" : clean
    }
}

/// `SIGSEGV` for 11: how people know signals (`kill -l`).
func signalName(_ signal: Int32) -> String {
    let names: [Int32: String] = [
        SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGTRAP: "SIGTRAP", SIGABRT: "SIGABRT",
        SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGUSR1: "SIGUSR1", SIGSEGV: "SIGSEGV", SIGUSR2: "SIGUSR2",
        SIGPIPE: "SIGPIPE", SIGALRM: "SIGALRM", SIGTERM: "SIGTERM", SIGXCPU: "SIGXCPU", SIGXFSZ: "SIGXFSZ", SIGSYS: "SIGSYS",
    ]
    return names[signal] ?? "signal \(signal)"
}
