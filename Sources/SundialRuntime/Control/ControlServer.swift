import CSundialShim
import SundialCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The agent's control socket (design §4, issue 7): a Unix stream socket, mode 0600, speaking one
/// JSON object per line each way (``ControlRequest``, ``ControlResponse``).
///
/// One loop (``ControlEventLoop``, served by the agent's ``EventLoop``: no thread of its own)
/// serves every connection with epoll on non-blocking sockets, so a slow or stalled client
/// never holds up another, and the agent
/// is asked asynchronously (its handler runs as a task; the loop never waits for it). Bounded
/// everywhere, because a misbehaving client must never hurt the scheduler:
/// - peers are checked with `SO_PEERCRED`: only root and the agent's own uid are served (the
///   0600 mode already keeps others out; the check also covers a socket moved or re-moded);
/// - every connection has one deadline per phase, never extended by the peer's activity:
///   ``Options/requestTimeout`` to send a complete request line (a client trickling bytes is
///   closed when it runs out), ``Options/handlerTimeout`` for the agent to answer (then an error
///   reply), ``Options/writeTimeout`` to take the reply; after a reply the next request on the
///   same connection gets a fresh ``Options/requestTimeout``;
/// - a request line is at most ``Options/maxRequestBytes`` (64 KiB); a longer one gets an error
///   reply and the connection is closed (there is no way to find the next line); a reply is at
///   most ``Options/maxReplyBytes``;
/// - malformed JSON or an unknown op gets an error reply and the connection keeps serving;
/// - at most ``Options/maxClients`` connections are held; when full, the oldest one still
///   waiting for its request is closed to make room (so clients that connect and trickle cannot
///   lock out a well-behaved one), and only when none is waiting is the newcomer turned away
///   (see ``ConnectionTable``); at most that many requests are with the agent at once;
/// - a streaming request (`trigger --wait`, `follow`) keeps its connection after the reply,
///   relaying the agent's ``ControlStream`` (bounded; a client that reads too slowly is dropped,
///   the agent never waits for it), with keepalives every ``Options/keepaliveInterval`` of silence
///   and ``Options/writeTimeout`` per batch of lines.
public final class ControlServer: Sendable {
    /// How long a client has to send a complete request line, counted from the connection (or
    /// the previous reply), not per read: the real client sends its request as it connects, so
    /// seconds are plenty, and a client trickling a byte now and then is closed when they end.
    public static let defaultRequestTimeout: Duration = .seconds(3)
    /// How long the agent may take to answer one request before the client gets an error reply.
    /// Generous: a `reload` parses every job file.
    public static let defaultHandlerTimeout: Duration = .seconds(10)
    /// How long a client has to take its reply (a `status` of 1,000 jobs is a few hundred KiB).
    public static let defaultWriteTimeout: Duration = .seconds(5)
    /// Connections held at once: far more than operators and scripts need, few enough that the
    /// buffers (at most 64 KiB each while reading) stay small and the descriptors leave room for
    /// jobs under a default 1,024-descriptor limit.
    public static let defaultMaxClients = 128
    /// How long a streaming connection stays silent before the server sends a `keepalive` line.
    ///
    /// Why: a followed run may print nothing for hours, and a client cannot tell that from an
    /// agent that died without closing the socket (a frozen process, a stopped container). With
    /// a line at least this often, the client bounds its wait for the next line by a few
    /// intervals (``ControlClient/streamIdleTimeout``, 3×) and reports a dead agent instead of
    /// hanging forever. The server's side is bounded the other way: each batch of lines must be
    /// taken within ``Options/writeTimeout``, keepalives included, so a client that stops reading
    /// is dropped within keepalive + write timeout even when the run is silent.
    public static let defaultKeepaliveInterval: Duration = .seconds(15)

