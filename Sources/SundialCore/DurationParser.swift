/// Parses Sundial's durations: `500ms`, `30s`, `5m`, `1h30m`, `1d`, `2w`.
///
/// Units, largest first, each at most once: `w` `d` `h` `m` `s` `ms`. The grammar is the one
/// the schema's pattern enforces; this parser also enforces range (a duration must be
/// representable and at most 100 years) so that `99999999999d` is an error, not an overflow.
public enum DurationParser {
    public struct ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// The upper bound on any duration: 100 years in milliseconds.
    public static let maximumMilliseconds: Int64 = 100 * 366 * 86_400_000

    public static func parse(_ text: String) throws(ParseError) -> Duration {
        .milliseconds(try parseMilliseconds(text))
    }

    /// The units, largest first: their place is the order a duration must follow.
    private static let unitFactors: [Int64] = [604_800_000, 86_400_000, 3_600_000, 60_000, 1000, 1]

    /// The place of the unit `b[start..<end]` in ``unitFactors`` (`w d h m s ms`), nil for any
    /// other letters. On the bytes: every job's timeout, jitter and retry delays pass here,
    /// and a `String` per unit compared against a table of `String`s ran about 1,600
    /// instructions a duration (docs/benchmarks.md, nineteenth session).
    private static func unitIndex(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Int? {
        switch end - start {
        case 1:
            switch b[start] {
            case UInt8(ascii: "w"): return 0
            case UInt8(ascii: "d"): return 1
            case UInt8(ascii: "h"): return 2
            case UInt8(ascii: "m"): return 3
            case UInt8(ascii: "s"): return 4
            default: return nil
            }
        case 2: return b[start] == UInt8(ascii: "m") && b[start + 1] == UInt8(ascii: "s") ? 5 : nil
        default: return nil
        }
    }

    public static func parseMilliseconds(_ text: String) throws(ParseError) -> Int64 {
        var copy = text
        let result: Result<Int64, ParseError> = copy.withUTF8 { b in
            do throws(ParseError) { return .success(try parseMilliseconds(b, text)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    private static func parseMilliseconds(_ b: UnsafeBufferPointer<UInt8>, _ text: String) throws(ParseError) -> Int64 {
        guard !b.isEmpty else { throw ParseError(message: "empty duration; write e.g. 30s, 5m or 1h30m") }
        if b[0] == UInt8(ascii: "-") { throw ParseError(message: "duration '\(text)' is negative; durations must be positive") }
        var i = 0
        var total: Int64 = 0
        var lastUnitIndex = -1
        while i < b.count {
            var value: Int64 = 0
            let start = i
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                let (v1, o1) = value.multipliedReportingOverflow(by: 10)
                let (v2, o2) = v1.addingReportingOverflow(Int64(b[i] - 48))
                guard !o1, !o2, v2 <= maximumMilliseconds else { throw tooLarge(text) }
                value = v2
                i += 1
            }
            guard i > start else {
                throw ParseError(message: "invalid duration '\(text)': expected a number at position \(i + 1); write e.g. 30s, 5m or 1h30m")
            }
            var unitEnd = i
            while unitEnd < b.count, b[unitEnd] >= UInt8(ascii: "a"), b[unitEnd] <= UInt8(ascii: "z") { unitEnd += 1 }
            guard let ui = unitIndex(b, i, unitEnd) else {
                let unit = String(decoding: UnsafeBufferPointer(rebasing: b[i..<unitEnd]), as: UTF8.self)
                let shown = unit.isEmpty ? "no unit" : "unknown unit '\(unit)'"
                throw ParseError(message: "invalid duration '\(text)': \(shown); use ms, s, m, h, d or w")
            }
            guard ui > lastUnitIndex else {
                throw ParseError(message: "invalid duration '\(text)': units must go from largest to smallest, each once (e.g. 1h30m)")
            }
            lastUnitIndex = ui
            let (part, o) = value.multipliedReportingOverflow(by: unitFactors[ui])
            guard !o else { throw tooLarge(text) }
            let (sum, o2) = total.addingReportingOverflow(part)
            guard !o2, sum <= maximumMilliseconds else { throw tooLarge(text) }
            total = sum
            i = unitEnd
        }
        return total
    }

    private static func tooLarge(_ text: String) -> ParseError {
        ParseError(message: "duration '\(text)' is too large (at most 100 years)")
    }

    /// The shortest canonical text of a duration in milliseconds (`5400000` → `1h30m`).
    public static func format(milliseconds ms: Int64) -> String {
        if ms == 0 { return "0s" }
        var rest = ms
        var s = ""
        for (u, f) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] where rest >= f {
            s += "\(rest / f)\(u)"
            rest %= f
        }
        return s
    }
}
