import CSundialShim
import Glibc
import SundialCore
import Synchronization

/// A deliberately tiny HTTP/1.1 server for `GET /metrics` on a loopback address.
///
/// Hand-written on sockets rather than SwiftNIO or Hummingbird: those would add minutes of
/// build time and megabytes of binary to an agent that answers one scrape every 15 seconds on
/// an edge box. What it does, and no more:
/// - `GET /metrics` (and `HEAD`) → 200 with the exposition; other paths → 404; other methods
///   → 405; a malformed request → 400; a request head over ``maxRequestBytes`` → 431; an
///   exposition over ``maxResponseBytes`` → 500.
/// - Many connections at once, multiplexed on the metrics exporter's thread with `poll(2)` on
///   non-blocking sockets (the exporter's loop polls the descriptors from
///   ``appendPollDescriptors(to:now:)`` and hands the results to
///   ``handleEvents(_:now:render:)``), so idle or slow clients never delay a scrape.
/// - Each connection has one deadline per phase, never extended by the client's activity:
///   ``requestTimeoutMillis`` to send the request head, then ``responseTimeoutMillis`` to take
///   the response; `Connection: close` on every response.
/// - At most ``maxConnections`` are held; when full, the oldest one still sending its request
///   is closed to make room (see ``ConnectionTable``), and only when none is is the newcomer
///   refused (503). Memory is bounded by that many request heads, and responses by
///   ``maxHeldResponseBytes`` in all (a response that would pass it is a 503 instead).
/// It never runs on Swift's cooperative pool, and with no connection open it adds no timeout to
/// the exporter's `poll` (an idle agent does not wake up).
///
/// **Status pages.** Given ``StatusPages``, it also answers their routes (`/`, `/jobs/{id}`,
/// `/timeline`, `/api/v1/…`). Those need the agent's actor, which this thread must never wait
/// for: the connection is parked (not polled, not evictable), a task asks the agent for a
/// snapshot and renders it off this thread, and hands the answer back through a
/// ``StatusAnswerBox`` whose eventfd wakes the `poll`. The park has its own deadline
/// (``pageTimeoutMillis``, then 503), and at most ``maxPagesInFlight`` renders run at once
/// (more get 503 at once), so a stuck agent costs a bounded number of parked tasks.
public final class MetricsHTTPServer {
    /// The longest request head read; `/metrics` needs a request line and a few headers.
    public static let maxRequestBytes = 8192
    /// How long a client has to send its request head, counted from the connection, not per
    /// read: a scraper sends it at once, so a client still trickling bytes after this is closed.
    public static let requestTimeoutMillis: Int64 = 2000
    /// How long a client has to take the response once it is ready (a few hundred KiB at most).
    public static let responseTimeoutMillis: Int64 = 5000
    /// Connections held at once: more than any set of scrapers needs, few enough to bound
    /// memory and descriptors (see ``ConnectionTable`` for what happens when full).
    public static let maxConnections = 128
    /// The largest response sent; the exposition of thousands of jobs is far smaller.
    public static let maxResponseBytes = 16 * 1024 * 1024
    /// Connections the kernel queues before the server accepts them.
    public static let backlog: Int32 = 128
    /// How long a status page may take the agent to answer and render before the client gets
    /// a 503 (a stopping or stuck agent), counted from when the request is in.
    public static let pageTimeoutMillis: Int64 = 5000
    /// Status pages being rendered at once; more are answered 503 without starting a render.
    public static let maxPagesInFlight = 8
    /// Response bytes all connections together may hold before their clients take them, as
    /// on the control socket: four clients asking for a 6 MB page and never reading took the
    /// agent from 23 to 285 MB, and 128 could have held 2 GiB until their deadlines.
    public static let maxHeldResponseBytes = 64 * 1024 * 1024
    /// When this many bytes were held at once, the heap is trimmed once all are sent or dropped:
    /// glibc keeps freed memory otherwise, and a burst of large pages would stay in the RSS.
    /// (Normal scrapes stay below it: no trim for them.)
    static let trimAfterBytes = 4 * 1024 * 1024
    /// A response this small is never refused for the budget (headers and a line of text).
    static let smallResponseBytes = 4096

    public let address: ListenAddress
    /// The listening socket.
    public let fd: Int32
    /// The bound port (the requested one, or the kernel's choice when 0 was asked).
    public let port: UInt16

