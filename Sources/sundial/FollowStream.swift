import ArgumentParser
import SundialCore
import SundialRuntime

#if canImport(Glibc)
import Glibc
#endif

/// The client side of the streaming requests (`trigger --wait`/`--follow`, `logs -f`): sends
/// the request, prints the run's output as it arrives (unbuffered, stdout lines to stdout and
/// stderr lines to stderr, so a pipe sees each line at once), and returns how the run ended.
///
/// Exits (through `ExitCode`) the way the other client commands do: 3 when no agent answers or
/// the agent goes away before the run ends (or stays silent past three keepalives), 1 for an
/// error reply or when the agent dropped this client for reading too slowly.
enum FollowStream {
    struct Options: Sendable {
        /// Print output lines (else only the end is waited for).
        var output: Bool
        /// Said on stderr when the reply shows the stream waits for a run to start.
        var waitingNote: (@Sendable (JSONValue) -> String?)?
    }

    /// - Returns: the reply body (for the caller's own report) and the run's end, or nil when the
    ///   reply did not start a stream (e.g. a skipped trigger).
    static func run(_ request: ControlRequest, client: ClientOptions, options: Options) async throws
        -> (body: JSONValue, end: ControlStreamMessage.RunEnd?)
    {
        let control = ControlClient(path: client.socketPath, timeout: .seconds(max(1, client.timeout)))
        let json = client.format == .json
        let reply = Locked<ControlResponse?>(nil)
        let end: ControlClient.StreamEnd
        do {
            end = try await control.streamed(
                request,
                onReply: { response in
                    reply.withLock { $0 = response }
                    if json { say(1, response.json.jsonText + "\n") }
                    if !json, response.startsStream, let note = options.waitingNote?(response.body) { say(2, note + "\n") }
                },
                onMessage: { message in
                    if json {
                        if message != .keepalive { say(1, message.json.jsonText + "\n") }
                        return
                    }
                    if options.output, case let .output(_, _, stream, line, _) = message {
                        let fd: Int32 = stream == "stderr" ? 2 : 1
                        say(fd, (isatty(fd) == 1 ? TerminalText.escaped(line) : line) + "\n")
                    }
                })
        } catch {
            printClientError(error.description)
            throw ExitCode(error.code == .protocolError ? 1 : 3)
        }
        guard let response = reply.withLock({ $0 }) else { throw ExitCode(1) }
        guard response.ok else {
            if !json { printClientError(response.error ?? "the agent refused the request") }
            throw ExitCode(1)
        }
        switch end {
        case .noStream: return (response.body, nil)
        case let .ended(e): return (response.body, e)
        case let .dropped(reason):
            printClientError("the agent stopped streaming to this client: \(reason)")
            throw ExitCode(1)
        case .closed:
            printClientError(
                "the agent closed the connection before the run ended (it is stopping?); "
                    + "`sundial history` shows the outcome once it is recorded")
            throw ExitCode(3)
        }
    }

    /// `backup: success in 1.2 s (run 01J…)`, `backup: failure (exit 3) in 80 ms after 2 attempts (run …)`.
    static func endText(_ e: ControlStreamMessage.RunEnd) -> String {
        let took = e.durationMs.map { " in \(StatusText.span(milliseconds: $0))" } ?? ""
        let attempts = e.attempts > 1 ? " after \(e.attempts) attempts" : ""
        return "\(e.job): \(StatusText.outcomeText(e.outcome))\(took)\(attempts) (run \(e.runID.rawValue))"
    }

    static func say(_ fd: Int32, _ text: String) {
        var text = text
        text.withUTF8 { writeAll(fd, UnsafeRawBufferPointer($0)) }
    }
}
