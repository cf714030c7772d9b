/// A POSIX `TZ` rule string, as found in a TZif file's footer (RFC 8536 §3.3), e.g.
/// `EST5EDT,M3.2.0,M11.1.0`, `<+1030>-10:30<+11>-11,M10.1.0,M4.1.0`, `IST-1GMT0,M10.5.0,M3.5.0/1`.
///
/// It gives the rules for instants after a zone's last explicit transition. Supports the
/// RFC 8536 extensions: hours up to ±167 in rule times and negative rule times (`M3.5.0/-2`).
public struct PosixTZ: Hashable, Sendable {
    /// A date rule: `Jn` (1...365, February 29 never counted), `n` (0...365), or `Mm.w.d`.
    public enum DateRule: Hashable, Sendable {
        case julianNoLeap(Int)
        case zeroBasedDay(Int)
        case monthWeekDay(month: Int, week: Int, weekday: Int)
    }

    public struct Rule: Hashable, Sendable {
        public var date: DateRule
        /// Local time of day of the change, in seconds (may be negative or beyond 24 h).
        public var time: Int
    }

    /// Offset east of UTC, in seconds, of standard time.
    public var standardOffset: Int
    /// Offset east of UTC during daylight saving time, and when it starts and ends; `nil` when
    /// the zone has no daylight saving time.
    public var daylight: (offset: Int, start: Rule, end: Rule)?

    public static func == (a: PosixTZ, b: PosixTZ) -> Bool {
        a.standardOffset == b.standardOffset && a.daylight?.offset == b.daylight?.offset
            && a.daylight?.start == b.daylight?.start && a.daylight?.end == b.daylight?.end
    }

    public func hash(into h: inout Hasher) {
        h.combine(standardOffset)
        h.combine(daylight?.offset)
        h.combine(daylight?.start)
        h.combine(daylight?.end)
    }

    public struct ParseError: Error, Hashable, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// Parses a TZ string; throws for anything outside POSIX + RFC 8536.
    public init(_ text: String) throws(ParseError) {
        var p = Scanner(bytes: Array(text.utf8), text: text)
        try p.name()
        standardOffset = -(try p.offset(maxHours: 24))
        if p.atEnd {
            daylight = nil
            return
        }
        try p.name()
        var dstOffset = standardOffset + 3600
        if !p.atEnd, p.peek != UInt8(ascii: ",") {
            dstOffset = -(try p.offset(maxHours: 24))
        }
        var start = Rule(date: .monthWeekDay(month: 3, week: 2, weekday: 0), time: 7200)
        var end = Rule(date: .monthWeekDay(month: 11, week: 1, weekday: 0), time: 7200)
        // POSIX leaves a missing rule to the implementation; glibc uses the US rules.
        if !p.atEnd {
            try p.expect(UInt8(ascii: ","))
            start = try p.rule()
            try p.expect(UInt8(ascii: ","))
            end = try p.rule()
        }
        guard p.atEnd else { throw p.fail("unexpected text") }
        daylight = (dstOffset, start, end)
    }

    public init(standardOffset: Int) {
        self.standardOffset = standardOffset
        self.daylight = nil
    }

    /// The offset changes of a calendar year, sorted by instant: up to two of
    /// `(unixSeconds, offsetBefore, offsetAfter)`. Empty without daylight saving.
    public func transitions(year: Int) -> [(at: Int64, before: Int, after: Int)] {
        guard let dst = daylight, dst.offset != standardOffset else { return [] }
        // The start time is read on the standard-time clock, the end time on the DST clock.
        let startLocal = Int64(Self.day(dst.start.date, year: year)) * 86_400 + Int64(dst.start.time)
        let endLocal = Int64(Self.day(dst.end.date, year: year)) * 86_400 + Int64(dst.end.time)
        let s = (at: startLocal - Int64(standardOffset), before: standardOffset, after: dst.offset)
        let e = (at: endLocal - Int64(dst.offset), before: dst.offset, after: standardOffset)
        return s.at <= e.at ? [s, e] : [e, s]
    }

