import ArgumentParser
import SundialCore
import SundialRuntime

/// `sundial pause JOB` / `sundial pause --all`: the job's fires still come, are recorded (`why`
/// shows them as skipped, reason `paused`) and do not run until `sundial resume`. A manual
/// `trigger` still runs it.
struct PauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause", abstract: "Pause a job (or all): its fires are skipped until it is resumed.")

    @Argument(help: "The job to pause.") var job: String?
    @Flag(name: .long, help: "Pause every job.") var all = false
    @OptionGroup var client: ClientOptions

    func validate() throws { try PauseTarget.check(job: job, all: all) }

    func run() async throws {
        let body = try await client.ask(.pause(job: all ? nil : job))
        guard client.format == .text else { return }
        PauseTarget.print(try client.decode(body, PauseReport.init(json:)))
    }
}

/// `sundial resume JOB` / `sundial resume --all`: undoes `pause`; the next fire runs.
struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume", abstract: "Resume a paused job (or all paused jobs).")

    @Argument(help: "The job to resume.") var job: String?
    @Flag(name: .long, help: "Resume every paused job.") var all = false
    @OptionGroup var client: ClientOptions

    func validate() throws { try PauseTarget.check(job: job, all: all) }

    func run() async throws {
        let body = try await client.ask(.resume(job: all ? nil : job))
        guard client.format == .text else { return }
        PauseTarget.print(try client.decode(body, PauseReport.init(json:)))
    }
}

enum PauseTarget {
    static func check(job: String?, all: Bool) throws {
        if all, job != nil { throw ValidationError("give either a job or --all, not both") }
        if !all, job?.isEmpty ?? true { throw ValidationError("name the job (or --all)") }
    }

    static func print(_ report: PauseReport) {
        let verb = report.paused ? "paused" : "resumed"
        let already = report.paused ? "already paused" : "not paused"
        if report.changed.isEmpty && report.unchanged.isEmpty {
            Swift.print(report.paused ? "no jobs to pause" : "no paused jobs")
        }
        for job in report.changed { Swift.print("\(job): \(verb)") }
        for job in report.unchanged { Swift.print("\(job): \(already)") }
    }
}
