/// A parsed cron expression: five fields, or six with a leading seconds field, or a macro.
///
/// Each field is a bitset (`UInt64`, bit *n* set when value *n* matches), so matching and
/// "next matching value" are a shift and a trailing-zero count. Parsing keeps what the
/// semantics need beyond the sets: whether a field *starts with* `*` (Vixie's day rule and the
/// DST class both depend on how a field was written, not only on the set it denotes).
///
/// Grammar (design §1): `*`, numbers, names (`JAN`–`DEC` in the month field, `SUN`–`SAT` in the
/// day-of-week field, case-insensitive), ranges `a-b`, steps `x/n` (`5/15` = `5-59/15`), lists.
/// Sunday is 0 or 7; a day-of-week range may end on Sunday written as 0 (`SAT-SUN`, `5-0`), other
/// reversed ranges are errors (as in cronie). A step larger than its field keeps the start value
/// alone (cronie) and is reported in ``warnings``.
/// Quartz/croniter extensions (`L`, `W`, `#`, `?`) are errors in version 1.
public struct CronExpression: Hashable, Sendable, CustomStringConvertible {
    /// The six fields, in the order of a 6-field expression.
    public enum Field: Int, CaseIterable, Sendable {
        case second, minute, hour, dayOfMonth, month, dayOfWeek

        /// The name used in diagnostics and in `CronError.field`.
        public var name: String {
            switch self {
            case .second: "second"
            case .minute: "minute"
            case .hour: "hour"
            case .dayOfMonth: "day-of-month"
            case .month: "month"
            case .dayOfWeek: "day-of-week"
            }
        }

        /// Values a user may write (day-of-week accepts 7 for Sunday).
        public var writtenRange: ClosedRange<Int> {
            switch self {
            case .second, .minute: 0...59
            case .hour: 0...23
            case .dayOfMonth: 1...31
            case .month: 1...12
            case .dayOfWeek: 0...7
            }
        }

        /// Values the bitset holds (day-of-week folds 7 onto 0).
        public var valueRange: ClosedRange<Int> { self == .dayOfWeek ? 0...6 : writtenRange }
    }

    /// The text as given.
    public let text: String
    /// Bit *n* set when second *n* matches (`1` only, second 0, for a 5-field expression).
    public let seconds: UInt64
    public let minutes: UInt64
    public let hours: UInt64
    /// Bits 1...31.
    public let daysOfMonth: UInt64
    /// Bits 1...12.
    public let months: UInt64
    /// Bits 0...6, 0 = Sunday.
    public let daysOfWeek: UInt64
    /// `true` for a 6-field expression.
    public let hasSecondsField: Bool
    /// `true` for `@reboot`, which has no calendar times (all sets are empty).
    public let isReboot: Bool
    /// Per field (indexed by `Field.rawValue`): 0 when the field does not start with `*`, else
    /// the step of its first item (`*` is 1, `*/15` is 15). Drives the class, Vixie's day rule
    /// and the canonical text.
    let starSteps: StarSteps
    /// Vixie's rule: when both day fields are restricted (neither starts with `*`), a day
    /// matches if either matches; otherwise both must match. Stored: it is read per month
    /// in the hot path of `next(after:)`.
    public let daysUseOrRule: Bool
    /// Things that parse, as cronie parses them, but probably do not say what was meant
    /// (`*/90` in minutes is minute 0 alone). `validate` shows them as warnings; the
    /// expression's sets are what cronie would run.
    public let warnings: [CronError]

    public var description: String { canonical }

    /// Whether the field was written starting with `*` (`*`, `*/2`, `*/5,7`).
    public func startsWithStar(_ field: Field) -> Bool { starSteps[field.rawValue] != 0 }

    /// The job's DST class (design §2): wildcard-class when the minute or the hour field starts
    /// with `*` (so `@hourly` too); the seconds field never changes the class.
    public var isWildcardClass: Bool { !isReboot && (startsWithStar(.minute) || startsWithStar(.hour)) }

    /// The set of one field.
    public func bits(_ field: Field) -> UInt64 {
        switch field {
        case .second: seconds
        case .minute: minutes
        case .hour: hours
        case .dayOfMonth: daysOfMonth
        case .month: months
        case .dayOfWeek: daysOfWeek
        }
    }

    /// Parses `text`; throws a `CronError` naming the field and the 1-based column.
    public init(_ text: String) throws(CronError) {
        self = try CronParser.parse(text)
    }

    init(text: String, fields: [UInt64], starSteps: StarSteps, hasSecondsField: Bool, isReboot: Bool, warnings: [CronError] = []) {
        self.text = text
        self.warnings = warnings
        (seconds, minutes, hours, daysOfMonth, months, daysOfWeek) = (fields[0], fields[1], fields[2], fields[3], fields[4], fields[5])
        self.starSteps = starSteps
        self.hasSecondsField = hasSecondsField
        self.isReboot = isReboot
        self.daysUseOrRule = starSteps[Field.dayOfMonth.rawValue] == 0 && starSteps[Field.dayOfWeek.rawValue] == 0
    }

