import CSundialShim
import SundialCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The control server's loop: it owns the listening socket and every connection, all
/// non-blocking, in an epoll set of its own, so no client — slow, stalled or malicious — holds
/// up another. Requests go to the agent as Swift tasks (``ControlHandler`` is async); their
/// replies come back through ``ControlInbox``.
///
/// Served by the agent's ``EventLoop``, as sd-event embeds another loop: the epoll descriptor
/// (``pollFD``) is readable whenever one of its descriptors is, and the connections' earliest
/// deadline is a monotonic timerfd in the same set, so the server needs no thread of its own
/// (issue 16). The host calls ``turn()`` when ``pollFD`` is readable.
///
/// Idle means asleep: with no connection open there is no deadline; while connections are
/// open the loop wakes at the earliest deadline only.
///
/// `@unchecked Sendable`: its state is touched by one thread at a time — the host loop's (one
/// handler call at a time), then by ``ControlServer/stop()`` only after the host's `remove` has
/// waited out a turn in progress.
final class ControlEventLoop: @unchecked Sendable {
    let listenFD: Int32
    let options: ControlServer.Options
    let handler: any ControlHandler
    let inbox: ControlInbox
    /// Lets one request with a large reply (``ControlRequest/mayReplyLarge``) be answered at a
    /// time.
    let largeReplyGate = AsyncGate(permits: 1)
    /// `logs` requests that may wait for ``largeReplyGate`` at once.
    static let maxWaitingLargeReplies = 8
    /// The epoll set: the inbox's eventfd, the listening socket (unless accepting is paused),
    /// the deadline timerfd and each connection, watched for what its phase waits for.
    let pollFD: Int32
    private let timerFD: Int32
    private let allowedUIDs: Set<UInt32>
    private var table: ConnectionTable<ControlConnection>
    private var scratch = [UInt8](repeating: 0, count: NonBlockingSocket.readChunk)
    private var lastSerial: UInt64 = 0
    /// Set when accept ran out of descriptors: the listening socket is not watched until then.
    private var acceptPausedUntil: Int64?
    /// What each connection is watched for now (by connection id), and whether the listening
    /// socket is in the set: ``watchWhatIsAwaited()`` brings them in line with the phases.
    private var watched: [UInt64: (fd: Int32, readable: Bool, writable: Bool)] = [:]
    private var listenWatched = false
    private var tokens = [UInt64](repeating: 0, count: 64)

    private static let wakeToken: UInt64 = 0
    private static let listenToken: UInt64 = 1
    private static let timerToken: UInt64 = 2
    /// Connection ids (from 1) are carried as `id + connectionBase`.
    private static let connectionBase: UInt64 = 3

    struct StartError: Error { var message: String }

    init(listenFD: Int32, options: ControlServer.Options, handler: any ControlHandler, inbox: ControlInbox) throws(StartError) {
        let ep = sundial_epoll_create()
        let timer = sundial_monotonic_timerfd_create()
        guard ep >= 0, timer >= 0,
            sundial_epoll_add_readable(ep, inbox.wakeFD, Self.wakeToken) == 0,
            sundial_epoll_add_readable(ep, timer, Self.timerToken) == 0
        else {
            let e = errnoText()
            if ep >= 0 { close(ep) }
            if timer >= 0 { close(timer) }
            throw StartError(message: "cannot create the server's epoll set: \(e)")
        }
        self.listenFD = listenFD
        self.options = options
        self.handler = handler
        self.inbox = inbox
        self.pollFD = ep
        self.timerFD = timer
        self.allowedUIDs = options.allowedUIDs ?? [0, getuid()]
        self.table = ConnectionTable(capacity: options.maxClients)
        watchWhatIsAwaited()
    }

    deinit {
        close(pollFD)
        close(timerFD)
    }

    private var requestMillis: Int64 { max(1, options.requestTimeout.milliseconds) }
    private var handlerMillis: Int64 { max(1, options.handlerTimeout.milliseconds) }
    private var writeMillis: Int64 { max(1, options.writeTimeout.milliseconds) }
    private var keepaliveMillis: Int64 { max(1, options.keepaliveInterval.milliseconds) }

