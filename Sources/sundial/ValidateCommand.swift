import ArgumentParser
import OrderedCollections
import SundialConfig
import SundialCore
import SundialRuntime

#if canImport(Glibc)
import Glibc
#endif

/// `sundial validate PATH...`: checks job files the way the agent will load them.
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check job files and report every problem as file:line:column.",
        discussion: """
            Reads files and directories (recursively, *.yaml and *.yml, skipping hidden files and editor \
            leftovers), validates them against the schema and Sundial's own checks, and prints every problem. \
            Exit status: 0 all valid, 1 invalid, 2 usage error.

            With --within DIR, the one FILE is checked as if it replaced its namesake DIR/NAME \
            (NAME is FILE's own name unless --as NAME is given), together with every other job file \
            in DIR, so that `needs` into other files of the directory resolve. For a deployment tool \
            that checks a randomly named temporary copy, e.g. Ansible's \
            `validate: sundial validate --within /etc/sundial/jobs.d --as backup.yaml %s`.
            """)

    @Argument(help: "Job files or directories (with --within: the one candidate file).")
    var paths: [String]

    @Option(help: ArgumentHelp("Check the one FILE as a file of this directory, replacing its namesake.", valueName: "DIR"))
    var within: String?

    @Option(name: .customLong("as"), help: ArgumentHelp("With --within: FILE's name (relative path) in DIR (default: FILE's own name).", valueName: "NAME"))
    var asName: String?

    @Option(help: "Output format: text (gcc style), json, or github (Actions annotations).")
    var format: DiagnosticFormat = .text

    @Flag(name: .shortAndLong, help: "Print nothing when the files are valid.")
    var quiet = false

    func validate() throws {
        if asName != nil, within == nil {
            throw ValidationError("--as NAME names FILE inside the directory given with --within DIR; add --within")
        }
        if within != nil {
            guard paths.count == 1 else {
                throw ValidationError("--within DIR checks exactly one FILE, found \(paths.count) paths")
            }
            let name = asName ?? ValidateWithin.baseName(paths[0])
            if let problem = ValidateWithin.problem(withName: name) {
                throw ValidationError(
                    asName == nil
                        ? "\(problem); give the name FILE will have in the directory with --as NAME"
                        : "--as \(problem)")
            }
        }
    }

    func run() throws {
        let result: ConfigLoadResult
        var standIn: (within: ValidateWithin, replaced: Bool)?
        if let within {
            let w = ValidateWithin(directory: within, candidate: paths[0], name: asName ?? ValidateWithin.baseName(paths[0]))
            let (loaded, replaced) = w.load()
            result = loaded
            standIn = (w, replaced)
        } else {
            result = ConfigurationLoading.load(paths: paths)
        }
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
            let counts = "\(set.jobs.count) job\(set.jobs.count == 1 ? "" : "s") in \(set.files.count) file\(set.files.count == 1 ? "" : "s")"
            if let standIn {
                // No revision: the set the agent will load names the installed path, not FILE.
                print("ok: \(counts), with \(standIn.within.candidate) as \(standIn.within.target) (\(standIn.replaced ? "replacing it" : "a new file"))")
            } else {
                print("ok: \(counts) (revision \(set.revision))")
            }
        }
    }
}

extension DiagnosticFormat: ExpressibleByArgument {}
