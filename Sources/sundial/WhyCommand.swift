import ArgumentParser
import SundialCore
import SundialRuntime

/// `sundial why JOB`: what became of each planned fire of a job in the last day, and why. For a
/// job started only by its `needs`, which upstream run started or skipped each of its runs.
/// When no agent answers, the ledger of the last day from `state.db` (``StoredState``): without
/// the configuration there is no next fire and no needs to explain.
struct WhyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "why", abstract: "Explain what happened to each planned fire of a job in the last day.")

    @Argument(help: "The job.") var job: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let answer = try await client.ask(.why(job: job)) { try StoredState.why($0, job: job, now: SystemClock().wallNow()) }
        guard client.format == .text else { return }
        let report = try client.decode(answer.body, WhyReport.init(json:))
        print(Self.render(report, offline: answer.offline))
    }

    /// - Parameter offline: read from `state.db`: the next fire is not known (it needs the
    ///   configuration), rather than "none planned".
    static func render(_ report: WhyReport, offline: Bool = false) -> String {
        if let after = report.after { return renderNeeds(report, after: after) }
        var lines: [String] = []
        if report.entries.isEmpty {
            lines.append("\(report.job): no planned fires since \(report.since)")
        } else {
            var rows = [["SCHEDULED FOR", "WHAT HAPPENED"]]
            for e in report.entries { rows.append(["\(e.scheduledFor)", Self.describe(e.disposition)]) }
            lines.append(TextTable.render(rows))
        }
        if offline {
            lines.append("next fire: not known without the agent (it needs the configuration; `sundial next JOB PATH...` computes it)")
        } else {
            lines.append("next fire: \(report.next.map { "\($0)" } ?? "none planned")")
        }
        return lines.joined(separator: "\n")
    }

    /// A needs-only job: each run or skip with the upstream run whose end caused it.
    static func renderNeeds(_ report: WhyReport, after: [Need]) -> String {
        let needs = after.map { "\($0.job) (on \($0.on.rawValue))" }.joined(separator: ", ")
        var lines = ["\(report.job) has no schedule: it runs after \(needs)"]
        if report.upstream.isEmpty {
            lines.append("no upstream run ended since \(report.since) that started or skipped it")
        } else {
            var rows = [["AT", "WHAT HAPPENED", "BECAUSE"]]
            for e in report.upstream {
                let what: String
                switch e.what {
                case let .ran(id, outcome): what = "ran (run \(id.rawValue)\(outcome.map { ", \(StatusText.outcomeText($0))" } ?? ", running"))"
                case let .skipped(reason): what = describe(.skipped(reason))
                }
                let because =
                    e.upstream.map { "\($0.job) run \($0.id.rawValue) ended \($0.outcome.map(StatusText.outcomeText) ?? "?")" }
                    ?? "(the upstream run is no longer recorded)"
                rows.append(["\(e.at)", what, because])
            }
            lines.append(TextTable.render(rows))
        }
        return lines.joined(separator: "\n")
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
            case .paused: "skipped: the job is paused (sundial resume)"
            case .fleetClaimed: "skipped here: another box of the fleet claimed the instant (lock: fleet)"
            case .fleetBusy: "skipped: another instant was running on another box (lock: fleet, concurrency: forbid)"
            case .fleetUnavailable: "skipped: the fleet's database could not be reached (fleet_unavailable)"
            }
        }
    }
}
