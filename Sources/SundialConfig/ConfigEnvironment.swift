import SundialCore

/// What the pure loader may ask of the machine, injected so that loading stays pure and tests
/// can say "this zone exists" or "this file is unreadable" without touching the system.
public struct ConfigEnvironment: Sendable {
    /// Whether an IANA zone name is known to the tz database.
    public var zoneExists: @Sendable (String) -> Bool
    /// Whether a file (an `env_file`) can be read by the agent.
    public var fileReadable: @Sendable (String) -> Bool

    public init(
        zoneExists: @escaping @Sendable (String) -> Bool = { _ in true },
        fileReadable: @escaping @Sendable (String) -> Bool = { _ in true }
    ) {
        self.zoneExists = zoneExists
        self.fileReadable = fileReadable
    }
}

/// The loader's result: a valid set, or every problem found.
public struct ConfigLoadResult: Sendable {
    public var jobSet: JobSet?
    public var diagnostics: [Diagnostic]
    /// File contents by path, kept to print the offending source line under a diagnostic.
    public var sources: [String: [UInt8]]

    public init(jobSet: JobSet?, diagnostics: [Diagnostic], sources: [String: [UInt8]] = [:]) {
        self.jobSet = jobSet
        self.diagnostics = diagnostics
        self.sources = sources
    }

    public var isValid: Bool { jobSet != nil && !diagnostics.contains { $0.severity == .error } }
}
