import ArgumentParser
import OrderedCollections
import SundialConfig
import SundialCore
import SundialRuntime

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `sundial next --cron EXPR [--tz ZONE] [--after TIME] [--count N] [--dst-gap G] [--dst-overlap O]`
/// (or `sundial next EXPR ...`): the next fire times of an expression, one RFC 3339 time with
/// the zone's offset per line.
///
/// The positional `JOB [PATH...]` form (a configured job) arrives with the config loader; the
/// arguments are declared already so that it slots in without changing the command's shape.
struct NextCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "next",
        abstract: "Print the next fire times of a cron expression.",
        discussion: """
            Each line is the next fire strictly after the previous one (the first strictly after \
            --after), as RFC 3339 with the zone's UTC offset. Daylight saving follows cronie \
            (docs/time.md); --dst-gap and --dst-overlap override it for fixed-time expressions.
            """
    )

    @Argument(help: "A configured job's id (with the PATHs that define it), or a quoted cron expression instead of --cron.")
    var job: String?

    @Argument(help: "Config files or directories holding JOB.")
    var paths: [String] = []

    @Option(name: .customLong("cron"), help: "A cron expression: 5 fields, 6 with leading seconds, or a macro such as @daily.")
    var cron: String?

    @Option(name: .customLong("tz"), help: "IANA time zone (default: the system zone).")
    var timezone: String?

    @Option(help: "Start after this RFC 3339 time (default: now).")
    var after: String?

    @Option(help: "How many fire times to print (1-10000).")
    var count: Int = 1

    @Option(name: .customLong("dst-gap"), help: "shift (run once after a skipped time) or skip.")
    var dstGap: String = DSTPolicy.Gap.shift.rawValue

    @Option(name: .customLong("dst-overlap"), help: "first, last or both occurrences of a repeated time.")
    var dstOverlap: String = DSTPolicy.Overlap.first.rawValue

    func run() async throws {
        if let job {
            if paths.isEmpty, cron == nil, Self.isExpression(job) {
                try printFires(of: job)
            } else {
                try nextOfConfiguredJob(job)
            }
            return
        }
        guard let cron else {
            CronErrorReport.printError("error: missing --cron EXPR (e.g. sundial next --cron '30 2 * * *' --count 3)")
            throw ExitCode(2)
        }
        try printFires(of: cron)
    }

    /// Whether the lone argument of `sundial next ARG` is a cron expression rather than a job
    /// id: it has blanks or starts with `@` (a job id has neither) and it is not an existing
    /// path. So `sundial next "30 2 * * *"` answers, where a job id without its files still
    /// gets "name the job files".
    static func isExpression(_ argument: String) -> Bool {
        guard argument.contains(" ") || argument.contains("\t") || argument.hasPrefix("@") else { return false }
        return access(argument, F_OK) != 0
    }

    /// The next fires of an expression given on the command line, with the options.
    func printFires(of cron: String) throws {
        guard (1...10_000).contains(count) else {
            CronErrorReport.printError("error: --count must be between 1 and 10000")
            throw ExitCode(2)
        }
        guard let gap = DSTPolicy.Gap(rawValue: dstGap) else {
            CronErrorReport.printError("error: --dst-gap must be shift or skip, not '\(dstGap)'")
            throw ExitCode(2)
        }
        guard let overlap = DSTPolicy.Overlap(rawValue: dstOverlap) else {
            CronErrorReport.printError("error: --dst-overlap must be first, last or both, not '\(dstOverlap)'")
            throw ExitCode(2)
        }
        let start: Instant
        if let after {
            do {
                start = try RFC3339.parse(after).instant
            } catch {
                CronErrorReport.printError("error: --after '\(after)': \(error.description)")
                throw ExitCode(1)
            }
        } else {
            start = Self.now()
        }

        let expression: CronExpression
        do {
            expression = try CronExpression(cron)
        } catch {
            CronErrorReport.printError(CronErrorReport.text(error, expression: cron))
            throw ExitCode(1)
        }
        // Accepted as cronie accepts it, but said aloud: `*/90` is minute 0 alone.
        for warning in expression.warnings {
            CronErrorReport.printError("warning: \(warning.description)")
        }
        if expression.isReboot {
            CronErrorReport.printError("error: '\(cron)' has no calendar times: it runs once each time the agent starts")
            throw ExitCode(1)
        }
        if expression.neverFires {
            CronErrorReport.printError("error: \(CronError.neverFires(expression).message)")
            throw ExitCode(1)
        }
        let zone: TimeZoneRules
        do {
            zone = try SystemTimeZones().rules(named: timezone)
        } catch {
            CronErrorReport.printError("error: \(error)")
            throw ExitCode(1)
        }
        let schedule = CronSchedule(expression: expression, zone: zone, dst: DSTPolicy(gap: gap, overlap: overlap))
        var out = ""
        let fires = schedule.next(after: start, count: count)
        for fire in fires {
            out += RFC3339.format(fire, utcOffsetSeconds: zone.utcOffset(at: fire)) + "\n"
        }
        print(out, terminator: "")
        // Times end at the year 9999 (RFC 3339's four digits): say so rather than print fewer
        // lines, or none, without a word.
        if fires.count < count {
            CronErrorReport.printError("note: \(fires.isEmpty ? "no" : "only \(fires.count)") fire time\(fires.count == 1 ? "" : "s") before the year 10000")
        }
    }

    /// `sundial next JOB PATH...`: the next fires of a configured job, in its own zone.
    func nextOfConfiguredJob(_ id: String) throws {
        guard (1...10_000).contains(count) else {
            CronErrorReport.printError("error: --count must be between 1 and 10000")
            throw ExitCode(2)
        }
        guard !paths.isEmpty else {
            CronErrorReport.printError(
                "error: name the job files or directories that define '\(id)' (for a cron expression, quote all its fields: sundial next '30 2 * * *')")
            throw ExitCode(2)
        }
        let zones = SystemTimeZones()
        let loaded = ConfigurationLoading.load(paths: paths, environment: .system(zones: zones))
        guard loaded.isValid, let set = loaded.jobSet else {
            CronErrorReport.printError(DiagnosticFormatter(format: .text, sources: loaded.sources).render(loaded.diagnostics))
            throw ExitCode(1)
        }
        guard let job = set.jobs[id] else {
            let hint = DidYouMean.hint(id, from: set.jobs.keys.elements).map { "; \($0)" } ?? ""
            CronErrorReport.printError("error: no job '\(id)' in \(paths.joined(separator: " "))\(hint)")
            throw ExitCode(1)
        }
        let start: Instant
        if let after {
            do { start = try RFC3339.parse(after).instant } catch {
                CronErrorReport.printError("error: --after '\(after)': \(error.description)")
                throw ExitCode(1)
            }
        } else {
            start = Self.now()
        }
        switch job.schedule {
        case .manual:
            CronErrorReport.printError("error: job '\(id)' has no schedule: it runs when its needs are met or when triggered")
            throw ExitCode(1)
        case .reboot:
            CronErrorReport.printError("error: job '\(id)' runs at @reboot: it has no calendar times")
            throw ExitCode(1)
        default:
            break
        }
        if case .every(_, nil) = job.schedule {
            CronErrorReport.printError(
                "note: '\(id)' has no offset, so its fires count from the agent's start; shown as if it started at \(RFC3339.format(start, utcOffsetSeconds: 0))"
            )
        }
        let zone = (try? zones.rules(named: job.timezone)) ?? .utc
        let calculator = CalendarFireCalculator(zones: zones)
        var out = ""
        var t = start
        for _ in 0..<count {
            guard let fire = calculator.nextFire(of: job, after: t, anchor: start) else { break }
            out += RFC3339.format(fire, utcOffsetSeconds: zone.utcOffset(at: fire)) + "\n"
            t = fire
        }
        print(out, terminator: "")
    }

    /// The wall clock (the runtime's: `timespec`'s fields read here fell foul of
    /// MemberImportVisibility in clean builds, see PathProbe.swift).
    static func now() -> Instant { SystemClock().wallNow() }
}
