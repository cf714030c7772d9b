import ArgumentParser
import SundialCore
import SundialRuntime

/// `sundial history JOB [--limit N]`: the newest runs of a job, newest first; from `state.db`
/// when no agent answers (``StoredState``).
struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "history", abstract: "Show the latest runs of a job.")

    @Argument(help: "The job.") var job: String
    @Option(name: .long, help: "How many runs to show (1 to 1000).") var limit: Int = ControlRequest.defaultHistoryLimit
    @OptionGroup var client: ClientOptions

    func validate() throws {
        guard (1...ControlRequest.maxHistoryLimit).contains(limit) else {
            throw ValidationError("--limit must be from 1 to \(ControlRequest.maxHistoryLimit)")
        }
    }

    func run() async throws {
        let answer = try await client.ask(.history(job: job, limit: limit)) { try StoredState.history($0, job: job, limit: limit) }
        guard client.format == .text else { return }
        let report = try client.decode(answer.body, HistoryReport.init(json:))
        guard !report.runs.isEmpty else {
            print("\(report.job): no runs recorded")
            return
        }
        var rows = [["STARTED", "RUN", "TRIGGER", "OUTCOME", "ATTEMPTS", "DURATION"]]
        for r in report.runs {
            rows.append(["\(r.startedAt)", r.id.rawValue, r.trigger.rawValue, r.outcomeText, String(r.attempts), r.durationText])
        }
        print(TextTable.render(rows))
    }
}
