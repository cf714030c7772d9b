import SundialCore
import Synchronization

/// The last `limit` bytes of an attempt's output, in whole lines, for `sundial logs`.
///
/// Fed from the runner's reader thread line by line, read once when the attempt ends. Memory is
/// bounded by about twice `limit` (lines are dropped from the front in batches, so a chatty job
/// costs amortised O(1) per line, not a shift of the whole buffer).
final class OutputTail: Sendable {
    private struct State {
        var lines: [String] = []
        /// Index of the first line still kept.
        var start = 0
        /// Bytes of `lines[start...]`, newlines included.
        var bytes = 0
        /// Bytes dropped from the front.
        var dropped = 0
    }

    let limit: Int
    private let state = Mutex(State())

    init(limit: Int) { self.limit = max(0, limit) }

    func append(_ line: OutputLine) {
        let size = line.text.utf8.count + 1
        state.withLock { s in
            guard size <= limit else {
                // One line longer than the whole tail: nothing before it can stay.
                s.dropped += s.bytes + size
                s = State(dropped: s.dropped)
                return
            }
            s.lines.append(line.text)
            s.bytes += size
            while s.bytes > limit {
                let first = s.lines[s.start].utf8.count + 1
                s.bytes -= first
                s.dropped += first
                s.start += 1
            }
            if s.start > 1024, s.start * 2 > s.lines.count {
                s.lines.removeFirst(s.start)
                s.start = 0
            }
        }
    }

    /// The kept lines, each ending in `\n`, as a record of `runID`'s `attempt`; `nil` when the
    /// attempt printed nothing.
    func record(runID: RunID, attempt: Int) -> RunOutputRecord? {
        state.withLock { s in
            guard s.bytes > 0 || s.dropped > 0 else { return nil }
            var text = ""
            text.reserveCapacity(s.bytes)
            for line in s.lines[s.start...] {
                text += line
                text += "\n"
            }
            return RunOutputRecord(runID: runID, attempt: attempt, text: text, droppedBytes: s.dropped)
        }
    }
}
