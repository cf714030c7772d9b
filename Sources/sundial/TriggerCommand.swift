import ArgumentParser
import SundialCore
import SundialRuntime

/// `sundial trigger JOB`: a manual run, honouring the job's `concurrency`. Exits 1 when the run
/// was skipped (a run is active under `forbid`, or the job is disabled).
struct TriggerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trigger", abstract: "Start a run of a job now (honouring its concurrency policy).")

    @Argument(help: "The job to run.") var job: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let body = try await client.ask(.trigger(job: job))
        let report = try client.decode(body, TriggerReport.init(json:))
        if client.format == .text {
            switch report.result {
            case .started: print("\(report.job): started run \(report.runID?.rawValue ?? "?")")
            case .queued: print("\(report.job): queued behind the active run")
            case .skipped: print("\(report.job): skipped (\(report.reason ?? "not allowed now"))")
            }
        }
        if report.result == .skipped { throw ExitCode(1) }
    }
}
