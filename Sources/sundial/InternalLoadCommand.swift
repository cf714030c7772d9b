import ArgumentParser
import SundialConfig
import SundialRuntime

#if canImport(Glibc)
import Glibc
#endif

/// `sundial internal-load PATH...`: the agent's configuration loader, run as a child process.
///
/// Not for people (hidden from help): the agent starts it with resource limits
/// (``IsolatedConfigLoader``) at start and on every reload, so that a job file that crashes,
/// hangs or bloats the parser costs a child, never the agent. It reads the files, validates
/// them exactly as `validate` does, and writes one ``LoaderWire`` answer to standard output.
struct InternalLoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "internal-load",
        abstract: "Load job files and answer the agent (used by `sundial run`).",
        shouldDisplay: false)

    @Argument(help: "Job files or directories.")
    var paths: [String]

    /// Not reached from the command line: `main` hands `internal-load` to ``answer(paths:)``
    /// before any parsing. The command is declared so that `sundial help internal-load` says
    /// what it is.
    func run() throws { Self.answer(paths: paths) }

    /// Loads `paths`, writes the answer to standard output and exits (3 if it cannot be
    /// written: the agent then reports a failed loader).
    static func answer(paths: [String]) -> Never {
        let answer = LoaderWire.encode(ConfigurationLoading.load(paths: paths))
        var offset = 0
        while offset < answer.count {
            let n = answer[offset...].withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                Glibc.exit(3)
            }
            offset += n
        }
        Glibc.exit(0)
    }
}