    /// One turn: takes what is ready without waiting (the host loop calls this because
    /// ``pollFD`` is readable: a descriptor is ready or the deadline timer expired), serves it,
    /// then watches what the connections now wait for and arms the timerfd for the earliest
    /// deadline. Does nothing once a stop was asked for.
    func turn() {
        let n = sundial_epoll_wait(pollFD, &tokens, Int32(tokens.count), 0)
        if n < 0 { return }
        let now = monotonicMillis()
        var listenReady = false
        var ready: [UInt64] = []
        for token in tokens.prefix(max(0, Int(n))) {
            switch token {
            case Self.wakeToken: sundial_eventfd_drain(inbox.wakeFD)
            case Self.timerToken: sundial_eventfd_drain(timerFD)
            case Self.listenToken: listenReady = true
            default: ready.append(token - Self.connectionBase)
            }
        }
        let (replies, stopping) = inbox.take()
        if stopping { return }
        for reply in replies { deliver(reply, now: now) }
        pumpStreams(now: now)
        for id in ready { service(id, now: now) }
        for id in table.expired(at: now) { expire(id, now: now) }
        if listenReady && acceptPausedUntil == nil { acceptBatch(now: now) }
        inbox.clients.store(table.count, ordering: .relaxed)
        watchWhatIsAwaited()
        let deadline = nextDeadline(now: now)
        _ = sundial_timerfd_arm_after(timerFD, deadline.map { max(0, $0 - now) } ?? -1)
    }

    /// The earliest connection deadline or the end of an accept pause (ended here when due).
    private func nextDeadline(now: Int64) -> Int64? {
        if let until = acceptPausedUntil, now >= until {
            acceptPausedUntil = nil
            watchWhatIsAwaited()
        }
        var deadline = table.nextDeadline
        if let until = acceptPausedUntil { deadline = min(deadline ?? until, until) }
        return deadline
    }

    /// Brings the epoll set in line with what each connection's phase waits for: reading,
    /// writing, a stream (readable to see the client hang up, writable only while lines wait),
    /// nothing while the agent answers; the listening socket unless accepting is paused.
    private func watchWhatIsAwaited() {
        let listening = acceptPausedUntil == nil
        if listening != listenWatched {
            if listening {
                _ = sundial_epoll_watch(pollFD, listenFD, Self.listenToken, 1, 0)
            } else {
                _ = sundial_epoll_remove(pollFD, listenFD)
            }
            listenWatched = listening
        }
        for entry in table.entries {
            let want: (readable: Bool, writable: Bool)
            switch entry.state.phase {
            case .reading: want = (true, false)
            case .writing: want = (false, true)
            case .answering: want = (false, false)
            case .streaming: want = (true, entry.state.written < entry.state.output.count)
            }
            let had = watched[entry.id]
            if let had, had.fd == entry.fd, had.readable == want.readable, had.writable == want.writable { continue }
            if !want.readable && !want.writable {
                if had != nil { _ = sundial_epoll_remove(pollFD, entry.fd) }
                watched[entry.id] = nil
            } else if sundial_epoll_watch(
                pollFD, entry.fd, entry.id + Self.connectionBase,
                want.readable ? 1 : 0, want.writable ? 1 : 0) == 0
            {
                watched[entry.id] = (entry.fd, want.readable, want.writable)
            }
        }
    }

    /// Takes a connection out of the epoll set before its descriptor is closed (a closed
    /// descriptor leaves the set by itself only once no copy of it remains).
    private func unwatch(id: UInt64, fd: Int32) {
        if watched.removeValue(forKey: id) != nil { _ = sundial_epoll_remove(pollFD, fd) }
    }

    // MARK: - Accepting

