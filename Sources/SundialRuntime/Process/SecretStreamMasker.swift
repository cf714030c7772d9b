#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Masks a job's secret values in one of its output streams *as bytes arrive*, before the
/// stream is cut into lines.
///
/// Why on the stream and not per line (as ``SecretMasker`` does for whole events): a value with
/// a newline (an `env_file` `"a\nb"`, a PEM key) spans several `run.output` lines, and no single
/// line contains it; a value can also straddle two `read()`s, or the `max_line_bytes` cut, which
/// would print its first bytes. Here every byte that belongs to an occurrence of any secret is
/// hidden, whatever the chunking:
///
/// - Coverage is the union of all occurrences of all secrets (overlapping, nested and adjacent
///   ones included), so no byte of any occurrence is printed: with `abc` and `cde`, `abcde` is
///   hidden whole (a leftmost-longest replacement would print `de`). Each run of hidden bytes
///   becomes ``SecretMasker/mask`` once per line it touches; its newlines are kept, so a
///   three-line secret still makes three lines (each `***`), and line numbers stay meaningful.
/// - The bytes that might begin a secret not yet complete are held back until the next bytes
///   decide: exactly the longest tail of the stream that is a proper beginning of a secret (at
///   most the longest secret's length − 1). A secret without a newline can never hold back a
///   newline, so complete lines are not delayed; only a multi-line secret's possible beginning
///   waits for what follows.
/// - At a cut (``flush(_:)``: end of stream, `max_bytes` reached) the held-back tail is
///   masked: it is the beginning of a secret whose end was never seen, and a cut must not
///   print part of a secret. What follows a cut is read afresh.
///
/// Policy on values: empty ones are ignored (they would match everywhere), and so are values
/// made only of newlines (masking would leave them unchanged anyway, and they would hold every
/// line back). Any other value is masked however short, as ``SecretMasker`` does: a one-letter
/// secret hides every occurrence of that letter.
///
/// Work: the bytes go once through a ``SecretAutomaton`` (built once per secret set, shared by
/// the run's streams), whose state carries from one read to the next: nothing is compared
/// twice, at most two transitions per byte whatever the secrets and the chunking. Memory:
/// ``heldCount`` ≤ longest secret − 1 between calls, whatever the job writes.
struct SecretStreamMasker {
    let automaton: SecretAutomaton
    var longest: Int { automaton.longest }
    /// The automaton's state after the last byte read.
    private var state: Int32 = 0
    /// The undecided tail of the stream is `held[heldStart...]` (a prefix already released is
    /// dropped lazily, so a read of one byte does not move the whole tail).
    private var held: [UInt8] = []
    private var heldStart = 0
    /// Stream offset of the first byte not yet released (the first byte held).
    private var released = 0
    /// Stream offset just past the last byte read.
    private var streamEnd = 0
    /// Ranges of stream offsets that belong to a secret and are not yet all released:
    /// `covers[coversStart...]`, disjoint, ascending, none adjacent.
    private var covers: [Range<Int>] = []
    private var coversStart = 0
    /// The last byte released was hidden and was not a newline: the mask already printed
    /// stands for further hidden bytes of the same line.
    private var masking = false
    /// Work done (tests: it is linear in the bytes read): automaton transitions tried, at most
    /// two per byte; and bytes copied into the held tail, each byte once, plus compactions that
    /// move at most what was dropped before them.
    private(set) var steps = 0
    private(set) var copiedBytes = 0

    private static let maskBytes: [UInt8] = Array(SecretMasker.mask.utf8)
    private static let newline: [UInt8] = [0x0A]

    /// `nil` when no value needs masking (see the policy above), so callers skip the work.
    init?(secrets values: some Sequence<String>) {
        guard let automaton = SecretAutomaton(secrets: values) else { return nil }
        self.init(automaton: automaton)
    }

    /// A masker over an automaton already built (one per secret set, not per stream).
    init(automaton: SecretAutomaton) {
        self.automaton = automaton
    }

    /// Bytes held back, waiting for the next chunk (at most ``longest`` − 1).
    var heldCount: Int { held.count - heldStart }

