#if canImport(Glibc)
import Glibc
#endif
import CSundialShim
import Dispatch
import Synchronization
import SundialCore

/// The agent's control socket (design §4, issue 7): a Unix stream socket, mode 0600, speaking one
/// JSON object per line each way (``ControlRequest``, ``ControlResponse``).
///
/// Bounded everywhere, because a misbehaving client must never hurt the scheduler:
/// - peers are checked with `SO_PEERCRED`: only root and the agent's own uid are served (the
///   0600 mode already keeps others out; the check also covers a socket moved or re-moded);
/// - a request line is at most ``Options/maxRequestBytes`` (64 KiB); a longer one gets an error
///   reply and the connection is closed (there is no way to find the next line);
/// - malformed JSON or an unknown op gets an error reply and the connection keeps serving;
/// - at most ``Options/maxClients`` connections are served at once, each on its own thread (the
///   handler bridge blocks it, never a Swift concurrency thread); a further one gets an error
///   reply and is closed;
/// - a connection idle for ``Options/ioTimeout`` is closed; a handler that does not answer within
///   ``Options/handlerTimeout`` yields an error reply.
public final class ControlServer: Sendable {
    public struct Options: Hashable, Sendable {
        public var maxRequestBytes = 64 * 1024
        public var maxClients = 16
        public var ioTimeout: Duration = .seconds(10)
        public var handlerTimeout: Duration = .seconds(10)
        /// Uids allowed to talk to the agent; `nil` means root and the agent's own uid.
        public var allowedUIDs: Set<UInt32>?
        public init() {}
    }

    public let path: String
    public let options: Options
    private let handler: any ControlHandler
    private let state = Mutex(State())
    private let acceptLoopDone = DispatchSemaphore(value: 0)

    private struct State {
        var listenFD: Int32 = -1
        var wakePipe: (read: Int32, write: Int32) = (-1, -1)
        var clients = 0
        var running = false
    }

    public init(path: String, handler: any ControlHandler, options: Options = Options()) {
        self.path = path
        self.handler = handler
        self.options = options
    }

    deinit { stop() }

    /// Binds the socket and starts serving on a thread of its own.
    ///
    /// A stale socket file (no agent answering) is replaced; a live one is an error, and so is
    /// any other kind of file at `path` (it is never deleted).
    /// - Throws: ``ControlServerError`` naming the path.
    public func start() throws {
        try removeStaleSocket()
        let fd: Int32
        do { fd = try UnixSocket.make() } catch { throw ControlServerError(path: path, message: error.description) }
        // fchmod before bind: Linux creates the socket file with the socket inode's mode, so
        // there is no moment when the file is more open than 0600. chmod after, for good measure.
        _ = fchmod(fd, 0o600)
        do {
            let rc = try UnixSocket.withAddress(path) { bind(fd, $0, $1) }
            if rc != 0 { throw UnixSocket.Failure(call: "bind", errnoValue: errno) }
        } catch {
            close(fd)
            throw ControlServerError(path: path, message: "\(error)")
        }
        _ = chmod(path, 0o600)
        guard listen(fd, 64) == 0 else {
            let e = errnoText()
            close(fd)
            throw ControlServerError(path: path, message: "listen: \(e)")
        }
        var fds: [Int32] = [-1, -1]
        guard sundial_pipe_cloexec(&fds) == 0 else {
            close(fd)
            throw ControlServerError(path: path, message: "pipe: \(errnoText())")
        }
        let wake = (read: fds[0], write: fds[1])
        state.withLock {
            $0.listenFD = fd
            $0.wakePipe = wake
            $0.running = true
        }
        DetachedThread.run("sundial-control") { [self] in acceptLoop(listenFD: fd, wakeFD: wake.read) }
    }

    /// Stops accepting, removes the socket file and returns once the accept loop has ended.
    /// Connections being served finish on their own (bounded by the timeouts).
    public func stop() {
        let wake: Int32? = state.withLock { s in
            guard s.running else { return nil }
            s.running = false
            return s.wakePipe.write
        }
        guard let wake else { return }
        var b: UInt8 = 1
        _ = write(wake, &b, 1)
        acceptLoopDone.wait()
        state.withLock { s in
            close(s.listenFD)
            close(s.wakePipe.read)
            close(s.wakePipe.write)
            s.listenFD = -1
        }
        unlink(path)
    }