    private func acceptBatch(now: Int64) {
        for _ in 0..<NonBlockingSocket.acceptBatch {
            let fd: Int32
            switch NonBlockingSocket.accept(listenFD) {
            case .none: return
            case .exhausted:
                acceptPausedUntil = now + NonBlockingSocket.acceptBackoffMillis
                return
            case let .connection(c): fd = c
            }
            if let refusal = refusal(of: fd) {
                NonBlockingSocket.sayAndClose(fd, ControlResponse.failure(refusal).line)
                continue
            }
            let admission = table.admit(fd: fd, deadline: now + requestMillis, state: ControlConnection(), evictable: \.isReading)
            switch admission {
            case .refused:
                NonBlockingSocket.sayAndClose(fd, ControlResponse.failure("too many clients (at most \(options.maxClients)); try again").line)
            case let .admitted(id, evicted):
                if let evicted {
                    unwatch(id: evicted.id, fd: evicted.fd)
                    NonBlockingSocket.sayAndClose(
                        evicted.fd,
                        ControlResponse.failure(
                            "too many clients (at most \(options.maxClients)); this connection waited longest for a request and made room for a new one"
                        ).line)
                }
                // A well-behaved client has sent its request already: read it now, so it leaves
                // the evictable phase at once.
                service(id, now: now)
            }
        }
    }

    /// Why a peer may not talk to the agent, or nil.
    private func refusal(of fd: Int32) -> String? {
        var uid: UInt32 = 0
        var gid: UInt32 = 0
        var pid: Int32 = 0
        guard sundial_peer_credentials(fd, &uid, &gid, &pid) == 0 else { return "cannot identify the peer: \(errnoText())" }
        return allowedUIDs.contains(uid) ? nil : "permission denied: uid \(uid) may not control this agent"
    }

    // MARK: - One connection

    /// The socket is ready (or may be, right after accept): read or write once, then move on.
    private func service(_ id: UInt64, now: Int64) {
        guard let i = table.index(of: id) else { return }
        switch table[i].state.phase {
        case .reading:
            // Never hold more than one oversized line's worth: maxRequestBytes + 1 proves "too large".
            let room = options.maxRequestBytes + 1 - table[i].state.input.count
            switch NonBlockingSocket.read(table[i].fd, appendingTo: &table[i].state.input, scratch: &scratch, limit: room) {
            case .read: advance(id, now: now)
            case .wouldBlock: break
            case .closed: drop(id)
            }
        case .writing:
            flush(id, now: now)
            advance(id, now: now)
        case .answering:
            break
        case .streaming:
            // Whatever the client sends now is ignored; reading it shows when it has gone.
            var ignored: [UInt8] = []
            switch NonBlockingSocket.read(table[i].fd, appendingTo: &ignored, scratch: &scratch, limit: scratch.count) {
            case .closed: drop(id)
            case .read, .wouldBlock: pumpStream(id, now: now)
            }
        }
    }

    // MARK: - Streams

    /// Moves what the agents' streams queued into their connections (after any wake-up: the
    /// streams signal the loop's eventfd when they get something).
    private func pumpStreams(now: Int64) {
        let streaming = table.entries.filter { $0.state.isStreaming }.map(\.id)
        for id in streaming { pumpStream(id, now: now) }
    }

    /// Sends what the stream has, batch by batch: a new batch is taken from the stream only once
    /// the previous one is out, so a slow client's backlog piles up in the stream, whose byte
    /// limit then drops it (``ControlStream``), never in the loop.
    private func pumpStream(_ id: UInt64, now: Int64) {
        while let i = table.index(of: id), table[i].state.isStreaming {
            if table[i].state.written >= table[i].state.output.count {
                if table[i].state.closeAfterWrite && !table[i].state.output.isEmpty {
                    drop(id)
                    return
                }
                guard let stream = table[i].state.stream else {
                    drop(id)
                    return
                }
                let drained = stream.drain()
                var batch = drained.bytes
                if drained.overflowed {
                    batch =
                        ControlStreamMessage.dropped(
                            reason: "the client read too slowly (more than \(stream.maxQueuedBytes) bytes waiting); following stopped"
                        ).line
                    table[i].state.closeAfterWrite = true
                } else if drained.finished {
                    table[i].state.closeAfterWrite = true
                    if batch.isEmpty {
                        drop(id)
                        return
                    }
                } else if batch.isEmpty {
                    return  // idle: the keepalive deadline stands
                }
                table[i].state.output = batch
                table[i].state.written = 0
                table[i].deadline = now + writeMillis
            }
            guard let written = NonBlockingSocket.write(table[i].fd, table[i].state.output, from: table[i].state.written) else {
                drop(id)
                return
            }
            table[i].state.written = written
            guard written == table[i].state.output.count else { return }  // POLLOUT will bring us back
            if table[i].state.closeAfterWrite {
                drop(id)
                return
            }
            table[i].state.output = []
            table[i].state.written = 0
            table[i].deadline = now + keepaliveMillis
        }
    }

