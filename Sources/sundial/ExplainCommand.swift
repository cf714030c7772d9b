import ArgumentParser
import SundialCore

/// `sundial explain EXPR`: the schedule in plain English.
struct ExplainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Describe a cron expression in plain English."
    )

    @Argument(help: "A cron expression (quote it: '30 2 * * 1-5'); several words are joined with spaces.")
    var expression: [String]

    func run() async throws {
        let text = expression.joined(separator: " ")
        do {
            let e = try CronExpression(text)
            print(CronExplainer.explain(e))
        } catch {
            CronErrorReport.printError(CronErrorReport.text(error, expression: text))
            throw ExitCode(1)
        }
    }
}
