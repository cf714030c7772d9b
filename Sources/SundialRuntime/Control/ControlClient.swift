import SundialCore

#if canImport(Glibc)
import Glibc
#endif

/// Talks to a running agent over its control socket: one request, one reply, bounded in time.
public struct ControlClient: Sendable {
    public let path: String
    /// Bounds the connect, the write and the wait for the reply (each read).
    public var timeout: Duration
    /// The largest reply accepted (a `status` of 1,000 jobs is a few hundred KiB).
    public var maxReplyBytes = 16 * 1024 * 1024

    public init(path: String, timeout: Duration = .seconds(10)) {
        self.path = path
        self.timeout = timeout
    }

    /// Sends `request` and returns the agent's reply (which may be a failure reply).
    ///
    /// - Throws: ``ControlClientError`` `.unreachable` when nothing answers on the socket,
    ///   `.timeout`, or `.protocolError` for a reply that is not one.
    public func send(_ request: ControlRequest) throws(ControlClientError) -> ControlResponse {
        let fd = try connect()
        defer { close(fd) }
        let out = request.line
        // A failed write is not the end: an agent that turns a client away (too many clients,
        // wrong uid) writes its reason and closes before reading, so read what it said.
        let sent = UnixSocket.writeAll(fd, out)
        let writeError = sent ? "" : errnoText()
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while buffer.firstIndex(of: UInt8(ascii: "\n")) == nil {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                throw ControlClientError(.timeout, path: path, message: "no reply within \(timeout)")
            }
            if n <= 0 {
                let why = sent ? "" : " (\(writeError))"
                throw ControlClientError(.unreachable, path: path, message: "the agent closed the connection without a reply\(why)")
            }
            buffer.append(contentsOf: chunk[0..<n])
            if buffer.count > maxReplyBytes {
                throw ControlClientError(.protocolError, path: path, message: "reply larger than \(maxReplyBytes) bytes")
            }
        }
        let line = Array(buffer[..<buffer.firstIndex(of: UInt8(ascii: "\n"))!])
        do {
            return try ControlResponse(line: line)
        } catch {
            throw ControlClientError(.protocolError, path: path, message: error.message)
        }
    }

    /// ``send(_:)`` on a thread of its own, for async callers: the blocking socket calls must not
    /// hold one of Swift concurrency's few cooperative threads (the agent's own handler may need
    /// it to answer, when client and server share a process as in tests).
    public func response(to request: ControlRequest) async throws(ControlClientError) -> ControlResponse {
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<ControlResponse, ControlClientError>, Never>) in
            let started = DetachedThread.run("sundial-ctl-send") {
                do throws(ControlClientError) { c.resume(returning: .success(try send(request))) } catch { c.resume(returning: .failure(error)) }
            }
            if !started {
                c.resume(returning: .failure(ControlClientError(.unreachable, path: path, message: "cannot start a thread: \(errnoText())")))
            }
        }
        return try result.get()
    }

    /// A connected socket with the timeouts set.
    func connect() throws(ControlClientError) -> Int32 {
        let fd: Int32
        do { fd = try UnixSocket.make() } catch { throw ControlClientError(.unreachable, path: path, message: error.description) }
        UnixSocket.setTimeouts(fd, timeout)
        let rc: Int32
        do {
            rc = try UnixSocket.withAddress(path) { Glibc.connect(fd, $0, $1) }
        } catch {
            close(fd)
            throw ControlClientError(.unreachable, path: path, message: error.description)
        }
        if rc != 0 {
            let e = errno
            close(fd)
            throw ControlClientError(e == EAGAIN ? .timeout : .unreachable, path: path, message: String(cString: strerror(e)))
        }
        return fd
    }
}

/// The agent could not be asked.
public struct ControlClientError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable {
        /// No agent answers on the socket (no file, connection refused, closed early).
        case unreachable
        /// The agent did not answer in time.
        case timeout
        /// The reply was not a control protocol reply.
        case protocolError
    }
    public var code: Code
    public var path: String
    public var message: String

    public init(_ code: Code, path: String, message: String) {
        self.code = code
        self.path = path
        self.message = message
    }

    public var description: String {
        switch code {
        case .unreachable: "no agent is answering on \(path) (\(message))"
        case .timeout: "the agent on \(path) did not answer in time (\(message))"
        case .protocolError: "unexpected reply from the agent on \(path): \(message)"
        }
    }
}
