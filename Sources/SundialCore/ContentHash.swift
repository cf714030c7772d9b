/// FNV-1a, 64-bit: a fast, dependency-free content hash for config revisions.
///
/// Not a security boundary: a revision only answers "did the configuration change?" and
/// "which configuration is this box running?", so a cryptographic hash (and a crypto package
/// to build on every box) would buy nothing.
public struct ContentHash: Sendable {
    private var state: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    public mutating func combine(_ bytes: some Sequence<UInt8>) {
        // Contiguous bytes (an array, a native string's UTF-8) take a plain loop over a buffer:
        // this generic is not specialised across modules, and its per-element iterator calls
        // were a quarter of `sundial validate`'s instructions (docs/benchmarks.md, issue 15).
        if bytes.withContiguousStorageIfAvailable({ combine(buffer: $0) }) != nil { return }
        for b in bytes {
            state ^= UInt64(b)
            state &*= 0x0000_0100_0000_01B3
        }
    }

    private mutating func combine(buffer: UnsafeBufferPointer<UInt8>) {
        var h = state
        for b in buffer {
            h ^= UInt64(b)
            h &*= 0x0000_0100_0000_01B3
        }
        state = h
    }

    public mutating func combine(_ s: String) {
        combine(s.utf8)
        combine(CollectionOfOne(0))
    }

    /// The hash itself.
    public var value: UInt64 { state }

    /// 16 lowercase hex digits.
    public var hex: String {
        let s = String(state, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}
