import CSundialShim
import SundialCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One webhook POST (http:// or https://), made by a short-lived child process — this binary
/// as `sundial internal-webhook` — with libcurl, and cut at the entry's `timeout`.
///
/// Why a child: the TLS handshake and the answer come from a remote server, so they are parsed
/// in a process that can crash, hang or bloat without harm (resource limits, killed at the
/// deadline), as the configuration loader is (``IsolatedConfigLoader``). The kill bounds every
/// step, the host-name lookup included, which no socket timeout in this process could
/// (`getaddrinfo` cannot be interrupted). And libcurl with its TLS library is only ever mapped
/// into that child: an agent that never sends a webhook maps neither.
///
/// The request goes on the child's standard input (headers may hold a token, which an argument
/// would show to every user in /proc/PID/cmdline), the answer is one line on its standard
/// output (``WebhookWire``). A 2xx status is a delivery; anything else is a failure with its
/// reason, retried by the caller with backoff (``DeliveryAttempts``). Blocking: runs on the
/// notifier's thread. Started under a watcher (``sundial_spawn_isolated_input``) because the
/// agent's job runner reaps every child.
public struct WebhookDelivery: Sendable {
    public var spec: WebhookSpec
    /// The child's command line: this binary by default (`/proc/self/exe` names the running
    /// build even after a package upgrade replaced the file). Tests stand other programs in.
    public var command: [String]

    public init(spec: WebhookSpec, command: [String] = ["/proc/self/exe", "internal-webhook"]) {
        self.spec = spec
        self.command = command
    }

    /// The Debian package that provides libcurl.so.4, named in the failure when it is missing.
    static let libraryPackage = "libcurl4"

    public func post(body: [UInt8], signatureKey: [UInt8]?) -> DeliveryResult {
        do throws(WebhookURL.ParseError) { _ = try WebhookURL.parse(spec.url) } catch {
            return .failed(reason: "invalid url: \(error.description)")
        }
        let started = sundial_monotonic_ms()
        let deadline = started + spec.timeoutMs
        let request = WebhookWire.Request(
            url: spec.url, caFile: spec.caFile, timeoutMs: Self.libcurlTimeoutMs(spec.timeoutMs),
            headers: WebhookRequest.headerFields(headers: spec.headers, body: body, signatureKey: signatureKey), body: body)
        let bytes = WebhookWire.encode(request)
        guard bytes.count <= WebhookWire.maxRequestBytes else { return .failed(reason: "the request is larger than \(WebhookWire.maxRequestBytes) bytes") }
        switch run(input: bytes, deadline: deadline) {
        case let .failure(error): return .failed(reason: error.description)
        case let .success(answer):
            switch answer {
            case let .status(code):
                return (200..<300).contains(code) ? .sent(detail: "HTTP \(code)") : .failed(reason: "HTTP \(code)")
            case let .failed(reason):
                // A private CA is the usual cause of a verification failure on a box whose
                // system store is fine: say where the fix goes.
                if spec.caFile == nil && reason.contains("certificate problem") {
                    return .failed(reason: reason + " (a receiver with a private CA needs `ca_file:`)")
                }
                return .failed(reason: reason)
            case let .noLibrary(reason):
                return .failed(
                    reason: "cannot load libcurl (\(reason)); install Debian's \(Self.libraryPackage) package: apt-get install \(Self.libraryPackage)")
            }
        }
    }

    /// libcurl's own timeout: a little inside the entry's, so that its reason ("Connection
    /// timed out after …", "SSL connection timeout") usually arrives before the kill, which
    /// stays the bound.
    static func libcurlTimeoutMs(_ timeoutMs: Int64) -> Int64 {
        max(1, timeoutMs - min(250, timeoutMs / 4))
    }

    /// The child's limits: libcurl with OpenSSL and a resolver thread need some 100 MiB of
    /// address space; a POST needs well under a second of CPU.
    static let limits = sundial_isolate_limits(
        address_space_bytes: 1 << 30, cpu_seconds: 30, stack_bytes: 8 << 20,
        open_files: 64, file_size_bytes: 1)

    private func timeoutReason() -> String {
        "timed out after \(DurationParser.format(milliseconds: spec.timeoutMs)) (the delivery process was killed)"
    }

    /// Runs the child with `input` on its standard input until it answers, ends, or `deadline`
    /// passes (then it is killed): its answer, or why there is none.
    func run(input: [UInt8], deadline: Int64) -> Result<WebhookWire.Answer, DeliveryError> {
        guard let program = command.first else { return .failure(DeliveryError("no delivery command")) }
        var fds: [[Int32]] = []
        defer {
            for p in fds {
                if p[0] >= 0 { close(p[0]) }
                if p[1] >= 0 { close(p[1]) }
            }
        }
        for _ in 0..<4 {
            var p: [Int32] = [-1, -1]
            guard sundial_pipe_cloexec(&p) == 0 else { return .failure(DeliveryError("pipe: \(FileSystem.errnoString())")) }
            fds.append(p)
        }
        // 0: the request (child reads), 1: the answer, 2: the child's stderr, 3: the watcher's status.
        var limits = Self.limits
        let argv = CStringArray(command)
        let watcher = sundial_spawn_isolated_input(program, argv.pointer, nil, fds[0][0], fds[1][1], fds[2][1], fds[3][1], &limits)
        // Those ends are the watcher's now.
        close(fds[0][0])
        fds[0][0] = -1
        for i in 1...3 {
            close(fds[i][1])
            fds[i][1] = -1
        }
        guard watcher > 0 else { return .failure(DeliveryError("\(program): \(FileSystem.errnoString(-watcher))")) }
        for fd in [fds[0][1], fds[1][0], fds[2][0], fds[3][0]] { _ = fcntl(fd, F_SETFL, O_NONBLOCK) }

        var sent = 0
        var answer: [UInt8] = []
        var stderrTail = BoundedTail(capacity: 2048)
        var report: [UInt8] = []
        // The request pipe, the answer, stderr, the status.
        var open = [true, true, true, true]
        var buffer = [UInt8](repeating: 0, count: 4096)
        var timedOut = false
        var graceEnds: Int64?
        while open[1...].contains(true) {
            let now = sundial_monotonic_ms()
            if now >= deadline {
                timedOut = true
                break
            }
            if let g = graceEnds, now >= g { break }
            var p = (0..<4).map { i in
                pollfd(fd: open[i] ? (i == 0 ? fds[0][1] : fds[i][0]) : -1, events: Int16(i == 0 ? POLLOUT : POLLIN), revents: 0)
            }
            _ = poll(&p, 4, Int32(min(min(deadline, graceEnds ?? deadline) - now, 60_000)))
            if open[0], p[0].revents != 0 {
                let n = input.withUnsafeBytes { write(fds[0][1], $0.baseAddress! + sent, $0.count - sent) }
                if n > 0 { sent += n }
                // Everything written, or the child closed its input (it ended): no more to send.
                if sent == input.count || (n < 0 && errno != EAGAIN && errno != EINTR) {
                    close(fds[0][1])
                    fds[0][1] = -1
                    open[0] = false
                }
            }
            for i in 1...3 where open[i] && p[i].revents != 0 {
                while true {
                    let n = buffer.withUnsafeMutableBytes { read(fds[i][0], $0.baseAddress, $0.count) }
                    if n > 0 {
                        switch i {
                        case 1: if answer.count < WebhookWire.maxAnswerBytes { answer += buffer[0..<min(n, WebhookWire.maxAnswerBytes - answer.count)] }
                        case 2: stderrTail.append(buffer[0..<n])
                        default: if report.count < 64 { report += buffer[0..<n] }
                        }
                        continue
                    }
                    if n == 0 {
                        open[i] = false
                        if i == 3 { graceEnds = sundial_monotonic_ms() + 500 }
                    } else if errno == EINTR {
                        continue
                    }
                    break
                }
            }
        }
        // The watcher is alive while its status pipe is open, so its pid is its own; its death
        // takes the child with it (PR_SET_PDEATHSIG).
        if open[3] { kill(watcher, SIGKILL) }
        var st: Int32 = 0
        // Bounded: the watcher is dead or about to be; a job runner that reaped it leaves ECHILD.
        while waitpid(watcher, &st, 0) < 0 && errno == EINTR {}
        if timedOut && open[3] { return .failure(DeliveryError(timeoutReason())) }

        if let decoded = try? WebhookWire.decode(answer: answer) { return .success(decoded) }
        guard report.count >= 8 else { return .failure(DeliveryError("the webhook delivery process ended without a report")) }
        let kind = report.withUnsafeBytes { $0.load(fromByteOffset: 0, as: Int32.self) }
        let value = report.withUnsafeBytes { $0.load(fromByteOffset: 4, as: Int32.self) }
        let said = stderrTail.lastLine.map { ": \($0)" } ?? ""
        switch kind {
        case 1: return .failure(DeliveryError("the webhook delivery process exited \(value) without an answer\(said)"))
        case 2: return .failure(DeliveryError("the webhook delivery process was killed by \(signalName(value))\(said)"))
        default: return .failure(DeliveryError("\(program): \(FileSystem.errnoString(value))"))
        }
    }

    struct DeliveryError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }
}