    /// Handles the complete lines received while the connection is reading: answers bad ones at
    /// once, hands a good one to the agent (one at a time, so replies keep the requests' order).
    private func advance(_ id: UInt64, now: Int64) {
        while let i = table.index(of: id), table[i].state.isReading {
            switch table[i].state.nextLine(limit: options.maxRequestBytes) {
            case .incomplete:
                return
            case .tooLong:
                table[i].state.closeAfterWrite = true  // no way to find the next line
                reply(id, .failure(tooLarge), now: now)
            case let .line(line):
                if line.allSatisfy({ $0 == 32 || $0 == 9 }) { continue }
                if line.count > options.maxRequestBytes {
                    reply(id, .failure(tooLarge), now: now)
                    continue
                }
                do {
                    let request = try ControlRequest(line: line)
                    startHandler(id, request, now: now)
                } catch {
                    reply(id, .failure(error.message), now: now)
                }
            }
        }
    }

    private var tooLarge: String { "request too large (at most \(options.maxRequestBytes) bytes per line)" }

    private func startHandler(_ id: UInt64, _ request: ControlRequest, now: Int64) {
        guard let i = table.index(of: id) else { return }
        // A few `logs` may wait their turn; more are refused at once. A waiter keeps its request
        // slot until its turn, even when its client has gone (it then skips the work), so a burst
        // of them could otherwise hold every slot and turn `status` and `trigger` away as busy.
        if request.mayReplyLarge, !largeReplyGate.admit(atMost: 1 + Self.maxWaitingLargeReplies) {
            reply(id, .failure("the agent is busy answering \(Self.maxWaitingLargeReplies) other `logs` requests; try again"), now: now)
            return
        }
        guard inbox.begin() else {
            if request.mayReplyLarge { largeReplyGate.dismiss() }
            reply(id, .failure("the agent is busy (\(inbox.maxInFlight) requests still being answered); try again"), now: now)
            return
        }
        lastSerial &+= 1
        let serial = lastSerial
        let handler = self.handler
        let inbox = self.inbox
        var stream: ControlStream?
        if request.streams {
            stream = ControlStream(maxQueuedBytes: options.maxStreamQueueBytes, wake: { inbox.wake() })
            table[i].state.stream = stream
        }
        let gate = request.mayReplyLarge ? largeReplyGate : nil
        let maxReplyBytes = options.maxReplyBytes
        let task = Task { [stream] in
            let response: ControlResponse
            var line: [UInt8]
            if let gate {
                // One at a time: each may read and encode 16 MiB of output, and the task pool it
                // runs on also runs the agent (its fires). The others wait here, holding
                // nothing, within the handler's deadline.
                await gate.enter()
                if Task.isCancelled {
                    response = .failure("the connection closed")
                    line = []
                } else {
                    response = await handler.handle(request)
                    line = response.line
                }
                if line.count > maxReplyBytes { line = ControlResponse.failure("the reply is larger than \(maxReplyBytes) bytes").line }
                // Posted before the next one is let in: replies are held in the order answered.
                inbox.post(.init(connection: id, serial: serial, startsStream: response.startsStream, line: line))
                gate.leave()
                gate.dismiss()
                return
            } else {
                response = if let stream { await handler.handle(request, stream: stream) } else { await handler.handle(request) }
                line = response.line
            }
            if line.count > maxReplyBytes { line = ControlResponse.failure("the reply is larger than \(maxReplyBytes) bytes").line }
            inbox.post(.init(connection: id, serial: serial, startsStream: response.startsStream, line: line))
        }
        table[i].state.phase = .answering(serial: serial, op: request.op, task: task)
        table[i].deadline = now + handlerMillis
    }

