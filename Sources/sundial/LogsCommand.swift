import ArgumentParser
import SundialCore
import SundialRuntime

#if canImport(Glibc)
import Glibc
#endif

/// `sundial logs JOB [--run ID]`: the stored output of the job's last run (finished or running),
/// or of run ID: every attempt's kept tail (`output.keep_bytes`), with a header per attempt when
/// there are several and a note where earlier bytes were not kept. The output goes to stdout as
/// the job printed it when piped, with control characters escaped on a terminal; which run it
/// was goes to stderr, as `-f` reports the end there. From the agent, else from `state.db` (``StoredState``).
///
/// `-f` follows the job's running output live through the control socket (the active run, or
/// the next one when none is running), and returns when that run ends.
struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs", abstract: "Show the stored output of a job's last run (or --run ID's); -f follows a running job live.")

    @Argument(help: "The job.") var job: String
    @Flag(name: .shortAndLong, help: "Follow the job's running output live (or its next run's), until that run ends.")
    var follow = false
    @Option(name: .customLong("run"), help: ArgumentHelp("The run whose stored output to print (default: the last run).", valueName: "ID"))
    var runID: String?
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if follow, runID != nil { throw ValidationError("-f follows the running or next run; it does not take --run") }
        if let runID, runID.isEmpty || runID.utf8.count > 128 { throw ValidationError("--run takes a run id (see `sundial history \(job)`)") }
    }

    func run() async throws {
        guard follow else { return try await printStored() }
        let (_, end) = try await FollowStream.run(
            .follow(job: job), client: client,
            options: .init(
                output: true,
                waitingNote: { body in body["run_id"] == .null ? "\(job): not running; waiting for its next run" : nil }))
        if let end, client.format == .text { FollowStream.say(2, FollowStream.endText(end) + "\n") }
    }

    private func printStored() async throws {
        let run = runID.map(RunID.init(rawValue:))
        let job = self.job
        let answer = try await client.ask(.logs(job: job, run: run)) { try StoredState.logs($0, job: job, run: run) }
        guard client.format == .text else { return }
        let report = try client.decode(answer.body, LogsReport.init(json:))
        let (out, err) = Self.render(report, now: SystemClock().wallNow(), forTerminal: isatty(1) == 1)
        FollowStream.say(1, out)
        FollowStream.say(2, err)
    }

    /// The output (stdout) and the account of which run it is (stderr); a pure function.
    ///
    /// - Parameter forTerminal: stdout is a terminal: control characters in the output are
    ///   shown escaped (``TerminalText``), since a job's output could otherwise retitle the
    ///   operator's terminal, rewrite its screen or set its clipboard (OSC 52), as `ls` shows
    ///   file names. Piped, the output is printed as stored.
    static func render(_ report: LogsReport, now: Instant, forTerminal: Bool = false) -> (stdout: String, stderr: String) {
        guard let run = report.run else { return ("", "\(report.job): no runs recorded\n") }
        var out = ""
        let several = report.attempts.count > 1
        for a in report.attempts {
            if several { out += "== attempt \(a.attempt) ==\n" }
            if a.droppedBytes > 0 { out += "== \(a.droppedBytes) earlier bytes of this attempt's output were not kept ==\n" }
            out += forTerminal ? TerminalText.escapedLines(a.text) : a.text
        }
        let when = run.finishedAt.map { "finished \(StatusText.relative($0, now: now))" } ?? "started \(StatusText.relative(run.startedAt, now: now))"
        var err = "\(report.job): run \(run.id.rawValue), \(run.outcomeText), \(when)"
        if run.attempts > 1 { err += ", \(run.attempts) attempts" }
        err += "\n"
        let storedAttempts = Set(report.attempts.map(\.attempt))
        if run.outcome == nil, !storedAttempts.contains(run.attempts) {
            err +=
                "\(report.job): attempt \(run.attempts) is still running; its output is stored when it ends "
                + "(`sundial logs \(report.job) -f` follows it)\n"
        } else if report.attempts.isEmpty {
            err +=
                "\(report.job): no output stored for this run (it printed nothing, or its output was not kept: "
                + "output.keep_bytes, the newest runs of each job)\n"
        }
        return (out, err)
    }
}
