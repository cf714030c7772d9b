import ArgumentParser
import SundialConfig
import SundialCore
import SundialRuntime

#if canImport(Glibc)
import Glibc
#endif

/// `sundial diff OLD NEW`: what replacing the job files at OLD by those at NEW would change
/// (issue 6), for reviewing a rollout in CI before it reaches a box.
struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Show what a rollout changes: jobs added, removed, and changed field by field.",
        discussion: """
            OLD and NEW are job files or directories (for example two git checkouts), read as the agent \
            reads them. For each added and changed job the next three fires are shown, before and after \
            (without jitter; an `every` without `offset` is counted from --at, as from an agent started then). \
            Exit status: 0 no change, 1 changes, 2 invalid input (each problem printed as file:line:column) \
            or usage error.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

    @Argument(help: "The running configuration: a job file or directory.")
    var old: String

    @Argument(help: "The configuration to roll out: a job file or directory.")
    var new: String

    @Option(help: "Output format: text or json.")
    var format: Format = .text

    @Option(help: "Compute next fires after this RFC 3339 time (default: now), for reproducible output.")
    var at: String?

    /// How many upcoming fires to show per job.
    static let fireCount = 3

    func run() throws {
        let anchor: Instant
        if let at {
            do { anchor = try RFC3339.parse(at).instant } catch {
                printError("sundial diff: --at '\(at)': \(error.description)\n")
                throw ExitCode(2)
            }
        } else {
            anchor = NextCommand.now()
        }

        let zones = SystemTimeZones()
        let before = Self.load(old, zones: zones)
        let after = Self.load(new, zones: zones)
        guard let oldSet = before.jobSet, before.isValid, let newSet = after.jobSet, after.isValid else {
            reportInvalid([before, after])
            throw ExitCode(2)
        }

        let diff = JobSetDiff(old: oldSet, new: newSet)
        let calculator = CalendarFireCalculator(zones: zones)
        let fires: JobSetDiff.FireRenderer = { job in
            guard job.enabled else { return [] }
            let zone = try? zones.rules(named: job.timezone)
            var out: [String] = []
            var t = anchor
            while out.count < Self.fireCount, let next = calculator.nextFire(of: job, after: t, anchor: anchor) {
                out.append(RFC3339.format(next, utcOffsetSeconds: zone?.utcOffset(at: next) ?? 0))
                t = next
            }
            return out
        }
        switch format {
        case .text: print(diff.text(fires: fires), terminator: "")
        case .json: print(diff.json(fires: fires).jsonText)
        }
        if !diff.isEmpty { throw ExitCode(1) }
    }

    /// Loads one side. An existing directory without job files is an empty set here (a first
    /// rollout, or one that removes every job), although the agent refuses to start on it.
    /// `env_file`s are not checked: `diff` runs in CI, not on the box that holds them.
    static func load(_ path: String, zones: SystemTimeZones) -> ConfigLoadResult {
        let listing = ConfigFiles.list(paths: [path])
        if listing.files.isEmpty, listing.problems.isEmpty {
            return ConfigLoadResult(jobSet: JobSet(revision: ContentHash().hex), diagnostics: [])
        }
        let environment = ConfigEnvironment(zoneExists: { (try? zones.rules(named: $0)) != nil }, fileReadable: { _ in true })
        return ConfigurationLoading.load(paths: [path], environment: environment)
    }

    /// Every problem of both sides, formatted as `validate` formats them: text on standard
    /// error, or (with `--format json`) `{"changes": null, "diagnostics": [...]}` on standard output.
    private func reportInvalid(_ results: [ConfigLoadResult]) {
        var diagnostics: [Diagnostic] = []
        var sources: [String: [UInt8]] = [:]
        for r in results {
            diagnostics += r.diagnostics
            sources.merge(r.sources) { a, _ in a }
        }
        switch format {
        case .json:
            let items = DiagnosticFormatter(format: .json, sources: sources).render(diagnostics)
            print("{\"changes\":null,\"diagnostics\":" + items.dropLast() + "}")
        case .text:
            printError(DiagnosticFormatter(format: .text, sources: sources).render(diagnostics))
            let errors = diagnostics.filter { $0.severity == .error }.count
            printError("sundial diff: \(errors) error\(errors == 1 ? "" : "s"); nothing compared\n")
        }
    }
}
