/// A run's id: a ULID (26 Crockford base-32 characters) so ids sort by creation time, as text,
/// in logs, in `jq` and in SQLite, without a separate timestamp column.
///
/// Hand-written (a dozen lines) rather than a dependency; the time and random parts are
/// arguments, so the core stays pure and tests are deterministic.
public struct RunID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }

    /// A ULID for `time` with 80 random bits taken from `random`.
    public init(time: Instant, random: inout some RandomSource) {
        let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)
        var chars = [UInt8](repeating: 0, count: 26)
        var t = UInt64(max(0, time.unixMillis)) & 0xFFFF_FFFF_FFFF
        for i in stride(from: 9, through: 0, by: -1) {
            chars[i] = alphabet[Int(t & 31)]
            t >>= 5
        }
        for i in 10..<26 {
            chars[i] = alphabet[min(31, Int(random.nextUnit() * 32))]
        }
        rawValue = String(decoding: chars, as: UTF8.self)
    }

    public static func < (a: RunID, b: RunID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { rawValue }
}
