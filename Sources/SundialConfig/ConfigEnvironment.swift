import OrderedCollections
import SundialCore
import Synchronization

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

/// One question the loader asked the machine while it loaded a file, and the answer.
///
/// A file's result depends on its bytes and on these answers alone, so a file whose bytes are
/// the same and whose questions get the same answers again needs no second parse
/// (``ReusableFile``): a zone removed by a tzdata update or an `env_file` deleted since still
/// makes the file's jobs an error, as a fresh load would.
public struct EnvironmentQuery: Hashable, Sendable {
    public enum Kind: Hashable, Sendable, CaseIterable { case zoneExists, fileReadable }
    public var kind: Kind
    public var name: String
    public var answer: Bool

    public init(_ kind: Kind, _ name: String, answer: Bool) {
        self.kind = kind
        self.name = name
        self.answer = answer
    }
}

extension ConfigEnvironment {
    /// This environment, noting each distinct question and its answer in `log`.
    func recording(into log: QueryLog) -> ConfigEnvironment {
        let (zones, files) = (zoneExists, fileReadable)
        return ConfigEnvironment(
            zoneExists: { name in
                let answer = zones(name)
                log.note(EnvironmentQuery(.zoneExists, name, answer: answer))
                return answer
            },
            fileReadable: { path in
                let answer = files(path)
                log.note(EnvironmentQuery(.fileReadable, path, answer: answer))
                return answer
            })
    }

    /// Whether every question of `queries` gets the same answer now.
    func answersAgain(_ queries: [EnvironmentQuery]) -> Bool {
        queries.allSatisfy { q in
            switch q.kind {
            case .zoneExists: zoneExists(q.name) == q.answer
            case .fileReadable: fileReadable(q.name) == q.answer
            }
        }
    }
}

/// The questions of one file's load (``ConfigEnvironment/recording(into:)``), each once.
final class QueryLog: Sendable {
    private let queries = Mutex<OrderedSet<EnvironmentQuery>>([])
    func note(_ q: EnvironmentQuery) { _ = queries.withLock { $0.append(q) } }
    var all: [EnvironmentQuery] { queries.withLock { Array($0) } }
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
