import ArgumentParser
import SundialCore
import SundialRuntime

/// `sundial status`: the running agent's config revision, each job's next fire (relative, with
/// its zone), last outcome with its duration, paused and held markers, and the runs active now.
/// `--format json` prints the agent's reply with exact instants instead. When no agent answers,
/// the jobs `state.db` knows with their last runs (``StoredStatusReport``).
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show the running agent's jobs, next fires, last outcomes and active runs.")

    @OptionGroup var client: ClientOptions

    func run() async throws {
        let answer = try await client.ask(.status) { try StoredState.status($0) }
        guard client.format == .text else { return }
        if answer.offline {
            print(try client.decode(answer.body, StoredStatusReport.init(json:)).render(now: SystemClock().wallNow()))
            return
        }
        let report = try client.decode(answer.body, StatusReport.init(json:))
        print(Self.render(report, now: report.now ?? SystemClock().wallNow()))
    }

    /// The text form, a pure function of the report and the instant it is read at.
    static func render(_ report: StatusReport, now: Instant) -> String {
        var lines = [
            "agent pid \(report.pid), version \(report.version), config revision \(report.revision), "
                + "up \(StatusText.coarse(milliseconds: max(0, now.unixMillis - report.startedAt.unixMillis))) (since \(report.startedAt))"
        ]
        var rows = [["JOB", "SCHEDULE", "ZONE", "NEXT", "LAST"]]
        for job in report.jobs {
            rows.append([job.id, job.schedule, StatusText.zone(job), StatusText.next(job, now: now), StatusText.last(job.last, now: now)])
        }
        lines.append(report.jobs.isEmpty ? "no jobs" : TextTable.render(rows))
        let paused = report.jobs.filter(\.paused).count
        if paused > 0 { lines.append("\(paused) paused (sundial resume JOB)") }
        if report.active.isEmpty {
            lines.append("no active runs")
        } else {
            lines.append("active runs:")
            var active = [["JOB", "RUN", "ATTEMPT", "PID", "STARTED"]]
            for a in report.active {
                active.append([
                    a.job, a.runID.rawValue, String(a.attempt), a.pid.map(String.init) ?? "-",
                    StatusText.relative(a.startedAt, now: now),
                ])
            }
            lines.append(TextTable.render(active))
        }
        return lines.joined(separator: "\n")
    }
}
