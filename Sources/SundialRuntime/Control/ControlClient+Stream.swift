import SundialCore

#if canImport(Glibc)
import Glibc
#endif

extension ControlClient {
    /// How long a streaming client waits for the next line before it takes the agent for dead:
    /// three keepalive intervals, so one late keepalive (a busy machine) is not mistaken for it.
    public static let streamIdleTimeout: Duration = ControlServer.defaultKeepaliveInterval * 3

    /// How a stream ended, seen from the client.
    public enum StreamEnd: Hashable, Sendable {
        /// The reply did not start a stream (a skipped trigger, an error reply).
        case noStream
        /// The followed run ended.
        case ended(ControlStreamMessage.RunEnd)
        /// The agent dropped this client for reading too slowly.
        case dropped(reason: String)
        /// The connection closed without an end (the agent stopped).
        case closed
    }

    /// Sends a streaming request (``ControlRequest/streams``), hands the reply to `onReply`, then
    /// each stream line to `onMessage` (keepalives included) until the run ends, the agent drops
    /// the client or the connection closes. Blocking; lines are bounded by ``maxReplyBytes``, and
    /// the wait for each line by `idleTimeout` (keepalives arrive every 15 s).
    ///
    /// - Throws: ``ControlClientError`` as ``send(_:)`` does, and `.timeout` when no line arrives
    ///   within `idleTimeout`.
    public func stream(
        _ request: ControlRequest, idleTimeout: Duration = ControlClient.streamIdleTimeout,
        onReply: (ControlResponse) -> Void,
        onMessage: (ControlStreamMessage) -> Void
    ) throws(ControlClientError) -> StreamEnd {
        let fd = try connect()
        defer { close(fd) }
        let sent = UnixSocket.writeAll(fd, request.line)
        let writeError = sent ? "" : errnoText()
        var reader = LineReader(fd: fd, maxLineBytes: maxReplyBytes)
        let first: [UInt8]
        switch reader.next() {
        case let .line(l): first = l
        case .timeout: throw ControlClientError(.timeout, path: path, message: "no reply within \(timeout)")
        case .tooLong: throw ControlClientError(.protocolError, path: path, message: "reply larger than \(maxReplyBytes) bytes")
        case .closed:
            let why = sent ? "" : " (\(writeError))"
            throw ControlClientError(.unreachable, path: path, message: "the agent closed the connection without a reply\(why)")
        }
        let response: ControlResponse
        do { response = try ControlResponse(line: first) } catch {
            throw ControlClientError(.protocolError, path: path, message: error.message)
        }
        onReply(response)
        guard response.startsStream else { return .noStream }
        UnixSocket.setTimeouts(fd, idleTimeout)
        while true {
            switch reader.next() {
            case .closed: return .closed
            case .timeout:
                throw ControlClientError(.timeout, path: path, message: "nothing from the agent for \(idleTimeout) (not even a keepalive)")
            case .tooLong:
                throw ControlClientError(.protocolError, path: path, message: "a stream line larger than \(maxReplyBytes) bytes")
            case let .line(bytes):
                let message: ControlStreamMessage
                do { message = try ControlStreamMessage(line: bytes) } catch {
                    throw ControlClientError(.protocolError, path: path, message: error.message)
                }
                onMessage(message)
                switch message {
                case let .ended(end): return .ended(end)
                case let .dropped(reason): return .dropped(reason: reason)
                default: continue
                }
            }
        }
    }

    /// ``stream(_:idleTimeout:onReply:onMessage:)`` on a thread of its own (see
    /// ``response(to:)``), for async callers. The callbacks run on that thread.
    public func streamed(
        _ request: ControlRequest, idleTimeout: Duration = ControlClient.streamIdleTimeout,
        onReply: @escaping @Sendable (ControlResponse) -> Void,
        onMessage: @escaping @Sendable (ControlStreamMessage) -> Void
    ) async throws(ControlClientError) -> StreamEnd {
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<StreamEnd, ControlClientError>, Never>) in
            let started = DetachedThread.run("sundial-ctl-stream") {
                do throws(ControlClientError) {
                    c.resume(returning: .success(try stream(request, idleTimeout: idleTimeout, onReply: onReply, onMessage: onMessage)))
                } catch {
                    c.resume(returning: .failure(error))
                }
            }
            if !started {
                c.resume(returning: .failure(ControlClientError(.unreachable, path: path, message: "cannot start a thread: \(errnoText())")))
            }
        }
        return try result.get()
    }
}

/// Reads newline-terminated lines from a blocking socket whose reads time out (SO_RCVTIMEO).
struct LineReader {
    enum Next {
        case line([UInt8])
        case closed, timeout, tooLong
    }

    let fd: Int32
    let maxLineBytes: Int
    private var buffer: [UInt8] = []
    private var chunk = [UInt8](repeating: 0, count: 65_536)

    init(fd: Int32, maxLineBytes: Int) {
        self.fd = fd
        self.maxLineBytes = maxLineBytes
    }

    mutating func next() -> Next {
        while true {
            if let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(buffer[..<nl])
                buffer.removeSubrange(...nl)
                return .line(line)
            }
            if buffer.count > maxLineBytes { return .tooLong }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return .timeout }
            if n <= 0 { return .closed }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }
}
