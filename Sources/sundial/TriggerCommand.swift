import ArgumentParser
import SundialCore
import SundialRuntime

/// `sundial trigger JOB`: a manual run, honouring the job's `concurrency`. Exits 1 when the run
/// was skipped (a run is active under `forbid`, or the job is disabled).
///
/// With `--wait`, it stays until the run has ended, prints its outcome and duration, and exits
/// with the run's exit status (``ControlStreamMessage/RunEnd/exitStatus``); `--follow` also
/// prints the run's output lines as they come (then the outcome goes to stderr, so stdout holds
/// only the job's own output).
struct TriggerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trigger", abstract: "Start a run of a job now (honouring its concurrency policy).")

    @Argument(help: "The job to run.") var job: String
    @Flag(name: .long, help: "Wait for the run to end; exit with its exit status.") var wait = false
    @Flag(name: .long, help: "Print the run's output as it comes, then behave like --wait.") var follow = false
    @OptionGroup var client: ClientOptions

    func run() async throws {
        guard wait || follow else {
            let body = try await client.ask(.trigger(job: job))
            let report = try client.decode(body, TriggerReport.init(json:))
            if client.format == .text { Self.describe(report) }
            if report.result == .skipped { throw ExitCode(1) }
            return
        }
        let (body, end) = try await FollowStream.run(
            .triggerAndWait(job: job, output: follow), client: client,
            options: .init(
                output: follow,
                waitingNote: { body in
                    (try? TriggerReport(json: body)).flatMap {
                        $0.result == .queued ? "\($0.job): queued (\($0.reason ?? "a run is active")); waiting for it to run" : nil
                    }
                }))
        let report = try client.decode(body, TriggerReport.init(json:))
        guard let end else {
            // No stream: the trigger did not start or queue a run.
            if client.format == .text { Self.describe(report) }
            throw ExitCode(report.result == .skipped ? 1 : 0)
        }
        if client.format == .text {
            FollowStream.say(follow ? 2 : 1, FollowStream.endText(end) + "\n")
        }
        if end.exitStatus != 0 { throw ExitCode(end.exitStatus) }
    }

    static func describe(_ report: TriggerReport) {
        switch report.result {
        case .started: print("\(report.job): started run \(report.runID?.rawValue ?? "?")")
        case .queued: print("\(report.job): queued behind the active run")
        case .skipped: print("\(report.job): skipped (\(report.reason ?? "not allowed now"))")
        }
    }
}
