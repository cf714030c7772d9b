import SundialCore
import Synchronization

/// Remembers, from the agent's own events, what the status page shows about reloads: when the
/// running revision was loaded (`config.loaded`) and the last rejected reload with its
/// positioned errors (`config.rejected`).
///
/// An observer (like the metrics exporter) rather than new agent state, so the page reads what
/// the event log says. Holds one small value: at most ``maxErrors`` errors of one rejection.
public final class StatusEventMemory: Sendable {
    /// Errors of a rejected reload kept; the page shows 50 and the log has them all.
    public static let maxErrors = 100

    private let state = Mutex<(loadedAt: Instant?, rejected: RejectedReload?)>((nil, nil))

    public init() {}

    /// Feed every record the agent logs (``Agent/addObserver(_:)``); only two kinds are kept.
    public func observe(_ record: LogRecord) {
        switch record {
        case let .configLoaded(r):
            state.withLock { $0.loadedAt = r.at }
        case let .configRejected(r):
            let problems = r.errors.prefix(Self.maxErrors).map {
                RejectedReload.Problem(file: $0.file, line: $0.line, column: $0.column, message: $0.message)
            }
            let rejected = RejectedReload(at: r.at, reason: r.reason, errors: Array(problems))
            state.withLock { $0.rejected = rejected }
        default: break
        }
    }

    public var configLoadedAt: Instant? { state.withLock { $0.loadedAt } }
    public var lastRejected: RejectedReload? { state.withLock { $0.rejected } }
}
