import OrderedCollections
import SundialCore
import Synchronization

/// The JSON-lines event log of design §3: masks secrets, encodes each ``Event`` as one line and
/// hands it to an ``EventSink`` in one write.
///
/// It never throws and never stops the caller for long: a line the sink refuses (ENOSPC, EIO, a
/// stalled pipe) is counted, and the next line that gets through is preceded by a `log.dropped`
/// event with `lines`, the number lost. Safe to call from any thread; lines are written in the
/// order their `write(2)`s reach the kernel, never interleaved.
public final class EventLog: Sendable {
    public let masker: SecretMasker
    public let minimumLevel: LogLevel
    private let sink: any EventSink
    private let clock: any SundialClock

    /// Lines lost and not yet reported; read on every write, so an atomic (no lock on the
    /// normal path: concurrent writers only meet in the kernel's O_APPEND write).
    private let pending = Atomic<Int>(0)
    private let total = Atomic<Int>(0)
    private let written = Atomic<Int>(0)
    /// Serialises attempts to write the `log.dropped` notice, so a loss is reported once.
    private let noticeLock = Mutex(())

    /// - Parameters:
    ///   - clock: stamps the `log.dropped` events this log writes itself.
    ///   - minimumLevel: events below it are not written (`--log-level`).
    public init(sink: any EventSink, clock: any SundialClock, masker: SecretMasker = SecretMasker(), minimumLevel: LogLevel = .debug) {
        self.sink = sink
        self.clock = clock
        self.masker = masker
        self.minimumLevel = minimumLevel
    }

    /// Writes `record` (rendered by its JSON encoder, then masked), or counts it as dropped.
    public func log(_ record: LogRecord) {
        guard record.level >= minimumLevel else { return }
        log(record.event)
    }

    /// Writes an already rendered line (after masking), or counts it as dropped. Internal:
    /// everything else logs ``LogRecord``s, so only their encoder names events and fields.
    func log(_ event: Event) {
        guard event.level >= minimumLevel else { return }
        let line = masker.mask(event).jsonLine()
        if pending.load(ordering: .acquiring) > 0, !writeDroppedNotice() {
            countDropped()
            return
        }
        do {
            try sink.write(line)
            written.add(1, ordering: .relaxed)
        } catch {
            countDropped()
        }
    }

    /// Tries to write the pending `log.dropped` notice now, without waiting for the next event
    /// (the agent calls this on a timer, so a quiet agent still reports the loss).
    public func retryPending() {
        if pending.load(ordering: .acquiring) > 0 { _ = writeDroppedNotice() }
    }

    /// Lines lost and not yet reported by a `log.dropped` event.
    public var pendingDroppedLines: Int { pending.load(ordering: .acquiring) }
    /// Lines lost since the log was opened.
    public var totalDroppedLines: Int { total.load(ordering: .acquiring) }
    /// Lines written, `log.dropped` notices included.
    public var writtenLines: Int { written.load(ordering: .acquiring) }

    /// Counts `count` lines as lost without writing them, for a caller that cannot write them
    /// in order (a run's output past what the agent holds before `run.started`): the next
    /// `log.dropped` reports them with the rest.
    public func countDropped(lines count: Int) {
        guard count > 0 else { return }
        pending.add(count, ordering: .acquiringAndReleasing)
        total.add(count, ordering: .relaxed)
    }

    private func countDropped() {
        pending.add(1, ordering: .acquiringAndReleasing)
        total.add(1, ordering: .relaxed)
    }

    /// `true` if nothing is pending or the notice went through.
    private func writeDroppedNotice() -> Bool {
        noticeLock.withLock { _ in
            let lost = pending.load(ordering: .acquiring)
            guard lost > 0 else { return true }
            let notice = LogRecord.logDropped(lines: lost, at: clock.wallNow())
            do {
                try sink.write(notice.jsonLine())
                // Lines lost meanwhile by other threads stay pending for the next notice.
                pending.subtract(lost, ordering: .acquiringAndReleasing)
                written.add(1, ordering: .relaxed)
                return true
            } catch {
                return false
            }
        }
    }
}