    /// Takes the next bytes of the stream; calls `out` with the masked bytes that are decided,
    /// in order (slices valid only during the call).
    mutating func feed(_ chunk: UnsafeRawBufferPointer, _ out: (UnsafeRawBufferPointer) -> Void) {
        guard chunk.count > 0 else { return }
        let chunkOffset = streamEnd
        var tried = 0
        state = automaton.read(chunk, from: state, steps: &tried) { end, length in
            cover(chunkOffset + end - length..<chunkOffset + end)
        }
        steps += tried
        streamEnd += chunk.count
        let keep = automaton.held(in: state)
        let decided = streamEnd - keep

        // Release what is decided: first from the held tail, then from the chunk.
        let fromHeld = min(heldCount, decided - released)
        if fromHeld > 0 {
            held.withUnsafeBytes { release(UnsafeRawBufferPointer(rebasing: $0[heldStart..<heldStart + fromHeld]), out) }
            heldStart += fromHeld
        }
        if decided > released {
            release(UnsafeRawBufferPointer(rebasing: chunk[(released - chunkOffset)..<(decided - chunkOffset)]), out)
        }

        // Keep the undecided tail: the last `keep` bytes of the held tail and the chunk.
        if keep <= chunk.count {
            held.removeAll(keepingCapacity: true)
            heldStart = 0
            held.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[(chunk.count - keep)...]))
            copiedBytes += keep
        } else {
            heldStart = held.count - (keep - chunk.count)
            if heldStart > 4096, heldStart > held.count / 2 {
                copiedBytes += held.count - heldStart
                held.removeSubrange(..<heldStart)
                heldStart = 0
            }
            held.append(contentsOf: chunk)
            copiedBytes += chunk.count
        }
    }

    /// A cut: the stream ends here, or what follows is dropped. The held-back tail (the
    /// beginning of a secret whose end never came) is released masked.
    mutating func flush(_ out: (UnsafeRawBufferPointer) -> Void) {
        held.withUnsafeBytes { releaseHidden(UnsafeRawBufferPointer(rebasing: $0[heldStart...]), out) }
        held.removeAll(keepingCapacity: true)
        heldStart = 0
        released = streamEnd
        covers.removeAll(keepingCapacity: true)
        coversStart = 0
        state = 0
        masking = false
    }

    // MARK: - Releasing

    /// Adds an occurrence; it ends at the last byte read, so it can only merge with the last
    /// ranges (it may swallow several: a long secret around short ones).
    private mutating func cover(_ range: Range<Int>) {
        var lower = range.lowerBound
        while covers.count > coversStart, let last = covers.last, last.upperBound >= lower {
            lower = min(lower, last.lowerBound)
            covers.removeLast()
        }
        covers.append(lower..<range.upperBound)
    }

    /// Releases `bytes`, the stream's bytes from offset `released` on, hidden or not.
    private mutating func release(_ bytes: UnsafeRawBufferPointer, _ out: (UnsafeRawBufferPointer) -> Void) {
        let base = released
        let end = base + bytes.count
        var at = base
        while at < end {
            while coversStart < covers.count, covers[coversStart].upperBound <= at { coversStart += 1 }
            if coversStart < covers.count, covers[coversStart].lowerBound <= at {
                let stop = min(covers[coversStart].upperBound, end)
                releaseHidden(UnsafeRawBufferPointer(rebasing: bytes[(at - base)..<(stop - base)]), out)
                at = stop
            } else {
                let stop = coversStart < covers.count ? min(covers[coversStart].lowerBound, end) : end
                out(UnsafeRawBufferPointer(rebasing: bytes[(at - base)..<(stop - base)]))
                masking = false
                at = stop
            }
        }
        released = end
        if coversStart > 64, coversStart > covers.count / 2 {
            covers.removeSubrange(..<coversStart)
            coversStart = 0
        }
    }

    /// Hidden bytes: newlines stay, and each line's run of hidden bytes prints one mask.
    private mutating func releaseHidden(_ bytes: UnsafeRawBufferPointer, _ out: (UnsafeRawBufferPointer) -> Void) {
        guard let base = bytes.baseAddress else { return }
        var at = 0
        while at < bytes.count {
            let nl = memchr(base + at, 0x0A, bytes.count - at).map { UnsafeRawPointer($0) - base }
            let lineEnd = nl ?? bytes.count
            if lineEnd > at, !masking {
                Self.maskBytes.withUnsafeBytes(out)
                masking = true
            }
            if let nl {
                Self.newline.withUnsafeBytes(out)
                masking = false
                at = nl + 1
            } else {
                at = lineEnd
            }
        }
    }
}
