import SundialCore

/// ``LogRecord``s built from the runner's values (``OutputLine``, ``RunCompletion``).
extension LogRecord {
    /// `run.output` of one line of an attempt's output.
    public static func runOutput(_ line: OutputLine, job: JobID, attempt: Int, at ts: Instant) -> LogRecord {
        .runOutput(
            .init(
                job: job, runID: line.runID, attempt: attempt, stream: line.stream == .stdout ? .stdout : .stderr,
                line: line.text, truncated: line.truncated, at: ts))
    }

    /// `run.finished` of an attempt as the runner saw it (tools and tests that run a job without
    /// a scheduler; the agent logs the scheduler's record, completed with the same facts).
    public static func runFinished(_ c: RunCompletion, job: JobID, attempt: Int, at ts: Instant) -> LogRecord {
        var f = RunFinished(
            job: job, runID: c.runID, attempt: attempt, outcome: c.outcome, exitCode: c.exitCode,
            signal: c.signal, durationMs: c.durationMs, at: ts)
        f.outputDroppedBytes = c.droppedBytes
        f.outputTruncatedLines = c.truncatedLines
        return .runFinished(f)
    }
}
