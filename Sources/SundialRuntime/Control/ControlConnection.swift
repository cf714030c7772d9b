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

    var isReading: Bool { if case .reading = phase { true } else { false } }

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
