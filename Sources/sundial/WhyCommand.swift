import ArgumentParser
import SundialCore
import SundialRuntime

/// `sundial why JOB`: what became of each planned fire of a job in the last day, and why.
struct WhyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "why", abstract: "Explain what happened to each planned fire of a job in the last day.")

    @Argument(help: "The job.") var job: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let body = try await client.ask(.why(job: job))
        guard client.format == .text else { return }
        let report = try client.decode(body, WhyReport.init(json:))
        if report.entries.isEmpty {
            print("\(report.job): no planned fires since \(report.since)")
        } else {
            var rows = [["SCHEDULED FOR", "WHAT HAPPENED"]]
            for e in report.entries { rows.append(["\(e.scheduledFor)", Self.describe(e.disposition)]) }
            print(TextTable.render(rows))
        }
        print("next fire: \(report.next.map { "\($0)" } ?? "none planned")")
    }

    static func describe(_ d: LedgerEntry.Disposition) -> String {
        switch d {
        case let .ran(id): "ran (run \(id.rawValue))"
        case let .caughtUp(id): "caught up after downtime (run \(id.rawValue))"
        case .missed: "missed while the agent was down (catchup policy)"
        case let .skipped(reason):
            switch reason {
            case .overlap: "skipped: the previous run was still active (concurrency)"
            case .needs: "skipped: its needs had not finished as required"
            case .upstream: "skipped: an upstream job ended with an outcome that does not satisfy it"
            case .disabled: "skipped: the job is disabled"
            case .dst: "skipped: daylight saving time (dst policy)"
            case .missed: "skipped: missed"
            case .shutdown: "skipped: the agent was shutting down"
            }
        }
    }
}
