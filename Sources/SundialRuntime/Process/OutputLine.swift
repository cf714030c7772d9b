import SundialCore

/// One line of a job's output, delivered while the job runs (the `run.output` event).
public struct OutputLine: Hashable, Sendable {
    public enum Stream: String, Hashable, Sendable { case stdout, stderr }

    public var runID: RunID
    public var stream: Stream
    /// The line without its `\n`; invalid UTF-8 has become U+FFFD.
    public var text: String
    /// The line was longer than `output.max_line_bytes` (or ran into `output.max_bytes`) and
    /// was cut; the rest of it was dropped.
    public var truncated: Bool

    public init(runID: RunID, stream: Stream, text: String, truncated: Bool = false) {
        self.runID = runID
        self.stream = stream
        self.text = text
        self.truncated = truncated
    }
}

/// Receives a run's output lines. Called on the runner's own thread, in order per stream and
/// always before the run's ``RunCompletion`` is delivered: it must not block (write the line to
/// the ``EventLog`` and return).
public typealias OutputHandler = @Sendable (OutputLine) -> Void
