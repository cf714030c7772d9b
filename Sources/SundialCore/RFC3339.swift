/// Formatting and parsing of RFC 3339 timestamps (`2026-03-08T03:00:00-04:00`).
///
/// Hand-written: Foundation's `ISO8601DateFormatter` is slow, allocates, and is not available
/// to the pure core. Parsing is strict: an offset (`Z` or `±hh:mm`) is required, because a
/// one-shot time without one is ambiguous on a box whose zone nobody remembers.
public enum RFC3339 {
    public struct ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        /// 1-based column in the input where the problem is.
        public var column: Int
        public var message: String
        public var description: String { "column \(column): \(message)" }
    }

    /// Formats `instant` at the given UTC offset, with 0 (seconds only) or 3 fraction digits.
    /// Offset 0 prints `Z`.
    public static func format(_ instant: Instant, utcOffsetSeconds: Int, fractionDigits: Int = 0) -> String {
        let local = LocalDateTime(wallMillis: instant.unixMillis + Int64(utcOffsetSeconds) * 1000)
        var s = local.description
        if fractionDigits > 0 { s += "." + pad(local.millisecond, 3) }
        if utcOffsetSeconds == 0 { return s + "Z" }
        let sign = utcOffsetSeconds < 0 ? "-" : "+"
        let a = abs(utcOffsetSeconds)
        s += sign + pad(a / 3600) + ":" + pad(a / 60 % 60)
        if a % 60 != 0 { s += ":" + pad(a % 60) }
        return s
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)`; `t`/space for `T` and `z` are accepted.
    public static func parse(_ text: String) throws(ParseError) -> (instant: Instant, utcOffsetSeconds: Int) {
        let b = Array(text.utf8)
        var i = 0
        func fail(_ msg: String) -> ParseError { ParseError(column: i + 1, message: msg) }
        func digits(_ n: Int, _ what: String) throws(ParseError) -> Int {
            var v = 0
            for _ in 0..<n {
                guard i < b.count, b[i] >= 48, b[i] <= 57 else { throw fail("expected \(n) digits for the \(what)") }
                v = v * 10 + Int(b[i] - 48)
                i += 1
            }
            return v
        }
        func expect(_ c: UInt8, _ what: String) throws(ParseError) {
            guard i < b.count, b[i] == c else { throw fail("expected '\(Character(Unicode.Scalar(c)))' \(what)") }
            i += 1
        }
        let year = try digits(4, "year")
        try expect(UInt8(ascii: "-"), "after the year")
        let month = try digits(2, "month")
        try expect(UInt8(ascii: "-"), "after the month")
        let day = try digits(2, "day")
        guard i < b.count, b[i] == UInt8(ascii: "T") || b[i] == UInt8(ascii: "t") || b[i] == UInt8(ascii: " ") else {
            throw fail("expected 'T' between date and time")
        }
        i += 1
        let hour = try digits(2, "hour")
        try expect(UInt8(ascii: ":"), "after the hour")
        let minute = try digits(2, "minute")
        try expect(UInt8(ascii: ":"), "after the minute")
        let second = try digits(2, "second")
        var millis = 0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var n = 0
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                if n < 3 { millis = millis * 10 + Int(b[i] - 48) }
                n += 1
                i += 1
            }
            guard n > 0 else { throw fail("expected digits after '.'") }
            // Scale `.5` to 500 ms. Digits past the third were dropped above; the range must not
            // be formed when there are more than three (`4..<3` traps, found by fuzz/run duration).
            if n < 3 { for _ in n..<3 { millis *= 10 } }
        }
        guard i < b.count else {
            throw fail("missing UTC offset: add 'Z' or an offset such as '+02:00'")
        }
        var offset = 0
        let offsetColumn = i
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            let negative = b[i] == UInt8(ascii: "-")
            i += 1
            let oh = try digits(2, "offset hours")
            try expect(UInt8(ascii: ":"), "in the offset")
            let om = try digits(2, "offset minutes")
            guard oh <= 23, om <= 59 else {
                i = offsetColumn
                throw fail("offset out of range")
            }
            offset = (oh * 3600 + om * 60) * (negative ? -1 : 1)
        } else {
            throw fail("expected 'Z' or an offset such as '+02:00'")
        }
        guard i == b.count else { throw fail("unexpected text after the time") }
        guard (1...12).contains(month) else { throw ParseError(column: 6, message: "month \(month) is out of range 1-12") }
        guard day >= 1, day <= CivilTime.daysInMonth(year: year, month: month) else {
            throw ParseError(column: 9, message: "day \(day) does not exist in \(pad(year, 4))-\(pad(month))")
        }
        guard hour <= 23 else { throw ParseError(column: 12, message: "hour \(hour) is out of range 0-23") }
        guard minute <= 59 else { throw ParseError(column: 15, message: "minute \(minute) is out of range 0-59") }
        guard second <= 60 else { throw ParseError(column: 18, message: "second \(second) is out of range 0-59") }
        // A leap second (":60") is read as the first instant of the next minute, as POSIX time does.
        let local = LocalDateTime(year: year, month: month, day: day, hour: hour, minute: minute, second: min(second, 59), millisecond: millis)
        let leap: Int64 = second == 60 ? 1000 : 0
        return (Instant(unixMillis: local.wallMillis + leap - Int64(offset) * 1000), offset)
    }
}