    /// Connections being served right now.
    public var activeClients: Int { state.withLock { $0.clients } }

    // MARK: - Accepting

    private func acceptLoop(listenFD: Int32, wakeFD: Int32) {
        defer { acceptLoopDone.signal() }
        var fds = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        while true {
            let n = poll(&fds, 2, -1)
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            if fds[1].revents != 0 { return }
            guard fds[0].revents != 0 else { continue }
            let client = sundial_accept_cloexec(listenFD)
            if client < 0 {
                // Out of descriptors: the connection stays queued and poll would spin; pause.
                if errno == EMFILE || errno == ENFILE { usleep(50_000) }
                continue  // EINTR, ECONNABORTED...: keep serving
            }
            UnixSocket.setTimeouts(client, options.ioTimeout)
            if let refusal = refusal(of: client) {
                _ = UnixSocket.writeAll(client, Self.line(.failure(refusal)))
                close(client)
                continue
            }
            let admitted = state.withLock { s in
                guard s.clients < options.maxClients else { return false }
                s.clients += 1
                return true
            }
            guard admitted else {
                _ = UnixSocket.writeAll(client, Self.line(.failure("too many clients (at most \(options.maxClients)); try again")))
                close(client)
                continue
            }
            let started = DetachedThread.run("sundial-client") { [self] in
                serve(client)
                close(client)
                state.withLock { $0.clients -= 1 }
            }
            if !started {
                close(client)
                state.withLock { $0.clients -= 1 }
            }
        }
    }

    /// Why a peer may not talk to the agent, or nil.
    private func refusal(of fd: Int32) -> String? {
        var uid: UInt32 = 0, gid: UInt32 = 0, pid: Int32 = 0
        guard sundial_peer_credentials(fd, &uid, &gid, &pid) == 0 else { return "cannot identify the peer: \(errnoText())" }
        let allowed = options.allowedUIDs ?? [0, getuid()]
        return allowed.contains(uid) ? nil : "permission denied: uid \(uid) may not control this agent"
    }

    // MARK: - One connection

    private func serve(_ fd: Int32) {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            // Answer every complete line already buffered.
            while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                guard let reply = answer(line) else { continue }
                if !UnixSocket.writeAll(fd, Self.line(reply)) { return }
            }
            if buffer.count > options.maxRequestBytes {
                _ = UnixSocket.writeAll(fd, Self.line(.failure("request too large (at most \(options.maxRequestBytes) bytes per line)")))
                return
            }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }  // EOF, idle timeout or error
            buffer.append(contentsOf: chunk[0..<n])
        }
    }

    /// The reply to one request line; nil for a blank line.
    private func answer(_ line: [UInt8]) -> ControlResponse? {
        var line = line
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        if line.allSatisfy({ $0 == 32 || $0 == 9 }) { return nil }
        if line.count > options.maxRequestBytes {
            return .failure("request too large (at most \(options.maxRequestBytes) bytes per line)")
        }
        let request: ControlRequest
        do { request = try ControlRequest(line: line) } catch { return .failure(error.message) }
        return callHandler(request)
    }

    /// Runs the async handler from this connection's own thread, bounded by `handlerTimeout`.
    private func callHandler(_ request: ControlRequest) -> ControlResponse {
        let result = Mutex<ControlResponse?>(nil)
        let done = DispatchSemaphore(value: 0)
        let handler = self.handler
        let task = Task {
            let r = await handler.handle(request)
            result.withLock { $0 = r }
            done.signal()
        }
        let ms = Int(options.handlerTimeout.milliseconds)
        if done.wait(timeout: .now() + .milliseconds(ms)) == .timedOut {
            task.cancel()
            return .failure("the agent did not answer \(request.op) within \(ms) ms")
        }
        return result.withLock { $0 } ?? .failure("no answer")
    }

    static func line(_ r: ControlResponse) -> [UInt8] { r.line }

    private func removeStaleSocket() throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw ControlServerError(path: path, message: "exists and is not a socket; not replacing it")
        }
        if (try? ControlClient(path: path, timeout: .milliseconds(500)).connect()).map({ close($0) }) != nil {
            throw ControlServerError(path: path, message: "another agent is answering on it")
        }
        unlink(path)
    }
}

/// The control socket could not be set up.
public struct ControlServerError: Error, Hashable, Sendable, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { "control socket \(path): \(message)" }
}
