import ArgumentParser
import OrderedCollections
import SundialConfig
import SundialCore
import SundialRuntime

#if canImport(Glibc)
import Glibc
#endif

/// `sundial simulate PATH... --from TIME --to TIME [--outcomes FILE]`: the same scheduler on a
/// virtual clock, printing the JSON lines the agent would write.
struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Print what the agent would do between two times, on a virtual clock.",
        discussion: """
            Runs the real scheduler over the job files from --from to --to and prints the event log it \
            would write. Every attempt succeeds instantly unless --outcomes gives, per job, a list of \
            { outcome: success|failure|timeout|signal|launch_failed, exit_code, duration }.
            """)

    @Argument(help: "Job files or directories.")
    var paths: [String]

    @Option(help: "Start of the simulation (RFC 3339).")
    var from: String

    @Option(help: "End of the simulation (RFC 3339).")
    var to: String

    @Option(help: "A YAML or JSON file of scripted outcomes per job.")
    var outcomes: String?

    @Option(help: "Seed for jitter and run ids, for reproducible output.")
    var seed: UInt64 = 1

    @Flag(help: "Do not fire @reboot jobs at --from.")
    var noReboot = false

    func run() throws {
        let start: Instant
        let end: Instant
        do {
            start = try RFC3339.parse(from).instant
            end = try RFC3339.parse(to).instant
        } catch {
            throw ValidationError("--from/--to: \(error.description)")
        }
        guard end >= start else { throw ValidationError("--to must not be before --from") }
        guard end - start <= .seconds(Int64(10 * 366 * 86400)) else { throw ValidationError("simulate at most 10 years") }
        let zones = SystemTimeZones()
        let loaded = ConfigurationLoading.load(paths: paths, environment: .system(zones: zones))
        guard loaded.isValid, let jobs = loaded.jobSet else {
            printError(DiagnosticFormatter(format: .text, sources: loaded.sources).render(loaded.diagnostics))
            throw ExitCode(1)
        }
        var script: [JobID: [SimulatedAttempt]] = [:]
        if let outcomes {
            let bytes: [UInt8]
            do throws(FileSystem.ReadError) { bytes = try FileSystem.read(outcomes, limit: 4 << 20) } catch {
                printError("sundial: \(error)\n")
                throw ExitCode(1)
            }
            let parsed = OutcomeScript.parse(bytes: bytes, file: outcomes)
            guard let s = parsed.script else {
                printError(DiagnosticFormatter(format: .text, sources: [outcomes: bytes]).render(parsed.diagnostics))
                throw ExitCode(1)
            }
            for (job, attempts) in s.attempts {
                guard jobs.jobs[job] != nil else {
                    printError("\(outcomes): warning: no job `\(job)` in the configuration\n")
                    continue
                }
                script[job] = attempts.map { SimulatedAttempt($0.outcome, durationMs: $0.durationMs) }
            }
        }
        var simulator = Simulator(jobs: jobs, calculator: CalendarFireCalculator(zones: zones), script: script, seed: seed)
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 16)
        func flush() {
            buffer.withUnsafeBytes { writeAll(1, $0) }
            buffer.removeAll(keepingCapacity: true)
        }
        simulator.run(from: start, to: end, reboot: !noReboot) { _, action in
            guard case let .emit(record) = action else { return }
            record.event.appendJSONLine(to: &buffer)
            if buffer.count > 1 << 16 { flush() }
        }
        flush()
    }
}
