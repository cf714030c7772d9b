/// Why a job could not be started. Public error as a struct holding a ``Code`` (the habit of
/// swift-subprocess's `SubprocessError`): callers switch on the code, users read the message.
///
/// A launch error becomes the run's ``RunOutcome/launchFailed(reason:)`` with ``message`` as the
/// reason, so every message names the thing at fault and, where possible, the fix.
public struct LaunchError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable, CaseIterable {
        /// The command is not on `PATH`, or its path does not exist.
        case commandNotFound = "command_not_found"
        /// The command exists but cannot be executed (mode, directory, format).
        case notExecutable = "not_executable"
        /// `workdir` does not exist, is not a directory or cannot be entered.
        case badWorkdir = "bad_workdir"
        /// `env_file` cannot be read or parsed.
        case envFile = "env_file"
        /// `env_file` is readable by group or others while the job has secret variables
        /// (`secrets`, or a webhook's `secret_env`).
        case insecureEnvFile = "insecure_env_file"
        /// `user` or `group` is set but the agent does not run as root.
        case notRoot = "not_root"
        /// `user` or `group` names no account on this system.
        case unknownUser = "unknown_user"
        /// The command, an argument or the environment cannot be passed to `exec` (NUL byte...).
        case invalidCommand = "invalid_command"
        /// The system refused to create the process (fork, pipe, descriptor limits...).
        case spawnFailed = "spawn_failed"
    }

    public var code: Code
    public var message: String
    /// The job's secret values known when the launch failed: its `env` values, and its
    /// `env_file`'s when the file was read before the failure. ``LaunchSpec`` has already masked
    /// them out of ``message``; the caller registers them with the agent's ``SecretMasker``
    /// before the reason can be logged or stored, so nothing else about the run shows them
    /// either. Empty for an error that did not come from a ``LaunchSpec``.
    public var secretValues: [String] = []

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

/// The text of an `errno` value, e.g. "No such file or directory".
func errnoText(_ e: Int32) -> String {
    guard let p = strerror(e) else { return "errno \(e)" }
    return String(cString: p)
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
