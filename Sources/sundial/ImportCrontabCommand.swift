import ArgumentParser
import SundialConfig
import SundialCore
import SundialRuntime

/// `sundial import-crontab FILE`: converts a crontab into a job file on standard output.
struct ImportCrontabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-crontab",
        abstract: "Convert a crontab into a Sundial job file (printed on standard output).",
        discussion: """
            Reads a user crontab (crontab -l), or with --system the format of /etc/crontab and \
            /etc/cron.d/* (a user column before the command). Environment lines become `env` of the \
            jobs after them, CRON_TZ/TZ become `timezone`, `%` in commands becomes standard input, and \
            what cannot be converted becomes a comment. A malformed line is reported as \
            FILE:LINE: error: ... on standard error and skipped; the exit status is then 1.

            Example: crontab -l | sundial import-crontab - > /etc/sundial/jobs.d/from-cron.yaml
            """)

    @Argument(help: "The crontab file, or - for standard input.")
    var file: String

    @Flag(help: "System crontab format (/etc/crontab, /etc/cron.d): a user column after the schedule.")
    var system = false

    @Option(help: "For a user crontab: the user its jobs ran as (sets `user:` on every job).")
    var user: String?

    /// Crontabs are small; anything larger is not a crontab.
    static let sizeLimit = 4 * 1024 * 1024

    func run() throws {
        let bytes: [UInt8]
        do {
            bytes = try file == "-" ? FileSystem.readStandardInput(limit: Self.sizeLimit) : FileSystem.read(file, limit: Self.sizeLimit)
        } catch {
            printError("sundial: \(error)\n")
            throw ExitCode(1)
        }
        let name = file == "-" ? "<stdin>" : file
        let result = CrontabImport.convert(
            String(decoding: bytes, as: UTF8.self),
            options: .init(system: system, user: user, fileName: name))
        print(result.yaml, terminator: "")
        // A problem quotes the crontab's text, which may hold escape sequences: shown escaped.
        for p in result.problems { printError(TerminalText.escaped(p.description) + "\n") }
        if !result.problems.isEmpty { throw ExitCode(1) }
    }
}
