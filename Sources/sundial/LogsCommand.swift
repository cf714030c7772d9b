import ArgumentParser
import SundialCore
import SundialRuntime

/// `sundial logs JOB -f`: follows the job's running output live through the control socket (the
/// active run, or the next one when none is running), and returns when that run ends.
///
/// Without `-f` it is to print a stored run's output (the last run's, or `--run ID`'s); the
/// agent does not keep run output yet, so it says so and exits 1 rather than print anything
/// made up. (The event log's `run.output` lines hold the output meanwhile.)
struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs", abstract: "Show a job's run output; -f follows a running job live.")

    @Argument(help: "The job.") var job: String
    @Flag(name: .shortAndLong, help: "Follow the job's running output live (or its next run's), until that run ends.")
    var follow = false
    @Option(name: .customLong("run"), help: ArgumentHelp("The run whose stored output to print (default: the last run).", valueName: "ID"))
    var runID: String?
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if follow, runID != nil { throw ValidationError("-f follows the running or next run; it does not take --run") }
    }

    func run() async throws {
        guard follow else {
            printClientError("stored run output is not available yet: this agent does not keep it. "
                + "Use `sundial logs \(job) -f` to follow a run live; past output is in the event log's run.output lines.")
            throw ExitCode(1)
        }
        let (_, end) = try await FollowStream.run(.follow(job: job), client: client, options: .init(
            output: true,
            waitingNote: { body in body["run_id"] == .null ? "\(job): not running; waiting for its next run" : nil }))
        if let end, client.format == .text { FollowStream.say(2, FollowStream.endText(end) + "\n") }
    }
}
