/// Where one control connection stands. The event loop (``ControlEventLoop``) drives it; each
/// phase has one deadline, set when the phase begins and never extended by the peer's activity
/// (a client trickling a byte every few seconds still runs out of time).
struct ControlConnection {
    enum Phase {
        /// Waiting for a complete request line; deadline ``ControlServer/Options/requestTimeout``.
        /// The only phase in which a connection may be evicted to make room (see ``ConnectionTable``).
        case reading
        /// The agent is answering request number `serial` (`op` names it in a timeout reply);
        /// deadline ``ControlServer/Options/handlerTimeout``. The socket is not polled meanwhile.
        case answering(serial: UInt64, op: String, task: Task<Void, Never>)
        /// Sending ``output``; deadline ``ControlServer/Options/writeTimeout``.
        case writing
        /// After a reply that starts a stream (``ControlResponse/startsStream``): relaying what the
        /// agent queues in ``stream`` until it finishes, the client leaves or falls behind. Its
        /// deadline: ``ControlServer/Options/writeTimeout`` while a batch of lines is being sent (a
        /// client that does not take it in time is dropped), else
        /// ``ControlServer/Options/keepaliveInterval`` of silence, after which a `keepalive` line
        /// goes out. Bytes the client sends meanwhile are read and ignored (so its hang-up is seen).
        case streaming
    }

    var phase: Phase = .reading
    /// Received bytes not yet consumed: at most one partial line beyond the lines being served,
    /// bounded by the read limit in the loop (`maxRequestBytes` + 1).
    var input: [UInt8] = []
    /// The reply line being sent, and how much of it has gone.
    var output: [UInt8] = []
    var written = 0
    /// Close once ``output`` is sent (after an oversized request: the next line cannot be found).
    var closeAfterWrite = false
    /// The stream handed to the agent with a streaming request; kept when its reply starts the
    /// stream, closed otherwise.
    var stream: ControlStream?
    /// Whether the reply being written starts the stream (then ``Phase/streaming`` follows).
    var streamAfterWrite = false

    var isReading: Bool { if case .reading = phase { true } else { false } }
    var isStreaming: Bool { if case .streaming = phase { true } else { false } }

    enum NextLine {
        /// A complete line without its terminator (`\n`, or `\r\n`).
        case line([UInt8])
        /// More than `limit` bytes and still no newline.
        case tooLong
        /// Wait for more bytes.
        case incomplete
    }

    /// Takes the next complete line out of ``input``.
    mutating func nextLine(limit: Int) -> NextLine {
        guard let newline = input.firstIndex(of: UInt8(ascii: "\n")) else {
            return input.count > limit ? .tooLong : .incomplete
        }
        var line = Array(input[..<newline])
        input.removeSubrange(...newline)
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        return .line(line)
    }
}
