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

    /// Reached when the first argument looks like an option other than the agent's (`main`
    /// hands the agent's child to ``answer(arguments:)`` before any parsing): the parser has
    /// then answered `--help` or refused the option, and this runs for `-- PATHS` only.
    func run() throws { Self.answer(arguments: ["--"] + paths) }

    /// Loads the paths of `arguments` — after ``LoaderMemo/requestFlag`` when the agent sends a
    /// request (the files it may reuse) on standard input, then after an optional `--` —
    /// writes the answer to standard output and exits (3 if it cannot be written: the agent
    /// then reports a failed loader).
    static func answer(arguments: [String]) -> Never {
        var paths = arguments[...]
        var reuse: [String: ReusableFile] = [:]
        let request = paths.first == LoaderMemo.requestFlag
        if request { paths.removeFirst() }
        if paths.first == "--" { paths.removeFirst() }
        if request {
            do throws(LoaderWire.DecodeError) {
                reuse = try LoaderMemo.reusableFiles(from: readStandardInput(limit: LoaderMemo.maxRequestBytes))
            } catch {
                // The agent's own bytes, so a bug: say so, and parse everything.
                let line = "sundial internal-load: ignoring the agent's request: \(error)\n"
                _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
            }
        }
        let (result, files) = ConfigurationLoading.load(paths: Array(paths), reusing: reuse)
        let answer = LoaderWire.encode(result, files: files)
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

    /// Standard input to its end, or its first `limit + 1` bytes (which the request's decoder
    /// then refuses as too large).
    static func readStandardInput(limit: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while bytes.count <= limit {
            let n = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if n > 0 {
                bytes += buffer[0..<n]
            } else if n == 0 || errno != EINTR {
                break
            }
        }
        return bytes
    }
}
