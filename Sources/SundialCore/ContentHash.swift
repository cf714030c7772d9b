/// FNV-1a, 64-bit: a fast, dependency-free content hash for config revisions.
///
/// Not a security boundary: a revision only answers "did the configuration change?" and
/// "which configuration is this box running?", so a cryptographic hash (and a crypto package
/// to build on every box) would buy nothing.
public struct ContentHash: Sendable {
    private var state: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    public mutating func combine(_ bytes: some Sequence<UInt8>) {
        for b in bytes {
            state ^= UInt64(b)
            state &*= 0x0000_0100_0000_01B3
        }
    }

    public mutating func combine(_ s: String) {
        combine(s.utf8)
        combine(CollectionOfOne(0))
    }

    /// 16 lowercase hex digits.
    public var hex: String {
        let s = String(state, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}
