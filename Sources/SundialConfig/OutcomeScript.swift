import SundialCore

/// The `--outcomes` file of `sundial simulate`: per job, the outcome and duration of each
/// successive attempt.
///
/// ```yaml
/// backup:
///   - { outcome: failure, exit_code: 1, duration: 2m }
///   - { outcome: success, duration: 10m }
/// upload: [{ outcome: timeout, duration: 1h }]
/// ```
/// Jobs not listed (or past their list) succeed instantly. JSON is YAML, so both work.
public struct OutcomeScript: Sendable {
    public struct Attempt: Sendable, Hashable {
        public var outcome: RunOutcome
        public var durationMs: Int64
    }

    public var attempts: [JobID: [Attempt]]

    /// Parses the file; every problem is a positioned diagnostic.
    public static func parse(bytes: [UInt8], file: String) -> (script: OutcomeScript?, diagnostics: [Diagnostic]) {
        let (root, readDiagnostics) = YAMLReader().read(bytes: bytes, file: file)
        guard let root else { return (nil, readDiagnostics) }
        var diagnostics: [Diagnostic] = []
        var attempts: [JobID: [Attempt]] = [:]
        guard case .mapping = root.kind else {
            return (nil, [Diagnostic(at: root.location, "expected a map of job ids to lists of attempts")])
        }
        for (job, _, list) in root.entries {
            guard case let .sequence(items) = list.kind else {
                diagnostics.append(Diagnostic(at: list.location, "`\(job)`: expected a list of attempts"))
                continue
            }
            for item in items {
                let name = item["outcome"]?.scalarText ?? "success"
                let code = item["exit_code"]?.scalarText.flatMap { Int32($0) }
                let signal = item["signal"]?.scalarText.flatMap { Int32($0) }
                var ms: Int64 = 0
                if let d = item["duration"]?.scalarText {
                    do throws(DurationParser.ParseError) { ms = try DurationParser.parseMilliseconds(d) } catch {
                        diagnostics.append(Diagnostic(at: item["duration"]!.location, error.message))
                    }
                }
                let outcome: RunOutcome
                switch name {
                case "success": outcome = .success(exitCode: code ?? 0)
                case "failure": outcome = .failure(exitCode: code ?? 1)
                case "timeout": outcome = .timeout
                case "signal": outcome = .signal(signal ?? 9)
                case "launch_failed": outcome = .launchFailed(reason: item["reason"]?.scalarText ?? "simulated launch failure")
                default:
                    diagnostics.append(
                        Diagnostic(
                            at: item["outcome"]?.location ?? item.location, "unknown outcome `\(name)`",
                            hint: "use success, failure, timeout, signal or launch_failed"))
                    continue
                }
                attempts[job, default: []].append(Attempt(outcome: outcome, durationMs: ms))
            }
        }
        return diagnostics.isEmpty ? (OutcomeScript(attempts: attempts), []) : (nil, diagnostics)
    }
}