    private var table = ConnectionTable<HTTPConnection>(capacity: MetricsHTTPServer.maxConnections)
    private var scratch = [UInt8](repeating: 0, count: NonBlockingSocket.readChunk)
    /// What ``appendPollDescriptors(to:now:)`` added this turn: the listener first (if
    /// `pollsListener`), then these connections, in order.
    private var pollsListener = false
    private var polled: [UInt64] = []
    /// Set when accept ran out of descriptors: the listening socket is not polled until then.
    private var acceptPausedUntil: Int64?
    /// The status pages, if served, and where their answers come back.
    private let pages: StatusPages?
    private let answers: StatusAnswerBox?
    /// The budget for unsent response bytes (``maxHeldResponseBytes`` unless a test sets less).
    let heldBudget: Int
    /// Response bytes set on connections and not yet taken by the socket, and the most there
    /// ever were (tests) and since the heap was last trimmed.
    private(set) var heldResponseBytes = 0
    private(set) var peakHeldResponseBytes = 0
    private var peakSinceTrim = 0
    /// Responses refused because the budget was spent.
    private(set) var busyResponses = 0

    public struct StartError: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Binds and listens.
    /// - Throws: `StartError` when the socket cannot be created, bound (address in use, not
    ///   local) or listened on.
    /// - Parameter maxHeldResponseBytes: the budget for unsent responses (tests set less).
    public init(
        address: ListenAddress, pages: StatusPages? = nil, maxHeldResponseBytes: Int = MetricsHTTPServer.maxHeldResponseBytes
    ) throws(StartError) {
        self.address = address
        self.pages = pages
        self.heldBudget = maxHeldResponseBytes
        if pages != nil {
            guard let box = StatusAnswerBox(capacity: Self.maxPagesInFlight) else {
                throw StartError(description: "cannot create eventfd: \(String(cString: strerror(errno)))")
            }
            answers = box
        } else {
            answers = nil
        }
        let bindAddress = address.bindAddress
        let af = bindAddress.family == .ipv4 ? AF_INET : AF_INET6
        let fd = socket(af, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw StartError(description: "cannot create a socket for \(address): \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var rc: Int32
        switch bindAddress.family {
        case .ipv4:
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = bindAddress.port.bigEndian
            withUnsafeMutableBytes(of: &sa.sin_addr) { $0.copyBytes(from: bindAddress.bytes) }
            rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        case .ipv6:
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = bindAddress.port.bigEndian
            withUnsafeMutableBytes(of: &sa.sin6_addr) { $0.copyBytes(from: bindAddress.bytes) }
            rc = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw StartError(description: "cannot listen on \(address): \(String(cString: strerror(e)))")
        }
        guard listen(fd, Self.backlog) == 0 else {
            let e = errno
            close(fd)
            throw StartError(description: "cannot listen on \(address): \(String(cString: strerror(e)))")
        }
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        let port: UInt16 = withUnsafeBytes(of: &storage) { raw in
            // sin_port and sin6_port both sit at offset 2, in network byte order.
            UInt16(raw[2]) << 8 | UInt16(raw[3])
        }
        self.fd = fd
        self.port = port
    }

    deinit {
        for entry in table.removeAll() { close(entry.fd) }
        close(fd)
    }

    /// Connections held right now.
    public var connectionCount: Int { table.count }

    // MARK: - Driven by the exporter's poll loop

    /// Appends what to poll this turn: the listening socket (unless accepting is paused) and
    /// every connection (for reading its request or writing its response).
    public func appendPollDescriptors(to fds: inout [pollfd], now: Int64) {
        if let until = acceptPausedUntil, now >= until { acceptPausedUntil = nil }
        pollsListener = acceptPausedUntil == nil
        polled.removeAll(keepingCapacity: true)
        if pollsListener { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
        if let answers { fds.append(pollfd(fd: answers.fd, events: Int16(POLLIN), revents: 0)) }
        for entry in table.entries where !entry.state.awaiting {
            fds.append(pollfd(fd: entry.fd, events: Int16(entry.state.isReading ? POLLIN : POLLOUT), revents: 0))
            polled.append(entry.id)
        }
    }

    /// When the exporter's `poll` must wake up for this server (a connection's deadline, the
    /// end of an accept pause); nil when nothing is pending, so the idle server sleeps.
    public var nextDeadline: Int64? {
        guard let paused = acceptPausedUntil else { return table.nextDeadline }
        return min(table.nextDeadline ?? paused, paused)
    }

    /// Serves the ready connections, closes the overdue ones and accepts new ones.
    /// - Parameters:
    ///   - fds: exactly the descriptors ``appendPollDescriptors(to:now:)`` appended, after `poll`
    ///     (all-zero `revents` after a timeout or EINTR).
    ///   - render: produces the exposition; called once per `GET /metrics`.
    public func handleEvents(_ fds: ArraySlice<pollfd>, now: Int64, render: () -> String) {
        var k = fds.startIndex
        var listenerReady = false
        if pollsListener {
            listenerReady = fds[k].revents != 0
            k += 1
        }
        if let answers {
            if fds[k].revents != 0 { deliver(answers.take(), now: now) }
            k += 1
        }
        for id in polled {
            if fds[k].revents != 0 { service(id, now: now, render: render) }
            k += 1
        }
        for id in table.expired(at: now) {
            // A page the agent did not answer in time gets a 503 (with a fresh deadline to take
            // it); anything else past its deadline is closed.
            if let i = table.index(of: id), table[i].state.awaiting, let route = table[i].state.route {
                answer(i, StatusPages.unavailable(route, message: "the agent did not answer within \(Self.pageTimeoutMillis) ms; try again"), now: now)
                continue
            }
            drop(id)
        }
        if listenerReady { acceptBatch(now: now, render: render) }
    }

    private func acceptBatch(now: Int64, render: () -> String) {
        for _ in 0..<NonBlockingSocket.acceptBatch {
            let c: Int32
            switch NonBlockingSocket.accept(fd) {
            case .none: return
            case .exhausted:
                acceptPausedUntil = now + NonBlockingSocket.acceptBackoffMillis
                return
            case let .connection(fd): c = fd
            }
            let admission = table.admit(fd: c, deadline: now + Self.requestTimeoutMillis, state: HTTPConnection(), evictable: \.isReading)
            switch admission {
            case .refused:
                NonBlockingSocket.sayAndClose(c, Self.unavailable)
            case let .admitted(id, evicted):
                if let evicted { NonBlockingSocket.sayAndClose(evicted.fd, Self.unavailable) }
                // A scraper has usually sent its request already: answer it now.
                service(id, now: now, render: render)
            }
        }
    }

    static let unavailable = response(status: 503, reason: "Service Unavailable", body: "too many connections; try again\n", head: false)

    // MARK: - One connection

    private func service(_ id: UInt64, now: Int64, render: () -> String) {
        guard let i = table.index(of: id) else { return }
        guard table[i].state.isReading else {
            flush(id)
            return
        }
        let room = Self.maxRequestBytes - table[i].state.input.count
        switch NonBlockingSocket.read(table[i].fd, appendingTo: &table[i].state.input, scratch: &scratch, limit: room) {
        case .wouldBlock: return
        case .closed:
            drop(id)
            return
        case .read: break
        }
        let head = HTTPRequestHead.parse(table[i].state.input, limit: Self.maxRequestBytes)
        if case .incomplete = head { return }
        table[i].state.input = []
        if let pages, let answers, case let .request(method, target) = head, method == "GET" || method == "HEAD",
            let route = StatusPages.Route(target: target)
        {
            table[i].state.headOnly = method == "HEAD"
            guard answers.begin() else {
                answer(i, StatusPages.unavailable(route, message: "too many status pages are being rendered; try again"), now: now)
                flush(id)
                return
            }
            table[i].state.awaiting = true
            table[i].state.route = route
            table[i].deadline = now + Self.pageTimeoutMillis
            Task.detached {
                let response = await pages.respond(to: route)
                answers.finish(id, response)
            }
            return
        }
        hold(i, Self.response(to: head, render: render, servesPages: pages != nil))
        table[i].deadline = now + Self.responseTimeoutMillis
        flush(id)
    }

    /// Hands finished status pages to their connections (gone ones are skipped) and starts
    /// writing them.
    private func deliver(_ finished: [(UInt64, StatusPages.Response)], now: Int64) {
        for (id, response) in finished {
            guard let i = table.index(of: id), table[i].state.awaiting else { continue }
            answer(i, response, now: now)
            flush(id)
        }
    }

    /// Sets the connection at `i` to write `response` (framed, bounded by ``maxResponseBytes``).
    private func answer(_ i: Int, _ response: StatusPages.Response, now: Int64) {
        let head = table[i].state.headOnly
        table[i].state.awaiting = false
        table[i].state.route = nil
        if response.body.count > Self.maxResponseBytes {
            hold(
                i,
                Self.response(
                    status: 500, reason: "Internal Server Error",
                    body: "the page is larger than \(Self.maxResponseBytes) bytes\n", head: head))
        } else if heldResponseBytes + response.body.count > heldBudget {
            // Checked before framing: the frame would copy the body once more.
            hold(i, busy())
        } else {
            hold(
                i,
                Self.frame(
                    status: response.status, reason: response.reason, body: response.body, head: head,
                    contentType: response.contentType))
        }
        table[i].deadline = now + Self.responseTimeoutMillis
    }

    /// Sets the connection at `i` to write `output`, unless that would pass ``heldBudget``:
    /// then a short 503 instead, at once (the client may try again when others have taken
    /// theirs, or been dropped at their deadlines). Short answers (errors, 503s: at most
    /// ``smallResponseBytes`` for each of ``maxConnections``) always go.
    private func hold(_ i: Int, _ output: [UInt8]) {
        release(table[i].state)
        let output = output.count > Self.smallResponseBytes && heldResponseBytes + output.count > heldBudget ? busy() : output
        table[i].state.output = output
        table[i].state.written = 0
        heldResponseBytes += output.count
        peakHeldResponseBytes = max(peakHeldResponseBytes, heldResponseBytes)
        peakSinceTrim = max(peakSinceTrim, heldResponseBytes)
    }

    private func busy() -> [UInt8] {
        busyResponses += 1
        let mib = heldResponseBytes / (1024 * 1024)
        return Self.response(
            status: 503, reason: "Service Unavailable",
            body: "the agent is busy sending \(mib) MiB of responses to other clients; try again\n", head: false)
    }

    /// Takes a connection's response off the count (it is gone). The whole response counts
    /// until then, sent or not: the buffer stays allocated until the connection ends, and what
    /// the socket took sits in the kernel's buffer on top of it. Once nothing is held after
    /// large responses, gives the freed memory back to the kernel.
    private func release(_ state: HTTPConnection) {
        guard let output = state.output else { return }
        heldResponseBytes -= output.count
        if heldResponseBytes == 0, peakSinceTrim >= Self.trimAfterBytes {
            peakSinceTrim = 0
            _ = sundial_trim_heap()
        }
    }

    /// Writes what the socket takes; once the response is out, ends the connection.
    private func flush(_ id: UInt64) {
        guard let i = table.index(of: id), let output = table[i].state.output else { return }
        guard let written = NonBlockingSocket.write(table[i].fd, output, from: table[i].state.written) else {
            drop(id)
            return
        }
        table[i].state.written = written
        guard written == output.count else { return }
        shutdown(table[i].fd, Int32(SHUT_WR))
        drop(id)
    }

    /// Closes the connection and frees its request and response buffers.
    private func drop(_ id: UInt64) {
        guard let entry = table.remove(id: id) else { return }
        close(entry.fd)
        release(entry.state)
    }

    static func path(of target: String) -> String {
        target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? target
    }

    static func response(to head: HTTPRequestHead.ParseResult, render: () -> String, servesPages: Bool = false) -> [UInt8] {
        switch head {
        case .incomplete:
            return response(status: 400, reason: "Bad Request", body: "Bad Request\n", head: false)
        case let .invalid(status, reason):
            return response(status: status, reason: reason, body: reason + "\n", head: false)
        case let .request(method, target):
            let path = path(of: target)
            if method != "GET" && method != "HEAD" {
                return response(status: 405, reason: "Method Not Allowed", body: "only GET and HEAD\n", head: false, extra: "Allow: GET, HEAD\r\n")
            }
            if path != "/metrics" {
                let hint = servesPages ? "not found: metrics are at /metrics, the status page at /\n" : "metrics are at /metrics\n"
                return response(status: 404, reason: "Not Found", body: hint, head: method == "HEAD")
            }
            let body = render()
            if body.utf8.count > maxResponseBytes {
                return response(
                    status: 500, reason: "Internal Server Error",
                    body: "the exposition is larger than \(maxResponseBytes) bytes\n", head: method == "HEAD")
            }
            return response(status: 200, reason: "OK", body: body, head: method == "HEAD", contentType: PrometheusText.contentType)
        }
    }

    static func response(
        status: Int, reason: String, body: String, head: Bool,
        contentType: String = "text/plain; charset=utf-8", extra: String = ""
    ) -> [UInt8] {
        frame(status: status, reason: reason, body: Array(body.utf8), head: head, contentType: contentType, extra: extra)
    }

    /// The status line, headers and (unless `head`) body. Pages forbid framing and sniffing:
    /// they are read-only, but a page shown inside another site's frame is still a page that site
    /// controls the look of.
    static func frame(
        status: Int, reason: String, body: [UInt8], head: Bool,
        contentType: String, extra: String = ""
    ) -> [UInt8] {
        var text = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
        text += extra + "Connection: close\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
        text += "X-Frame-Options: DENY\r\nContent-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:\r\n\r\n"
        return Array(text.utf8) + (head ? [] : body)
    }
}

/// Where one metrics connection stands: reading its request head (bounded by
/// ``MetricsHTTPServer/maxRequestBytes``), then writing its response.
struct HTTPConnection {
    var input: [UInt8] = []
    /// The response, once the request is in.
    var output: [UInt8]?
    var written = 0
    /// A status page is being rendered for it (not polled until the answer is back).
    var awaiting = false
    /// The status route being rendered (for the 503 if the agent does not answer in time).
    var route: StatusPages.Route?
    /// The request was `HEAD`: answer with the headers only.
    var headOnly = false

    var isReading: Bool { output == nil && !awaiting }
}

/// Where status pages rendered off the server's thread come back to it: a small locked list
/// and an eventfd that wakes the server's `poll`. Owned jointly by the server and the render
/// tasks (a task that outlives the server still has a valid descriptor to signal), and closed
/// when the last of them lets go.
final class StatusAnswerBox: Sendable {
    let fd: Int32
    private let capacity: Int
    private let state = Mutex<(inFlight: Int, done: [(UInt64, StatusPages.Response)])>((0, []))

    init?(capacity: Int) {
        let fd = sundial_eventfd()
        guard fd >= 0 else { return nil }
        self.fd = fd
        self.capacity = capacity
    }

    deinit { close(fd) }

    /// Reserves a render slot; false when ``capacity`` renders are already running.
    func begin() -> Bool {
        state.withLock { s in
            guard s.inFlight < capacity else { return false }
            s.inFlight += 1
            return true
        }
    }

    /// Called by a render task with its answer: frees its slot and wakes the server.
    func finish(_ id: UInt64, _ response: StatusPages.Response) {
        state.withLock { s in
            s.inFlight -= 1
            s.done.append((id, response))
        }
        sundial_eventfd_signal(fd)
    }

    /// The answers that came back since the last call (drains the eventfd).
    func take() -> [(UInt64, StatusPages.Response)] {
        sundial_eventfd_drain(fd)
        return state.withLock { s in
            defer { s.done.removeAll() }
            return s.done
        }
    }
}

/// The request line of an HTTP/1.x request, parsed once the head (up to the blank line) has
/// arrived. Headers are read past but not interpreted: `/metrics` needs none of them.
public enum HTTPRequestHead {
    public enum ParseResult: Equatable, Sendable {
        case incomplete
        case request(method: String, target: String)
        case invalid(status: Int, reason: String)
    }

    public static func parse(_ bytes: [UInt8], limit: Int) -> ParseResult {
        guard let end = headEnd(bytes) else {
            return bytes.count >= limit ? .invalid(status: 431, reason: "Request Header Fields Too Large") : .incomplete
        }
        guard end <= limit else { return .invalid(status: 431, reason: "Request Header Fields Too Large") }
        let lineEnd = bytes.firstIndex(of: 0x0A) ?? end
        var line = bytes[..<lineEnd]
        if line.last == 0x0D { line = line.dropLast() }
        let parts = line.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3,
            let method = String(validating: parts[0], as: UTF8.self), !method.isEmpty,
            method.utf8.allSatisfy({ $0 >= 0x41 && $0 <= 0x5A }),
            let target = String(validating: parts[1], as: UTF8.self), target.hasPrefix("/"),
            let version = String(validating: parts[2], as: UTF8.self), version == "HTTP/1.1" || version == "HTTP/1.0"
        else { return .invalid(status: 400, reason: "Bad Request") }
        return .request(method: method, target: target)
    }

    /// Index just past the `\r\n\r\n` (or bare `\n\n`) ending the head.
    static func headEnd(_ b: [UInt8]) -> Int? {
        var i = 0
        while i < b.count {
            if b[i] == 0x0A {
                if i + 1 < b.count, b[i + 1] == 0x0A { return i + 2 }
                if i + 2 < b.count, b[i + 1] == 0x0D, b[i + 2] == 0x0A { return i + 3 }
            }
            i += 1
        }
        return nil
    }
}