    /// Days since the epoch of a date rule in `year`.
    static func day(_ rule: DateRule, year: Int) -> Int {
        let jan1 = CivilTime.daysFromCivil(year: year, month: 1, day: 1)
        switch rule {
        case .julianNoLeap(let n):
            return jan1 + n - 1 + (CivilTime.isLeapYear(year) && n >= 60 ? 1 : 0)
        case .zeroBasedDay(let n):
            return jan1 + n
        case .monthWeekDay(let m, let w, let d):
            let first = CivilTime.daysFromCivil(year: year, month: m, day: 1)
            var day = (d - CivilTime.weekday(days: first) + 7) % 7 + (w - 1) * 7
            let dim = CivilTime.daysInMonth(year: year, month: m)
            while day >= dim { day -= 7 }
            return first + day
        }
    }

    /// A byte scanner over the TZ string.
    struct Scanner {
        let bytes: [UInt8]
        let text: String
        var i = 0

        init(bytes: [UInt8], text: String) {
            self.bytes = bytes
            self.text = text
        }

        var atEnd: Bool { i >= bytes.count }
        var peek: UInt8 { bytes[i] }

        func fail(_ what: String) -> ParseError {
            ParseError(message: "invalid TZ rule '\(text)' at position \(i + 1): \(what)")
        }

        mutating func expect(_ c: UInt8) throws(ParseError) {
            guard !atEnd, peek == c else { throw fail("expected '\(Character(Unicode.Scalar(c)))'") }
            i += 1
        }

        /// `<+0530>` or three or more letters.
        mutating func name() throws(ParseError) {
            if !atEnd, peek == UInt8(ascii: "<") {
                i += 1
                let start = i
                while !atEnd, peek != UInt8(ascii: ">") { i += 1 }
                guard !atEnd, i > start else { throw fail("unterminated '<' zone name") }
                i += 1
                return
            }
            let start = i
            while !atEnd, (peek | 0x20) >= UInt8(ascii: "a"), (peek | 0x20) <= UInt8(ascii: "z") { i += 1 }
            guard i - start >= 3 else { throw fail("expected a zone abbreviation of at least 3 letters") }
        }

        mutating func number() throws(ParseError) -> Int {
            let start = i
            var v = 0
            while !atEnd, peek >= 48, peek <= 57, i - start < 4 {
                v = v * 10 + Int(peek - 48)
                i += 1
            }
            guard i > start else { throw fail("expected a number") }
            return v
        }

        /// `[+-]hh[:mm[:ss]]` in seconds, with the sign as written (POSIX: west positive).
        mutating func offset(maxHours: Int) throws(ParseError) -> Int {
            var sign = 1
            if !atEnd, peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") {
                sign = peek == UInt8(ascii: "-") ? -1 : 1
                i += 1
            }
            let h = try number()
            guard h <= maxHours else { throw fail("hours out of range") }
            var total = h * 3600
            if !atEnd, peek == UInt8(ascii: ":") {
                i += 1
                let m = try number()
                guard m <= 59 else { throw fail("minutes out of range") }
                total += m * 60
                if !atEnd, peek == UInt8(ascii: ":") {
                    i += 1
                    let s = try number()
                    guard s <= 59 else { throw fail("seconds out of range") }
                    total += s
                }
            }
            return sign * total
        }

        /// `date[/time]`.
        mutating func rule() throws(ParseError) -> Rule {
            let date: DateRule
            if !atEnd, peek == UInt8(ascii: "M") {
                i += 1
                let m = try number()
                try expect(UInt8(ascii: "."))
                let w = try number()
                try expect(UInt8(ascii: "."))
                let d = try number()
                guard (1...12).contains(m), (1...5).contains(w), (0...6).contains(d) else { throw fail("M rule out of range") }
                date = .monthWeekDay(month: m, week: w, weekday: d)
            } else if !atEnd, peek == UInt8(ascii: "J") {
                i += 1
                let n = try number()
                guard (1...365).contains(n) else { throw fail("Julian day out of range 1-365") }
                date = .julianNoLeap(n)
            } else {
                let n = try number()
                guard (0...365).contains(n) else { throw fail("day out of range 0-365") }
                date = .zeroBasedDay(n)
            }
            var time = 7200
            if !atEnd, peek == UInt8(ascii: "/") {
                i += 1
                time = try offset(maxHours: 167)
            }
            return Rule(date: date, time: time)
        }
    }
}
