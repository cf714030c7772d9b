import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import SundialConfig
import SundialCore
import SundialRuntime

/// `sundial validate PATH...`: checks job files the way the agent will load them.
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check job files and report every problem as file:line:column.",
        discussion: """
            Reads files and directories (recursively, *.yaml and *.yml, skipping hidden files and editor \
            leftovers), validates them against the schema and Sundial's own checks, and prints every problem. \
            Exit status: 0 all valid, 1 invalid, 2 usage error.
            """)

    @Argument(help: "Job files or directories.")
    var paths: [String]

    @Option(help: "Output format: text (gcc style), json, or github (Actions annotations).")
    var format: DiagnosticFormat = .text

    @Flag(name: .shortAndLong, help: "Print nothing when the files are valid.")
    var quiet = false

    func run() throws {
        let result = ConfigurationLoading.load(paths: paths)
        let formatter = DiagnosticFormatter(format: format, sources: result.sources)
        if !result.diagnostics.isEmpty || format == .json {
            let text = formatter.render(result.diagnostics)
            // JSON and GitHub workflow commands go to standard output (where Actions reads
            // `::error` lines); the human report goes to standard error, as a compiler's does.
            if format == .text { printError(text) } else { print(text, terminator: "") }
        }
        guard let set = result.jobSet, result.isValid else {
            if format == .text {
                let errors = result.diagnostics.filter { $0.severity == .error }.count
                printError("\(errors) error\(errors == 1 ? "" : "s") in \(Set(result.diagnostics.map(\.location.file)).count) file(s)\n")
            }
            throw ExitCode(1)
        }
        if !quiet, format == .text {
            print("ok: \(set.jobs.count) job\(set.jobs.count == 1 ? "" : "s") in \(set.files.count) file\(set.files.count == 1 ? "" : "s") (revision \(set.revision))")
        }
    }
}

extension DiagnosticFormat: ExpressibleByArgument {}