    public struct Options: Hashable, Sendable {
        public var maxRequestBytes = 64 * 1024
        /// The largest reply sent; larger ones become an error reply (the client takes 16 MiB).
        public var maxReplyBytes = 16 * 1024 * 1024
        /// Reply bytes all connections together may hold before their clients take them; a reply
        /// that would pass it becomes a "busy, try again" error.
        public var maxHeldReplyBytes = 64 * 1024 * 1024
        public var maxClients = ControlServer.defaultMaxClients
        public var requestTimeout = ControlServer.defaultRequestTimeout
        public var handlerTimeout = ControlServer.defaultHandlerTimeout
        public var writeTimeout = ControlServer.defaultWriteTimeout
        /// Silence on a streaming connection before a `keepalive` line (``defaultKeepaliveInterval``).
        public var keepaliveInterval = ControlServer.defaultKeepaliveInterval
        /// Bytes a stream may hold for a client that has not taken them; beyond it the client is
        /// dropped (``ControlStream``).
        public var maxStreamQueueBytes = ControlStream.defaultMaxQueuedBytes
        /// Uids allowed to talk to the agent; `nil` means root and the agent's own uid.
        public var allowedUIDs: Set<UInt32>?
        public init() {}
    }

    public let path: String
    public let options: Options
    private let handler: any ControlHandler
    private let state = Mutex(State())

    private struct State {
        var listenFD: Int32 = -1
        var inbox: ControlInbox?
        /// While serving: the host loop, the registration, and the server's loop it calls.
        var host: (loop: EventLoop, registration: EventLoop.Registration, server: ControlEventLoop)?
    }

    public init(path: String, handler: any ControlHandler, options: Options = Options()) {
        self.path = path
        self.handler = handler
        self.options = options
    }

    deinit { stop() }

    /// Binds the socket and starts serving on `loop`'s thread (the agent's event loop). Does
    /// nothing when started.
    ///
    /// A stale socket file (no agent answering) is replaced; a live one is an error, and so is
    /// any other kind of file at `path` (it is never deleted).
    /// - Throws: ``ControlServerError`` naming the path.
    public func start(on loop: EventLoop) throws {
        guard state.withLock({ $0.host == nil }) else { return }
        try removeStaleSocket()
        let fd: Int32
        do { fd = try UnixSocket.make(nonBlocking: true) } catch { throw ControlServerError(path: path, message: error.description) }
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
        guard listen(fd, 128) == 0 else {
            let e = errnoText()
            close(fd)
            unlink(path)
            throw ControlServerError(path: path, message: "listen: \(e)")
        }
        let wake = sundial_eventfd()
        guard wake >= 0 else {
            let e = errnoText()
            close(fd)
            unlink(path)
            throw ControlServerError(path: path, message: "eventfd: \(e)")
        }
        let inbox = ControlInbox(wakeFD: wake, maxInFlight: options.maxClients)
        func fail(_ message: String) -> ControlServerError {
            close(wake)
            close(fd)
            unlink(path)
            return ControlServerError(path: path, message: message)
        }
        let server: ControlEventLoop
        do throws(ControlEventLoop.StartError) {
            server = try ControlEventLoop(listenFD: fd, options: options, handler: handler, inbox: inbox)
        } catch {
            throw fail(error.message)
        }
        guard let registration = loop.add(server.pollFD, { server.turn() }) else {
            throw fail("cannot join the event loop: \(errnoText())")
        }
        state.withLock {
            $0.listenFD = fd
            $0.inbox = inbox
            $0.host = (loop, registration, server)
        }
    }

    /// Stops serving, closes every connection (requests being answered are cancelled), removes
    /// the socket file and returns once no turn of the server's loop is in progress.
    public func stop() {
        let running = state.withLock { s -> (ControlInbox, Int32, (loop: EventLoop, registration: EventLoop.Registration, server: ControlEventLoop))? in
            guard let host = s.host, let inbox = s.inbox else { return nil }
            defer { s = State() }
            return (inbox, s.listenFD, host)
        }
        guard let (inbox, listenFD, host) = running else { return }
        inbox.requestStop()
        // Once removed, no turn is in progress (remove waits for one), so the connections can be
        // closed from here.
        host.loop.remove(host.registration, fd: host.server.pollFD)
        host.server.closeAll()
        inbox.close()
        close(inbox.wakeFD)
        close(listenFD)
        unlink(path)
    }

    /// Connections held right now (as of the server's last loop turn).
    public var activeClients: Int { state.withLock { $0.inbox }?.clients.load(ordering: .relaxed) ?? 0 }

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
