import ArgumentParser
import SundialCore
import SundialRuntime

/// `sundial status`: the running agent's config revision, each job's next fire and last
/// outcome, and the runs active now.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show the running agent's jobs, next fires, last outcomes and active runs.")

    @OptionGroup var client: ClientOptions

    func run() async throws {
        let body = try await client.ask(.status)
        guard client.format == .text else { return }
        let report = try client.decode(body, StatusReport.init(json:))
        print("agent pid \(report.pid), version \(report.version), config revision \(report.revision), up since \(report.startedAt)")
        var rows = [["JOB", "SCHEDULE", "NEXT", "LAST"]]
        for job in report.jobs {
            let next = !job.enabled ? "disabled" : job.held ? "held (clock not synchronised)" : job.next.map { "\($0)" } ?? "-"
            let last = job.last.map { "\($0.outcomeText) at \($0.startedAt)" } ?? "-"
            rows.append([job.id, job.schedule, next, last])
        }
        print(report.jobs.isEmpty ? "no jobs" : TextTable.render(rows))
        if report.active.isEmpty {
            print("no active runs")
        } else {
            print("active runs:")
            var active = [["JOB", "RUN", "ATTEMPT", "PID", "STARTED"]]
            for a in report.active {
                active.append([a.job, a.runID.rawValue, String(a.attempt), a.pid.map(String.init) ?? "-", "\(a.startedAt)"])
            }
            print(TextTable.render(active))
        }
    }
}
