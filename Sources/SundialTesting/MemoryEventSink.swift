import SundialCore
import SundialRuntime
import Synchronization

/// An ``EventSink`` that keeps lines in memory and can be told to fail, so tests can assert on
/// the exact event stream and simulate a full disk (`failing = ENOSPC`) without one.
public final class MemoryEventSink: EventSink {
    private struct State {
        var lines: [[UInt8]] = []
        var failing: Int32? = nil
        var attempts = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// When set, every write throws this errno (e.g. `ENOSPC`, `EIO`) and stores nothing.
    public var failing: Int32? {
        get { state.withLock { $0.failing } }
        set { state.withLock { $0.failing = newValue } }
    }

    public func write(_ line: [UInt8]) throws(SinkError) {
        try state.withLock { (s: inout State) throws(SinkError) in
            s.attempts += 1
            if let code = s.failing { throw SinkError(code: code) }
            s.lines.append(line)
        }
    }

    /// The lines written so far, as text (each ends in `\n`).
    public var lines: [String] { state.withLock { $0.lines.map { String(decoding: $0, as: UTF8.self) } } }
    /// Every write attempt, failed ones included.
    public var attempts: Int { state.withLock { $0.attempts } }

    public func removeAll() { state.withLock { $0.lines.removeAll() } }
}