    /// The agent answered: send the reply if the connection still waits for that request.
    private func deliver(_ r: ControlInbox.Reply, now: Int64) {
        guard let i = table.index(of: r.connection),
            case let .answering(serial, _, _) = table[i].state.phase, serial == r.serial
        else { return }
        if table[i].state.stream != nil {
            if r.startsStream {
                table[i].state.streamAfterWrite = true
            } else {
                table[i].state.stream?.close()
                table[i].state.stream = nil
            }
        }
        reply(r.connection, line: r.line, now: now)
        advance(r.connection, now: now)
    }

    /// Starts sending `response` (bounded by ``ControlServer/Options/maxReplyBytes``).
    private func reply(_ id: UInt64, _ response: ControlResponse, now: Int64) {
        var line = response.line
        if line.count > options.maxReplyBytes {
            line = ControlResponse.failure("the reply is larger than \(options.maxReplyBytes) bytes").line
        }
        reply(id, line: line, now: now)
    }

    /// Starts sending an encoded reply. All connections together hold at most
    /// ``ControlServer/Options/maxHeldReplyBytes`` of replies not yet taken: 128 clients that
    /// ask for 12 MB of `logs` each and never read held 1 GB before their write deadlines.
    private func reply(_ id: UInt64, line: [UInt8], now: Int64) {
        guard let i = table.index(of: id) else { return }
        var line = line
        let held = table.entries.reduce(0) { $0 + ($1.state.output.count - $1.state.written) }
        if held + line.count > options.maxHeldReplyBytes {
            line =
                ControlResponse.failure(
                    "the agent is busy sending \(held / (1024 * 1024)) MiB of replies to other clients; try again"
                ).line
        }
        table[i].state.output = line
        table[i].state.written = 0
        table[i].state.phase = .writing
        table[i].deadline = now + writeMillis
        flush(id, now: now)
    }

    /// Writes what the socket takes; once the reply is out, reads the next request (or closes).
    private func flush(_ id: UInt64, now: Int64) {
        guard let i = table.index(of: id), case .writing = table[i].state.phase else { return }
        guard let written = NonBlockingSocket.write(table[i].fd, table[i].state.output, from: table[i].state.written) else {
            drop(id)
            return
        }
        table[i].state.written = written
        guard written == table[i].state.output.count else { return }
        if table[i].state.closeAfterWrite {
            drop(id)
            return
        }
        table[i].state.output = []
        table[i].state.written = 0
        if table[i].state.streamAfterWrite {
            table[i].state.streamAfterWrite = false
            table[i].state.phase = .streaming
            table[i].deadline = now + keepaliveMillis
            pumpStream(id, now: now)
            return
        }
        table[i].state.phase = .reading
        table[i].deadline = now + requestMillis
    }

    /// The connection's deadline passed: a reader or writer is closed; a request the agent has
    /// not answered in time gets an error reply.
    private func expire(_ id: UInt64, now: Int64) {
        guard let i = table.index(of: id), table[i].deadline <= now else { return }
        switch table[i].state.phase {
        case .reading, .writing:
            drop(id)
        case .streaming:
            // A batch not taken in time: the client is too slow (or stalled), drop it. Silence:
            // say we are alive.
            if table[i].state.written < table[i].state.output.count {
                drop(id)
            } else {
                table[i].state.output = ControlStreamMessage.keepalive.line
                table[i].state.written = 0
                table[i].deadline = now + writeMillis
                pumpStream(id, now: now)
            }
        case let .answering(_, op, task):
            task.cancel()
            table[i].state.stream?.close()
            table[i].state.stream = nil
            reply(id, .failure("the agent did not answer \(op) within \(handlerMillis) ms"), now: now)
            advance(id, now: now)
        }
    }

    private func drop(_ id: UInt64) {
        guard let entry = table.remove(id: id) else { return }
        unwatch(id: entry.id, fd: entry.fd)
        if case let .answering(_, _, task) = entry.state.phase { task.cancel() }
        entry.state.stream?.close()
        close(entry.fd)
    }

    /// Closes every connection (the server is stopping).
    func closeAll() {
        for entry in table.removeAll() {
            unwatch(id: entry.id, fd: entry.fd)
            if case let .answering(_, _, task) = entry.state.phase { task.cancel() }
            entry.state.stream?.close()
            close(entry.fd)
        }
        inbox.clients.store(0, ordering: .relaxed)
    }
}
