import ArgumentParser
import SundialCore
import SundialRuntime

#if canImport(Glibc)
import Glibc
#endif

/// `sundial run [PATH...]`: the agent, in the foreground.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the agent in the foreground.",
        discussion: """
            Loads the job files, runs jobs on their schedules, reloads when the files change or on SIGHUP, \
            and stops gracefully on SIGTERM or SIGINT. Events go to standard output as JSON lines unless --log names a file.
            """)

    @Argument(help: "Job files or directories (default: /etc/sundial/jobs.d when run as root).")
    var paths: [String] = []

    @Option(help: "State directory (default: $SUNDIAL_STATE, /var/lib/sundial as root, else ./.sundial).")
    var state: String?

    @Option(help: ArgumentHelp("The control socket for status, trigger, history, why and reload (default: STATE/sundial.sock).", valueName: "SOCKET"))
    var control: String?

    @Flag(help: "Hold calendar jobs until the kernel reports the clock synchronised (boxes without a real-time clock); intervals run meanwhile.")
    var holdUntilSynced = false

    @Option(help: "Event log file, or - for standard output.")
    var log: String = "-"

    @Option(help: "Rotate the log file at this size.")
    var logMaxBytes: Int64 = 64 * 1024 * 1024

    @Option(help: "Rotated log files to keep (0-1000).")
    var logKeep: Int = 5

    @Option(help: "Lowest level logged: debug, info, warn, error.")
    var logLevel: String = "info"

    @Option(help: "Time given to running jobs on shutdown before SIGKILL.")
    var shutdownGrace: String = "30s"

    @Option(help: "Wait this long after the last file change before reloading.")
    var debounce: String = "250ms"

    @Option(help: "How to watch the job files: auto (inotify, polling as a fallback), poll, or off.")
    var watch: String = "auto"

    @Option(help: "Polling interval when polling.")
    var pollInterval: String = "2s"

    @Flag(help: "Move a corrupt state database aside and start with empty state.")
    var resetState = false

    @Option(help: "Write Prometheus metrics to this file (for node_exporter's textfile collector).")
    var metricsFile: String?

    @Option(help: "Serve Prometheus metrics on this loopback address, e.g. 127.0.0.1:9464.")
    var metricsListen: String?

    @Flag(help: "Allow --metrics-listen on a non-loopback address.")
    var metricsListenAny = false

    @OptionGroup(title: "Fleet (jobs with lock: fleet, results in PostgreSQL)")
    var fleet: FleetOptions

    @Option(help: ArgumentHelp("This box's name in the fleet (default: the hostname).", valueName: "NAME"))
    var box: String?

    func validate() throws {
        for (name, value) in [("--shutdown-grace", shutdownGrace), ("--debounce", debounce), ("--poll-interval", pollInterval)] {
            do throws(DurationParser.ParseError) { _ = try DurationParser.parseMilliseconds(value) } catch {
                throw ValidationError("\(name): \(error.message)")
            }
        }
        guard LogLevel(rawValue: logLevel) != nil else { throw ValidationError("--log-level must be debug, info, warn or error") }
        guard AgentOptions.WatchMode(rawValue: watch) != nil else { throw ValidationError("--watch must be auto, poll or off") }
        if let metricsListen {
            do throws(ListenAddress.ParseError) { _ = try ListenAddress(parsing: metricsListen, allowNonLoopback: metricsListenAny) } catch {
                throw ValidationError("--metrics-listen: \(error.description)")
            }
        }
        guard logMaxBytes >= 4096 else { throw ValidationError("--log-max-bytes must be at least 4096 (got \(logMaxBytes))") }
        // Each rotation renames every kept file, on the scheduler's thread.
        guard (0...FileEventSink.maximumKeep).contains(logKeep) else {
            throw ValidationError("--log-keep must be between 0 and \(FileEventSink.maximumKeep) (got \(logKeep)); keep more with logrotate")
        }
    }

    func run() async throws { try await run(on: nil) }

    /// Runs the agent with `loop` (run by the main thread, see ``Main``) serving its
    /// descriptors; `nil`: a loop with a thread of its own.
    func run(on loop: EventLoop?) async throws {
        let isRoot = geteuid() == 0
        var configPaths = paths
        if configPaths.isEmpty {
            if isRoot, access("/etc/sundial/jobs.d", F_OK) == 0 {
                configPaths = ["/etc/sundial/jobs.d"]
            } else {
                throw ValidationError("name the job files or directories to run (e.g. sundial run examples/quickstart/)")
            }
        }
        var options = AgentOptions(
            configPaths: configPaths, stateDirectory: StateDefaults.directory(state),
            logPath: log, logMaxBytes: logMaxBytes, logKeep: logKeep, logLevel: LogLevel(rawValue: logLevel) ?? .info,
            shutdownGraceMs: (try? DurationParser.parseMilliseconds(shutdownGrace)) ?? 30_000,
            debounceMs: (try? DurationParser.parseMilliseconds(debounce)) ?? 250,
            pollIntervalMs: (try? DurationParser.parseMilliseconds(pollInterval)) ?? 2000,
            watch: AgentOptions.WatchMode(rawValue: watch) ?? .auto, resetState: resetState, version: SundialVersion.current)
        options.metricsFile = metricsFile
        options.metricsListen = metricsListen.flatMap { try? ListenAddress(parsing: $0, allowNonLoopback: metricsListenAny) }
        options.controlPath = control
        options.holdUntilSynced = holdUntilSynced
        try FleetAgentSetup.apply(fleet, box: box, to: &options)
        let code = await AgentHost.run(options, loop: loop, stderr: { printError($0) })
        if code != 0 { throw ExitCode(code) }
    }
}

/// Where state lives unless told otherwise (docs/reference.md, "Files and defaults").
enum StateDefaults {
    static func directory(_ explicit: String?) -> String {
        if let explicit { return explicit }
        if let env = getenv("SUNDIAL_STATE"), env.pointee != 0 { return String(cString: env) }
        return geteuid() == 0 ? "/var/lib/sundial" : "./.sundial"
    }
}
