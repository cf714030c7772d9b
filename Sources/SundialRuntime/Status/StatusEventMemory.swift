import Synchronization
import SundialCore

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

    /// Feed every event the agent logs (``Agent/addObserver(_:)``); only two names are kept.
    public func observe(_ event: Event) {
        switch event.name {
        case "config.loaded":
            state.withLock { $0.loadedAt = event.ts }
        case "config.rejected":
            var problems: [RejectedReload.Problem] = []
            if case let .array(errors)? = event["errors"] {
                for e in errors.prefix(Self.maxErrors) {
                    guard case let .int(line)? = e["line"], case let .int(column)? = e["column"] else { continue }
                    problems.append(.init(file: e["file"]?.stringValue ?? "?", line: Int(line), column: Int(column),
                                          message: e["message"]?.stringValue ?? ""))
                }
            }
            let rejected = RejectedReload(at: event.ts, reason: event["reason"]?.stringValue ?? "", errors: problems)
            state.withLock { $0.rejected = rejected }
        default: break
        }
    }

    public var configLoadedAt: Instant? { state.withLock { $0.loadedAt } }
    public var lastRejected: RejectedReload? { state.withLock { $0.rejected } }
}
