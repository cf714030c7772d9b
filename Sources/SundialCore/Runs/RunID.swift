/// A run's id: a ULID (26 Crockford base-32 characters) so ids sort by creation time, as text,
/// in logs, in `jq` and in SQLite, without a separate timestamp column.
///
/// Hand-written (a dozen lines) rather than a dependency; the time and random parts are
/// arguments, so the core stays pure and tests are deterministic.
public struct RunID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }

    /// A ULID for `time` with 80 random bits taken from `random` (two draws of 40 bits).
    ///
    /// Written into one 26-byte string buffer: the scheduler makes one id per run, a million
    /// in a simulated year.
    public init(time: Instant, random: inout some RandomSource) {
        let alphabet: StaticString = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
        let a = alphabet.utf8Start
        let t0 = UInt64(max(0, time.unixMillis)) & 0xFFFF_FFFF_FFFF
        let r0 = UInt64(random.nextUnit() * 1_099_511_627_776) & 0xFF_FFFF_FFFF
        let r1 = UInt64(random.nextUnit() * 1_099_511_627_776) & 0xFF_FFFF_FFFF
        rawValue = String(unsafeUninitializedCapacity: 26) { buf in
            var t = t0
            for i in stride(from: 9, through: 0, by: -1) {
                buf[i] = a[Int(t & 31)]
                t >>= 5
            }
            var r = r0
            for i in stride(from: 17, through: 10, by: -1) {
                buf[i] = a[Int(r & 31)]
                r >>= 5
            }
            r = r1
            for i in stride(from: 25, through: 18, by: -1) {
                buf[i] = a[Int(r & 31)]
                r >>= 5
            }
            return 26
        }
    }

    public static func < (a: RunID, b: RunID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { rawValue }
}
