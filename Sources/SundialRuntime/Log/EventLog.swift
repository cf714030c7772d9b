import SundialCore
import Synchronization

/// The JSON-lines event log of design §3: masks secrets, encodes each ``Event`` as one line and
/// hands it to an ``EventSink`` in one write.
///
/// It never throws and never stops the caller for long: a line the sink refuses (ENOSPC, EIO, a
/// stalled pipe) is counted, and the next line that gets through is preceded by a `log.dropped`
/// event with `lines`, the number lost. Safe to call from any thread; lines are written in the
/// order calls take the internal lock, never interleaved.
public final class EventLog: Sendable {
    public let masker: SecretMasker
    public let minimumLevel: LogLevel
    private let sink: any EventSink
    private let clock: any SundialClock

    private struct Counters {
        var pendingDropped = 0
        var totalDropped = 0
        var written = 0
    }

    private let counters = Mutex(Counters())

    /// - Parameters:
    ///   - clock: stamps the `log.dropped` events this log writes itself.
    ///   - minimumLevel: events below it are not written (`--log-level`).
    public init(sink: any EventSink, clock: any SundialClock, masker: SecretMasker = SecretMasker(), minimumLevel: LogLevel = .debug) {
        self.sink = sink
        self.clock = clock
        self.masker = masker
        self.minimumLevel = minimumLevel
    }

    /// Writes `event` (after masking), or counts it as dropped.
    public func log(_ event: Event) {
        guard event.level >= minimumLevel else { return }
        let line = masker.mask(event).jsonLine()
        counters.withLock { c in
            guard writeDroppedNotice(&c) else {
                c.pendingDropped += 1
                c.totalDropped += 1
                return
            }
            do {
                try sink.write(line)
                c.written += 1
            } catch {
                c.pendingDropped += 1
                c.totalDropped += 1
            }
        }
    }

    /// Tries to write the pending `log.dropped` notice now, without waiting for the next event
    /// (the agent calls this on a timer, so a quiet agent still reports the loss).
    public func retryPending() {
        counters.withLock { c in _ = writeDroppedNotice(&c) }
    }

    /// Lines lost and not yet reported by a `log.dropped` event.
    public var pendingDroppedLines: Int { counters.withLock { $0.pendingDropped } }
    /// Lines lost since the log was opened.
    public var totalDroppedLines: Int { counters.withLock { $0.totalDropped } }
    /// Lines written, `log.dropped` notices included.
    public var writtenLines: Int { counters.withLock { $0.written } }

    /// `true` if nothing is pending or the notice went through.
    private func writeDroppedNotice(_ c: inout Counters) -> Bool {
        guard c.pendingDropped > 0 else { return true }
        let notice = Event("log.dropped", at: clock.wallNow(), level: .warn, ["lines": .int(Int64(c.pendingDropped))])
        do {
            try sink.write(notice.jsonLine())
            c.pendingDropped = 0
            c.written += 1
            return true
        } catch {
            return false
        }
    }
}
