#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Cuts one output stream into lines, holding at most `maxLineBytes + 1` bytes whatever the job
/// writes: a line longer than the limit is emitted cut (at a UTF-8 boundary, marked truncated)
/// and the rest of it is skipped up to the next `\n`.
///
/// With `secrets`, the stream is masked by a ``SecretStreamMasker`` *before* it is cut into
/// lines and truncated: a secret spanning lines or reads is hidden, and a cut never prints part
/// of one. The masker holds back at most the longest secret's length − 1 bytes more.
struct OutputAssembler {
    let maxLineBytes: Int
    private var partial: [UInt8] = []
    /// Skipping the remainder of a line that was already emitted cut.
    private var discarding = false
    private(set) var truncatedLines = 0
    /// `nil` without secrets: the bytes go straight to the line splitter.
    private var masker: SecretStreamMasker?

    init(maxLineBytes: Int, secrets: [String] = []) {
        self.init(maxLineBytes: maxLineBytes, secrets: SecretAutomaton(secrets: secrets))
    }

    /// With the secrets' automaton already built (`nil`: none to mask), so that the streams of
    /// one run share it rather than building it each.
    init(maxLineBytes: Int, secrets: SecretAutomaton?) {
        self.maxLineBytes = max(1, maxLineBytes)
        masker = secrets.map { SecretStreamMasker(automaton: $0) }
    }

    /// Bytes held in memory now: the pending line and the masker's undecided tail.
    var heldBytes: Int { partial.count + (masker?.heldCount ?? 0) }

    /// Feeds `chunk`, calling `emit(bytes, truncated)` for each complete (or cut) line.
    mutating func feed(_ chunk: UnsafeRawBufferPointer, _ emit: (UnsafeRawBufferPointer, Bool) -> Void) {
        guard var m = masker else { return split(chunk, emit) }
        masker = nil  // taken out while it calls back into `split`
        m.feed(chunk) { split($0, emit) }
        masker = m
    }

    /// Masks the masker's held-back tail (a cut: nothing after it will come).
    private mutating func flushMasker(_ emit: (UnsafeRawBufferPointer, Bool) -> Void) {
        guard var m = masker else { return }
        masker = nil
        m.flush { split($0, emit) }
        masker = m
    }

    private mutating func split(_ chunk: UnsafeRawBufferPointer, _ emit: (UnsafeRawBufferPointer, Bool) -> Void) {
        guard let base = chunk.baseAddress else { return }
        var offset = 0
        let count = chunk.count
        while offset < count {
            let start = base + offset
            let nl = memchr(start, 0x0A, count - offset)
            let length = nl.map { UnsafeRawPointer($0) - start } ?? (count - offset)
            let hasNewline = nl != nil
            let piece = UnsafeRawBufferPointer(start: start, count: length)
            if discarding {
                if hasNewline { discarding = false }
            } else if partial.count + length <= maxLineBytes {
                if hasNewline {
                    if partial.isEmpty {
                        emit(piece, false)
                    } else {
                        partial.append(contentsOf: piece)
                        partial.withUnsafeBytes { emit($0, false) }
                        partial.removeAll(keepingCapacity: true)
                    }
                } else {
                    partial.append(contentsOf: piece)
                }
            } else {
                // Over-long: keep one byte past the limit to find a UTF-8 boundary.
                partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: piece.prefix(maxLineBytes + 1 - partial.count)))
                emitCut(emit)
                if !hasNewline { discarding = true }
            }
            offset += length + (hasNewline ? 1 : 0)
        }
    }

    /// Emits the pending partial line as cut (its continuation is being dropped), and skips
    /// whatever arrives for it later.
    mutating func cutPending(_ emit: (UnsafeRawBufferPointer, Bool) -> Void) {
        flushMasker(emit)
        guard !partial.isEmpty else {
            discarding = true
            return
        }
        truncatedLines += 1
        partial.withUnsafeBytes { emit($0, true) }
        partial.removeAll(keepingCapacity: true)
        discarding = true
    }

    /// End of stream: a last line without `\n` is still a line.
    mutating func finish(_ emit: (UnsafeRawBufferPointer, Bool) -> Void) {
        flushMasker(emit)
        if !partial.isEmpty, !discarding { partial.withUnsafeBytes { emit($0, false) } }
        partial = []
        discarding = false
    }

    private mutating func emitCut(_ emit: (UnsafeRawBufferPointer, Bool) -> Void) {
        var cut = min(maxLineBytes, partial.count)
        // Do not split a UTF-8 sequence: if the first dropped byte is a continuation byte,
        // move the cut back to the start of its character.
        if cut < partial.count {
            var back = 0
            while cut > 0, back < 3, partial[cut] & 0xC0 == 0x80 {
                cut -= 1
                back += 1
            }
            if back == 3 && partial[cut] & 0xC0 == 0x80 { cut = min(maxLineBytes, partial.count) }
        }
        truncatedLines += 1
        partial.withUnsafeBytes { emit(UnsafeRawBufferPointer(rebasing: $0[..<cut]), true) }
        partial.removeAll(keepingCapacity: true)
    }
}
