#if canImport(Glibc)
import Glibc
#endif
import CSundialShim
import SundialCore
import Synchronization

/// The control server's one thread: it owns the listening socket and every connection, all
/// non-blocking, and multiplexes them with `poll(2)`, so no client — slow, stalled or
/// malicious — holds up another. Requests go to the agent as Swift tasks (``ControlHandler``
/// is async); their replies come back through ``ControlInbox``.
///
/// Idle means asleep: with no connection open, `poll` has no timeout; while connections are
/// open it wakes at the earliest deadline only.
final class ControlEventLoop {
    let listenFD: Int32
    let options: ControlServer.Options
    let handler: any ControlHandler
    let inbox: ControlInbox
    private let allowedUIDs: Set<UInt32>
    private var table: ConnectionTable<ControlConnection>
    private var scratch = [UInt8](repeating: 0, count: NonBlockingSocket.readChunk)
    private var lastSerial: UInt64 = 0
    /// Set when accept ran out of descriptors: the listening socket is not polled until then.
    private var acceptPausedUntil: Int64?

    init(listenFD: Int32, options: ControlServer.Options, handler: any ControlHandler, inbox: ControlInbox) {
        self.listenFD = listenFD
        self.options = options
        self.handler = handler
        self.inbox = inbox
        self.allowedUIDs = options.allowedUIDs ?? [0, getuid()]
        self.table = ConnectionTable(capacity: options.maxClients)
    }

    private var requestMillis: Int64 { max(1, options.requestTimeout.milliseconds) }
    private var handlerMillis: Int64 { max(1, options.handlerTimeout.milliseconds) }
    private var writeMillis: Int64 { max(1, options.writeTimeout.milliseconds) }
    private var keepaliveMillis: Int64 { max(1, options.keepaliveInterval.milliseconds) }

    /// Serves until ``ControlInbox/requestStop()``; then closes every connection.
    func run() {
        defer { closeAll() }
        var fds: [pollfd] = []
        var polled: [UInt64] = []
        while true {
            var now = monotonicMillis()
            if let until = acceptPausedUntil, now >= until { acceptPausedUntil = nil }
            let listening = acceptPausedUntil == nil
            fds.removeAll(keepingCapacity: true)
            polled.removeAll(keepingCapacity: true)
            fds.append(pollfd(fd: inbox.wakeFD, events: Int16(POLLIN), revents: 0))
            if listening { fds.append(pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)) }
            for entry in table.entries {
                let events: Int16
                switch entry.state.phase {
                case .reading: events = Int16(POLLIN)
                case .writing: events = Int16(POLLOUT)
                case .answering: continue  // nothing to do until the agent answers
                case .streaming:
                    // POLLIN to see the client hang up; POLLOUT only while lines wait to go out.
                    let pending = entry.state.written < entry.state.output.count
                    events = Int16(POLLIN) | (pending ? Int16(POLLOUT) : 0)
                }
                fds.append(pollfd(fd: entry.fd, events: events, revents: 0))
                polled.append(entry.id)
            }
            var deadline = table.nextDeadline
            if let until = acceptPausedUntil { deadline = min(deadline ?? until, until) }
            let rc = poll(&fds, nfds_t(fds.count), NonBlockingSocket.pollTimeout(until: deadline, now: now))
            if rc < 0 && errno != EINTR { return }
            now = monotonicMillis()
            if rc > 0 && fds[0].revents != 0 { sundial_eventfd_drain(inbox.wakeFD) }
            let (replies, stopping) = inbox.take()
            if stopping { return }
            for reply in replies { deliver(reply, now: now) }
            pumpStreams(now: now)
            if rc > 0 {
                let first = listening ? 2 : 1
                for (k, id) in polled.enumerated() where fds[first + k].revents != 0 { service(id, now: now) }
            }
            for id in table.expired(at: now) { expire(id, now: now) }
            if listening && rc > 0 && fds[1].revents != 0 { acceptBatch(now: now) }
            inbox.clients.store(table.count, ordering: .relaxed)
        }
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
                    NonBlockingSocket.sayAndClose(evicted.fd, ControlResponse.failure(
                        "too many clients (at most \(options.maxClients)); this connection waited longest for a request and made room for a new one").line)
                }
                // A well-behaved client has sent its request already: read it now, so it leaves
                // the evictable phase at once.
                service(id, now: now)
            }
        }
    }

    /// Why a peer may not talk to the agent, or nil.
    private func refusal(of fd: Int32) -> String? {
        var uid: UInt32 = 0, gid: UInt32 = 0, pid: Int32 = 0
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
                    batch = ControlStreamMessage.dropped(
                        reason: "the client read too slowly (more than \(stream.maxQueuedBytes) bytes waiting); following stopped").line
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
        guard inbox.begin() else {
            reply(id, .failure("the agent is busy (\(inbox.maxInFlight) requests still being answered); try again"), now: now)
            return
        }
        lastSerial &+= 1
        let serial = lastSerial
        let handler = self.handler, inbox = self.inbox
        var stream: ControlStream?
        if request.streams {
            stream = ControlStream(maxQueuedBytes: options.maxStreamQueueBytes, wake: { inbox.wake() })
            table[i].state.stream = stream
        }
        let task = Task { [stream] in
            let response = if let stream { await handler.handle(request, stream: stream) } else { await handler.handle(request) }
            inbox.post(.init(connection: id, serial: serial, response: response))
        }
        table[i].state.phase = .answering(serial: serial, op: request.op, task: task)
        table[i].deadline = now + handlerMillis
    }

    /// The agent answered: send the reply if the connection still waits for that request.
    private func deliver(_ r: ControlInbox.Reply, now: Int64) {
        guard let i = table.index(of: r.connection),
              case let .answering(serial, _, _) = table[i].state.phase, serial == r.serial else { return }
        if table[i].state.stream != nil {
            if r.response.startsStream {
                table[i].state.streamAfterWrite = true
            } else {
                table[i].state.stream?.close()
                table[i].state.stream = nil
            }
        }
        reply(r.connection, r.response, now: now)
        advance(r.connection, now: now)
    }

    /// Starts sending `response` (bounded by ``ControlServer/Options/maxReplyBytes``).
    private func reply(_ id: UInt64, _ response: ControlResponse, now: Int64) {
        guard let i = table.index(of: id) else { return }
        var line = response.line
        if line.count > options.maxReplyBytes {
            line = ControlResponse.failure("the reply is larger than \(options.maxReplyBytes) bytes").line
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
        if case let .answering(_, _, task) = entry.state.phase { task.cancel() }
        entry.state.stream?.close()
        close(entry.fd)
    }

    private func closeAll() {
        for entry in table.removeAll() {
            if case let .answering(_, _, task) = entry.state.phase { task.cancel() }
            entry.state.stream?.close()
            close(entry.fd)
        }
        inbox.clients.store(0, ordering: .relaxed)
    }
}
