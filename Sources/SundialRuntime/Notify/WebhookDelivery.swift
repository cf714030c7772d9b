#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSundialShim
import SundialCore

/// One webhook POST over plain HTTP/1.1: resolve, connect, send, read the status line, all
/// within the entry's `timeout`. Blocking (the notifier's thread); a non-blocking socket with
/// `poll` so that no step can wait past the deadline.
///
/// A 2xx status is a delivery. Anything else (refused, reset, timeout, another status) is a
/// failure with its reason; the caller retries with backoff (``DeliveryAttempts``).
public struct WebhookDelivery: Sendable {
    public var spec: WebhookSpec
    /// At most this much of the answer is read (the status line is all that matters).
    static let maxAnswerBytes = 16 * 1024

    public init(spec: WebhookSpec) { self.spec = spec }

    public func post(body: [UInt8], signatureKey: [UInt8]?) -> DeliveryResult {
        let url: WebhookURL
        do throws(WebhookURL.ParseError) { url = try WebhookURL.parse(spec.url) } catch {
            return .failed(reason: "invalid url: \(error.description)")
        }
        // Validation refuses https://; an entry from an older or hand-made set still must not
        // send the facts in clear text to a server expecting TLS.
        guard !url.isTLS else { return .failed(reason: "https:// is not supported (no TLS library); use a command with curl") }
        let request = WebhookRequest.bytes(url: url, headers: spec.headers, body: body, signatureKey: signatureKey)
        let deadline = sundial_monotonic_ms() + spec.timeoutMs
        let fd: Int32
        switch connect(url, deadline: deadline) {
        case let .success(f): fd = f
        case let .failure(e): return .failed(reason: e.description)
        }
        defer { close(fd) }
        var sent = 0
        while sent < request.count {
            guard wait(fd, for: Int16(POLLOUT), until: deadline) else { return .failed(reason: timeoutReason("sending")) }
            let n = request.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return .failed(reason: "send: \(FileSystem.errnoString())")
            }
            sent += n
        }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while WebhookRequest.status(of: answer[...]) == nil {
            guard answer.count < Self.maxAnswerBytes else { return .failed(reason: "the answer has no HTTP status line") }
            guard wait(fd, for: Int16(POLLIN), until: deadline) else { return .failed(reason: timeoutReason("waiting for the answer")) }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return .failed(reason: "receive: \(FileSystem.errnoString())")
            }
            if n == 0 { return .failed(reason: answer.isEmpty ? "the server closed the connection without an answer" : "the answer has no HTTP status line") }
            answer += buffer[0..<n]
        }
        let status = WebhookRequest.status(of: answer[...])!
        return (200..<300).contains(status) ? .sent(detail: "HTTP \(status)") : .failed(reason: "HTTP \(status)")
    }

    private func timeoutReason(_ doing: String) -> String {
        "timed out after \(DurationParser.format(milliseconds: spec.timeoutMs)) \(doing)"
    }

    struct NetError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    /// A connected non-blocking socket to the first address of `url.host` that accepts.
    private func connect(_ url: WebhookURL, deadline: Int64) -> Result<Int32, NetError> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(url.host, String(url.port), &hints, &list)
        guard rc == 0, let first = list else {
            return .failure(NetError("cannot resolve \(url.host): \(String(cString: gai_strerror(rc)))"))
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let ai = cursor {
            cursor = ai.pointee.ai_next
            let fd = socket(ai.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard fd >= 0 else { lastError = "socket: \(FileSystem.errnoString())"; continue }
            if Glibc.connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 { return .success(fd) }
            guard errno == EINPROGRESS else {
                lastError = "connect to \(url.hostHeader): \(FileSystem.errnoString())"
                close(fd)
                continue
            }
            guard wait(fd, for: Int16(POLLOUT), until: deadline) else {
                close(fd)
                return .failure(NetError("connect to \(url.hostHeader): " + timeoutReason("connecting")))
            }
            var err: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
            if err == 0 { return .success(fd) }
            lastError = "connect to \(url.hostHeader): \(FileSystem.errnoString(err))"
            close(fd)
        }
        return .failure(NetError(lastError))
    }

    /// Waits until `fd` is ready for `events`; false at the deadline.
    private func wait(_ fd: Int32, for events: Int16, until deadline: Int64) -> Bool {
        while true {
            let remaining = deadline - sundial_monotonic_ms()
            guard remaining > 0 else { return false }
            var p = pollfd(fd: fd, events: events, revents: 0)
            let r = poll(&p, 1, Int32(min(remaining, 60_000)))
            if r > 0 { return true }
            if r < 0 && errno != EINTR { return true }  // let the next call report the error
        }
    }
}
