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
/// - Coverage is the union of all occurrences of all secrets (overlapping and adjacent ones
///   included), so no byte of any occurrence is printed. Each run of hidden bytes becomes
///   ``SecretMasker/mask`` once per line it touches; its newlines are kept, so a three-line
///   secret still makes three lines (each `***`), and line numbers stay meaningful.
/// - Bytes that might start a secret not yet complete are held back (at most the longest
///   secret's length minus one) until the next bytes decide. A secret without a newline can
///   never hold back a newline, so complete lines are not delayed; only a multi-line secret's
///   possible beginning waits for what follows.
/// - At a cut (``flush(_:)``: end of stream, `max_bytes` reached) the held-back tail is
///   masked: it is the beginning of a secret whose end was never seen, and a cut must not
///   print part of a secret.
///
/// Policy on values: empty ones are ignored (they would match everywhere), and so are values
/// made only of newlines (masking would leave them unchanged anyway, and they would hold every
/// line back). Any other value is masked however short, as ``SecretMasker`` does: a one-letter
/// secret hides every occurrence of that letter.
///
/// Memory: ``heldCount`` ≤ longest secret − 1 between calls, whatever the job writes. Work per
/// byte: a table look-up, plus a `memcmp` per secret where a secret's first byte appears.
struct SecretStreamMasker {
    /// Secret values as bytes, longest first (so a possible longer match is seen first).
    private let secrets: [[UInt8]]
    let longest: Int
    /// `firstBytes[b]`: some secret starts with byte `b`.
    private let firstBytes: [Bool]
    /// The undecided tail of the stream: each start in it may still begin a secret.
    private var held: [UInt8] = []
    /// Stream offset of `held[0]` (bytes released before it).
    private var heldOffset = 0
    /// Stream offset up to which (exclusive) the bytes belong to a secret seen so far.
    private var coverEnd = 0
    /// The last byte released was hidden and was not a newline: the mask already printed
    /// stands for further hidden bytes of the same line.
    private var masking = false

    private static let maskBytes: [UInt8] = Array(SecretMasker.mask.utf8)
    private static let newline: [UInt8] = [0x0A]

    /// `nil` when no value needs masking (see the policy above), so callers skip the work.
    init?(secrets values: some Sequence<String>) {
        var list: [[UInt8]] = []
        for v in values {
            let bytes = Array(v.utf8)
            guard bytes.contains(where: { $0 != 0x0A }), !list.contains(bytes) else { continue }
            list.append(bytes)
        }
        guard !list.isEmpty else { return nil }
        list.sort { $0.count > $1.count }
        secrets = list
        longest = list[0].count
        var table = [Bool](repeating: false, count: 256)
        for s in list { table[Int(s[0])] = true }
        firstBytes = table
    }

    /// Bytes held back, waiting for the next chunk (at most ``longest`` − 1).
    var heldCount: Int { held.count }

    /// Takes the next bytes of the stream; calls `out` with the masked bytes that are decided,
    /// in order (slices valid only during the call).
    mutating func feed(_ chunk: UnsafeRawBufferPointer, _ out: (UnsafeRawBufferPointer) -> Void) {
        guard chunk.count > 0 else { return }
        if !held.isEmpty {
            // Starts in the held tail: decided with the held bytes and the chunk's first
            // `longest - 1` bytes, enough for any secret starting there.
            var joined = held
            joined.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk.prefix(longest - 1)))
            let heldBefore = held.count
            let stop = joined.withUnsafeBytes { scan($0, base: heldOffset, limit: heldBefore, out) }
            if stop < heldBefore {
                // Still undecided, which needs fewer than `longest - 1` bytes after the held
                // ones: the whole chunk is in `joined`.
                held = Array(joined[stop...])
                heldOffset += stop
                return
            }
            heldOffset += heldBefore
            held.removeAll(keepingCapacity: true)
        }
        let stop = scan(chunk, base: heldOffset, limit: chunk.count, out)
        held.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[stop...]))
        heldOffset += stop
    }

    /// A cut: the stream ends here, or what follows is dropped. The held-back tail (the
    /// beginning of a secret whose end never came) is released masked.
    mutating func flush(_ out: (UnsafeRawBufferPointer) -> Void) {
        for byte in held { releaseHidden(byte, out) }
        heldOffset += held.count
        coverEnd = max(coverEnd, heldOffset)
        held.removeAll(keepingCapacity: true)
        masking = false
    }

    // MARK: - Scanning

    private enum Match {
        case none
        case length(Int)
        case undecided
    }

    /// Decides the starts `0..<limit` of `w` (whose byte 0 is at stream offset `base`) and
    /// releases those bytes, hidden or not. Returns the first start that might begin a secret
    /// longer than what `w` holds (nothing from it on is released), else `limit`.
    private mutating func scan(
        _ w: UnsafeRawBufferPointer, base: Int, limit: Int,
        _ out: (UnsafeRawBufferPointer) -> Void
    ) -> Int {
        var plainFrom = -1  // start of a run of visible bytes not yet passed to `out`
        var s = 0
        while s < limit {
            let byte = w[s]
            if firstBytes[Int(byte)] {
                switch match(w, at: s) {
                case .undecided:
                    if plainFrom >= 0 { out(UnsafeRawBufferPointer(rebasing: w[plainFrom..<s])) }
                    return s
                case let .length(n):
                    coverEnd = max(coverEnd, base + s + n)
                case .none:
                    break
                }
            }
            if base + s < coverEnd {
                if plainFrom >= 0 {
                    out(UnsafeRawBufferPointer(rebasing: w[plainFrom..<s]))
                    plainFrom = -1
                }
                releaseHidden(byte, out)
            } else {
                if plainFrom < 0 { plainFrom = s }
                masking = false
            }
            s += 1
        }
        if plainFrom >= 0 { out(UnsafeRawBufferPointer(rebasing: w[plainFrom..<limit])) }
        return limit
    }

    /// The longest secret starting at `w[s]`; `undecided` if a longer one than any complete
    /// match could still start there (its beginning fills the rest of `w`).
    private func match(_ w: UnsafeRawBufferPointer, at s: Int) -> Match {
        let available = w.count - s
        let p = w.baseAddress! + s
        for secret in secrets {
            let n = secret.count
            if available < n {
                if secret.withUnsafeBytes({ memcmp(p, $0.baseAddress!, available) }) == 0 { return .undecided }
            } else if secret.withUnsafeBytes({ memcmp(p, $0.baseAddress!, n) }) == 0 {
                return .length(n)
            }
        }
        return .none
    }

    /// One hidden byte: newlines stay, and each line's run of hidden bytes prints one mask.
    private mutating func releaseHidden(_ byte: UInt8, _ out: (UnsafeRawBufferPointer) -> Void) {
        if byte == 0x0A {
            Self.newline.withUnsafeBytes(out)
            masking = false
        } else if !masking {
            Self.maskBytes.withUnsafeBytes(out)
            masking = true
        }
    }
}
