import SundialCore

/// The text codes the state database and the control protocol use for the core's enums. Written
/// out explicitly (not `allCases` order or Swift names) because they are a file format: changing
/// one needs a migration.
enum StateCodes {
    /// `(outcome, exit_code, signal, detail)` columns of a `RunOutcome`.
    static func columns(_ o: RunOutcome) -> (name: String, exitCode: Int32?, signal: Int32?, detail: String?) {
        switch o {
        case let .launchFailed(reason): (o.name, nil, nil, reason)
        default: (o.name, o.exitCode, o.signalNumber, nil)
        }
    }

    static func outcome(name: String, exitCode: Int32?, signal: Int32?, detail: String?) -> RunOutcome? {
        switch name {
        case "success": .success(exitCode: exitCode ?? 0)
        case "failure": .failure(exitCode: exitCode ?? -1)
        case "signal": .signal(signal ?? 0)
        case "timeout": .timeout
        case "launch_failed": .launchFailed(reason: detail ?? "")
        case "interrupted": .interrupted
        case "unknown": .unknown
        default: nil
        }
    }

    /// `(disposition, reason, run_id)` columns of a ledger entry.
    static func columns(_ d: LedgerEntry.Disposition) -> (name: String, reason: String?, runID: String?) {
        switch d {
        case let .ran(id): ("ran", nil, id.rawValue)
        case let .caughtUp(id): ("caught_up", nil, id.rawValue)
        case let .skipped(reason): ("skipped", reason.rawValue, nil)
        case .missed: ("missed", nil, nil)
        }
    }

    static func disposition(name: String, reason: String?, runID: String?) -> LedgerEntry.Disposition? {
        switch name {
        case "ran": runID.map { .ran(RunID(rawValue: $0)) }
        case "caught_up": runID.map { .caughtUp(RunID(rawValue: $0)) }
        case "skipped": reason.flatMap(SkipReason.init(rawValue:)).map { .skipped($0) }
        case "missed": .missed
        default: nil
        }
    }
}