    // MARK: - Canonical text

    /// The normalised text: numbers only, ranges and steps folded, macros expanded (except
    /// `@reboot`), Sunday as 0, the seconds field only when it was given. Parsing the canonical
    /// text gives an expression with the same canonical text, sets and class.
    public var canonical: String {
        if isReboot { return "@reboot" }
        var parts: [String] = []
        for field in Field.allCases where field != .second || hasSecondsField {
            parts.append(Self.canonicalField(bits(field), field: field, starStep: Int(starSteps[field.rawValue])))
        }
        return parts.joined(separator: " ")
    }

    static func canonicalField(_ bits: UInt64, field: Field, starStep: Int) -> String {
        let r = field.valueRange
        guard starStep > 0 else { return compress(bits, range: r) }
        let covered = stepBits(from: r.lowerBound, to: r.upperBound, step: starStep)
        let head = starStep == 1 ? "*" : "*/\(starStep)"
        let rest = bits & ~covered
        return rest == 0 ? head : head + "," + compress(rest, range: r)
    }

    /// Prints a set as the shortest of: an arithmetic progression `a-b/s`, or a list of runs.
    static func compress(_ bits: UInt64, range r: ClosedRange<Int>) -> String {
        let values = (r.lowerBound...r.upperBound).filter { bits >> UInt64($0) & 1 == 1 }
        guard let first = values.first else { return "" }
        if values.count >= 3 {
            let step = values[1] - values[0]
            if step > 1, zip(values, values.dropFirst()).allSatisfy({ $1 - $0 == step }) {
                let last = values[values.count - 1]
                let end = last + step > r.upperBound ? r.upperBound : last
                return "\(first)-\(end)/\(step)"
            }
        }
        var parts: [String] = []
        var i = 0
        while i < values.count {
            var j = i
            while j + 1 < values.count, values[j + 1] == values[j] + 1 { j += 1 }
            if j - i >= 2 {
                parts.append("\(values[i])-\(values[j])")
            } else {
                for k in i...j { parts.append("\(values[k])") }
            }
            i = j + 1
        }
        return parts.joined(separator: ",")
    }

    static func stepBits(from a: Int, to b: Int, step: Int) -> UInt64 {
        var bits: UInt64 = 0
        var v = a
        while v <= b {
            bits |= 1 << UInt64(v)
            v += step
        }
        return bits
    }

    // MARK: - Day matching

    /// The days (bits 1...31) of a month that match the day-of-month and day-of-week fields.
    /// - Parameters:
    ///   - firstWeekday: weekday of the month's 1st, 0 = Sunday.
    ///   - daysInMonth: 28...31.
    func matchingDays(firstWeekday: Int, daysInMonth: Int) -> UInt64 {
        // Day d has weekday (firstWeekday + d - 1) % 7: rotate the weekday set so bit i stands
        // for day i + 1, then repeat it over five weeks.
        let w = UInt64(firstWeekday)
        let week = ((daysOfWeek >> w) | (daysOfWeek << (7 - w))) & 0x7F
        let dowDays = (week | week << 7 | week << 14 | week << 21 | week << 28) << 1
        let inMonth: UInt64 = (1 << UInt64(daysInMonth + 1)) - 2
        let days = daysUseOrRule ? (daysOfMonth | dowDays) : (daysOfMonth & dowDays)
        return days & inMonth
    }

    /// Whether no calendar date can ever match (`0 0 30 2 *`, `0 0 31 4,6,9,11 *`).
    ///
    /// Exact: every month starts on every weekday in some year, and February has 29 days in some
    /// of those years, so checking each listed month with each first weekday at its longest
    /// length decides it. `@reboot` never fires on the calendar either.
    public var neverFires: Bool {
        if isReboot { return true }
        for month in 1...12 where months >> UInt64(month) & 1 == 1 {
            let longest = month == 2 ? 29 : CivilTime.daysInMonth(year: 2001, month: month)
            for w in 0..<7 where matchingDays(firstWeekday: w, daysInMonth: longest) != 0 { return false }
        }
        return true
    }
}

extension CronExpression {
    /// The six fields' star steps (see `starSteps`) packed in one word: as an array they were a
    /// heap block of their own in every parsed expression, and the scheduler keeps one parsed
    /// schedule per distinct expression and zone for as long as it runs.
    struct StarSteps: Hashable, Sendable, ExpressibleByArrayLiteral {
        private var packed: UInt64 = 0

        init(_ steps: [UInt8]) {
            for (i, step) in steps.prefix(8).enumerated() { packed |= UInt64(step) << (8 * UInt64(i)) }
        }

        init(arrayLiteral steps: UInt8...) { self.init(steps) }

        subscript(field: Int) -> UInt8 { UInt8(truncatingIfNeeded: packed >> (8 * UInt64(field & 7))) }
    }
}
