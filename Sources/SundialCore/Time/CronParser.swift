/// The cron text parser behind `CronExpression.init(_:)`.
///
/// Hand-written rather than a regex: every error must carry the field and the exact column,
/// and the Quartz extensions need their own messages ("`L` is not supported") instead of a
/// generic "invalid character".
enum CronParser {
    typealias Field = CronExpression.Field

    static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]
    static let monthNames = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    static let weekdayNames = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]

    static func parse(_ text: String) throws(CronError) -> CronExpression {
        let chars = Array(text.unicodeScalars)
        // Split on blanks, remembering where each field starts.
        var spans: [Range<Int>] = []
        var i = 0
        while i < chars.count {
            if chars[i] == " " || chars[i] == "\t" {
                i += 1
                continue
            }
            let start = i
            while i < chars.count, chars[i] != " ", chars[i] != "\t" { i += 1 }
            spans.append(start..<i)
        }
        guard let firstSpan = spans.first else {
            throw CronError(
                column: 1, field: nil, message: "empty cron expression; write 5 fields (minute hour day-of-month month day-of-week), e.g. '30 2 * * *'")
        }
        if chars[firstSpan.lowerBound] == "@" {
            let word = String(String.UnicodeScalarView(chars[firstSpan]))
            let lower = word.lowercased()
            guard spans.count == 1 else {
                throw CronError(column: spans[1].lowerBound + 1, field: nil, message: "unexpected text after '\(word)'")
            }
            if lower == "@reboot" {
                return CronExpression(text: text, fields: [0, 0, 0, 0, 0, 0], starSteps: [0, 0, 0, 0, 0, 0], hasSecondsField: false, isReboot: true)
            }
            guard let expansion = macros[lower] else {
                throw CronError(
                    column: firstSpan.lowerBound + 1, field: nil,
                    message: "unknown macro '\(word)'; use @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @reboot")
            }
            let e = try parse(expansion)
            return CronExpression(text: text, fields: Field.allCases.map { e.bits($0) }, starSteps: e.starSteps, hasSecondsField: false, isReboot: false)
        }
        guard spans.count == 5 || spans.count == 6 else {
            let column = spans.count > 6 ? spans[6].lowerBound + 1 : chars.count + 1
            throw CronError(
                column: column, field: nil,
                message: "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with a leading seconds field, found \(spans.count)")
        }
        let hasSeconds = spans.count == 6
        let fieldOrder: [Field] = hasSeconds ? Field.allCases : Array(Field.allCases.dropFirst())
        var bits: [UInt64] = [1, 0, 0, 0, 0, 0]  // a 5-field expression fires at second 0
        var stars: [UInt8] = [0, 0, 0, 0, 0, 0]
        var warnings: [CronError] = []
        for (field, span) in zip(fieldOrder, spans) {
            let (b, star) = try parseField(chars, span, field, warnings: &warnings)
            bits[field.rawValue] = b
            // A step of at least the field's size denotes the start value alone; it is kept
            // as the field's size so that it fits and the canonical text stays short.
            stars[field.rawValue] = UInt8(min(star, field.valueRange.count))
        }
        return CronExpression(
            text: text, fields: bits, starSteps: .init(stars), hasSecondsField: hasSeconds, isReboot: false,
            warnings: warnings)
    }

    /// One field: a comma-separated list of items. Returns the set and the star step of the
    /// first item (0 when the field does not start with `*`).
    static func parseField(
        _ c: [Unicode.Scalar], _ span: Range<Int>, _ field: Field,
        warnings: inout [CronError]
    ) throws(CronError) -> (UInt64, Int) {
        var bits: UInt64 = 0
        var starStep = 0
        var i = span.lowerBound
        var first = true
        while true {
            let itemStart = i
            while i < span.upperBound, c[i] != "," { i += 1 }
            guard i > itemStart else {
                throw CronError(column: itemStart + 1, field: field.name, message: "empty item in the \(field.name) field")
            }
            let (itemBits, star) = try parseItem(c, itemStart..<i, field, warnings: &warnings)
            if first { starStep = star }
            bits |= itemBits
            first = false
            if i == span.upperBound { break }
            i += 1  // the comma
            if i == span.upperBound {
                throw CronError(column: i + 1, field: field.name, message: "empty item after ',' in the \(field.name) field")
            }
        }
        return (bits, starStep)
    }

    /// One item: `*`, `v`, `a-b`, each optionally followed by `/step`.
    ///
    /// Compatible with cronie where it and the contract meet: a reversed range is an error
    /// (cronie rejects `22-2`), except a day-of-week range ending on Sunday written as 0 or 7
    /// (`5-0`, `SAT-SUN`), which cronie reads as ending on day 7; a step as large as the
    /// field or larger (`*/90` in minutes) denotes the start value alone, as in cronie's
    /// `for (i = lo; i <= hi; i += step)`, and is accepted with a warning saying so.
    static func parseItem(
        _ c: [Unicode.Scalar], _ span: Range<Int>, _ field: Field,
        warnings: inout [CronError]
    ) throws(CronError) -> (UInt64, Int) {
        var i = span.lowerBound
        let r = field.valueRange
        var lo: Int
        var hi: Int
        var isStar = false
        var isSingle = false
        if c[i] == "*" {
            isStar = true
            (lo, hi) = (r.lowerBound, r.upperBound)
            i += 1
        } else {
            let a = try parseValue(c, &i, span.upperBound, field)
            if i < span.upperBound, c[i] == "-" {
                i += 1
                guard i < span.upperBound, c[i] != "/" else {
                    throw CronError(column: i + 1, field: field.name, message: "\(field.name) range '\(text(c, span.lowerBound..<i))' is missing its end")
                }
                let b = try parseValue(c, &i, span.upperBound, field)
                (lo, hi) = (a, b)
                if field == .dayOfWeek, lo == 7, hi != 7 { lo = 0 }  // `7-...` starts on Sunday
                if field == .dayOfWeek, hi == 0, lo > 0 { hi = 7 }  // `5-0` ends on Sunday (cronie)
                if lo > hi {
                    let shown = text(c, span.lowerBound..<i)
                    let fix =
                        field == .dayOfWeek
                        ? "for days across Sunday write a list such as \(a)-7,0-\(b) (a range may end below its start only when it ends on Sunday, 0 or 7)"
                        : "write \(b)-\(a), or a list such as \(a)-\(field.writtenRange.upperBound),\(field.writtenRange.lowerBound)-\(b) to wrap around"
                    throw CronError(
                        column: span.lowerBound + 1, field: field.name,
                        message: "\(field.name) range \(shown) is reversed; \(fix)")
                }
            } else {
                (lo, hi) = (a, a)
                isSingle = true
            }
        }
        var step = 1
        if i < span.upperBound {
            guard c[i] == "/" else { throw unexpected(c, i, field) }
            i += 1
            let stepStart = i
            var v = 0
            while i < span.upperBound, let d = digit(c[i]) {
                v = min(v * 10 + d, 100_000)
                i += 1
            }
            guard i > stepStart else {
                throw CronError(column: stepStart + 1, field: field.name, message: "\(field.name) step after '/' must be a number")
            }
            if i < span.upperBound { throw unexpected(c, i, field) }
            let size = r.upperBound - r.lowerBound + 1
            guard v >= 1 else {
                throw CronError(
                    column: stepStart + 1, field: field.name,
                    message: "\(field.name) step 0 is out of range: the smallest step is 1")
            }
            step = v
            // `5/15` means `5-59/15` (croniter, robfig/cron, Quartz).
            if isSingle { hi = field.writtenRange.upperBound }
            if v > size {
                let what = isStar ? "\(field.name) \(r.lowerBound)" : "\(field.name) \(lo)"
                let fix = isStar ? "write \(r.lowerBound)" : "write \(lo)"
                warnings.append(
                    CronError(
                        column: stepStart + 1, field: field.name,
                        message:
                            "\(field.name) step \(v) is larger than the field (\(size) values): '\(text(c, span))' means \(what) only, as in cronie; \(fix) to say so"
                    ))
            }
        }
        if i < span.upperBound { throw unexpected(c, i, field) }
        var bits: UInt64 = 0
        for v in stride(from: lo, through: hi, by: step) {
            bits |= 1 << UInt64(field == .dayOfWeek && v == 7 ? 0 : v)
        }
        return (bits, isStar ? step : 0)
    }

    /// A number or (in the month and day-of-week fields) a name.
    static func parseValue(_ c: [Unicode.Scalar], _ i: inout Int, _ end: Int, _ field: Field) throws(CronError) -> Int {
        let start = i
        if i < end, digit(c[i]) != nil {
            var v = 0
            while i < end, let d = digit(c[i]) {
                v = min(v * 10 + d, 100_000)
                i += 1
            }
            if i < end, isLetter(c[i]) { throw quartzOrUnexpected(c, i, field) }
            guard field.writtenRange.contains(v) else {
                let r = field.writtenRange
                let note = field == .dayOfWeek ? " (0 or 7 is Sunday)" : ""
                throw CronError(
                    column: start + 1, field: field.name,
                    message: "\(field.name) \(text(c, start..<i)) is out of range \(r.lowerBound)-\(r.upperBound)\(note)")
            }
            return v
        }
        guard i < end, isLetter(c[i]) else {
            if i < end { throw unexpected(c, i, field) }
            throw CronError(column: i + 1, field: field.name, message: "expected a value in the \(field.name) field")
        }
        while i < end, isLetter(c[i]) { i += 1 }
        let word = text(c, start..<i).uppercased()
        if field == .month, let m = monthNames.firstIndex(of: word) { return m + 1 }
        if field == .dayOfWeek, let d = weekdayNames.firstIndex(of: word) { return d }
        if word == "L" || word == "LW" || (word.hasSuffix("L") && field == .dayOfWeek) {
            throw CronError(column: start + 1, field: field.name, message: "'L' (last day) is a Quartz/croniter extension and is not supported")
        }
        if monthNames.contains(word) {
            throw CronError(
                column: start + 1, field: field.name, message: "month name '\(word)' is only allowed in the month field, not in the \(field.name) field")
        }
        if weekdayNames.contains(word) {
            throw CronError(
                column: start + 1, field: field.name, message: "day name '\(word)' is only allowed in the day-of-week field, not in the \(field.name) field")
        }
        let hint: String
        switch field {
        case .month: hint = "use JAN-DEC or 1-12"
        case .dayOfWeek: hint = "use SUN-SAT or 0-7"
        default: hint = "the \(field.name) field takes numbers \(field.writtenRange.lowerBound)-\(field.writtenRange.upperBound)"
        }
        throw CronError(column: start + 1, field: field.name, message: "unknown name '\(text(c, start..<i))' in the \(field.name) field; \(hint)")
    }

    static func quartzOrUnexpected(_ c: [Unicode.Scalar], _ i: Int, _ field: Field) -> CronError {
        switch c[i] {
        case "W", "w": CronError(column: i + 1, field: field.name, message: "'W' (nearest weekday) is a Quartz extension and is not supported")
        case "L", "l": CronError(column: i + 1, field: field.name, message: "'L' (last day) is a Quartz/croniter extension and is not supported")
        default: unexpected(c, i, field)
        }
    }

    static func unexpected(_ c: [Unicode.Scalar], _ i: Int, _ field: Field) -> CronError {
        let ch = c[i]
        switch ch {
        case "?": return CronError(column: i + 1, field: field.name, message: "'?' is a Quartz extension and is not supported; use '*'")
        case "#":
            return CronError(column: i + 1, field: field.name, message: "'#' (nth weekday of the month) is a Quartz/croniter extension and is not supported")
        case "L", "l", "W", "w": return quartzOrUnexpected(c, i, field)
        default:
            let shown = ch.isASCII && ch.value >= 32 ? "'\(Character(ch))'" : "U+\(String(ch.value, radix: 16, uppercase: true))"
            return CronError(column: i + 1, field: field.name, message: "unexpected character \(shown) in the \(field.name) field")
        }
    }

    @inline(__always) static func digit(_ s: Unicode.Scalar) -> Int? {
        s.value >= 48 && s.value <= 57 ? Int(s.value - 48) : nil
    }

    @inline(__always) static func isLetter(_ s: Unicode.Scalar) -> Bool {
        (s.value >= 65 && s.value <= 90) || (s.value >= 97 && s.value <= 122)
    }

    static func text(_ c: [Unicode.Scalar], _ r: Range<Int>) -> String {
        String(String.UnicodeScalarView(c[r]))
    }
}
