/// A syntax check of the five crontab time fields, so that `import-crontab` reports a bad
/// line at its number instead of writing a job file that `sundial validate` rejects later.
///
/// Checks each field's characters, names, ranges and steps against the cron dialect Sundial
/// accepts (design §1: numbers, `JAN`-`DEC`, `SUN`-`SAT`, `*`, ranges, steps, lists, `5/15`,
/// wrapping day-of-week ranges). Its limitation: it looks at one field at a time, so an
/// expression that can never fire (`0 0 30 2 *`) passes here and is reported by
/// `sundial validate`, which evaluates the whole expression with the time engine.
enum CronFieldCheck {
    enum Field: CaseIterable {
        case minute, hour, dayOfMonth, month, dayOfWeek

        var name: String {
            switch self {
            case .minute: "minute"
            case .hour: "hour"
            case .dayOfMonth: "day-of-month"
            case .month: "month"
            case .dayOfWeek: "day-of-week"
            }
        }

        var range: ClosedRange<Int> {
            switch self {
            case .minute: 0...59
            case .hour: 0...23
            case .dayOfMonth: 1...31
            case .month: 1...12
            case .dayOfWeek: 0...7
            }
        }

        var names: [String] {
            switch self {
            case .month: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
            case .dayOfWeek: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
            default: []
            }
        }
    }

    /// A problem with `text` as the given field, or nil.
    static func check(_ text: String, field: Field) -> String? {
        func value(_ s: Substring) -> Int? {
            if let v = Int(s), s.allSatisfy(\.isNumber) { return v }
            if let i = field.names.firstIndex(of: s.lowercased()) { return field == .month ? i + 1 : i }
            return nil
        }
        for ch in text where !(ch.isASCII && (ch.isLetter || ch.isNumber)) && !"*/,-".contains(ch) {
            if "LW#?".contains(ch) { return "'\(ch)' in the \(field.name) field '\(text)' is a Quartz extension that Sundial does not support" }
            if ch == "~" { return "'~' (random) in the \(field.name) field '\(text)' is not supported; use `jitter` instead" }
            return "unexpected '\(ch)' in the \(field.name) field '\(text)'"
        }
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard !item.isEmpty else { return "empty list item in the \(field.name) field '\(text)'" }
            let parts = item.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2 else { return "more than one '/' in the \(field.name) field '\(text)'" }
            if parts.count == 2 {
                guard let step = Int(parts[1]), step > 0, step <= field.range.upperBound else {
                    return "step '\(parts[1])' in the \(field.name) field must be a number from 1 to \(field.range.upperBound)"
                }
            }
            let base = parts[0]
            if base == "*" { continue }
            let bounds = base.split(separator: "-", omittingEmptySubsequences: false)
            guard bounds.count <= 2 else { return "bad range '\(base)' in the \(field.name) field" }
            var values: [Int] = []
            for b in bounds {
                guard let v = value(b) else {
                    let upper = b.uppercased()
                    if upper == "L" || upper == "LW" || ((upper.hasSuffix("L") || upper.hasSuffix("W")) && upper.dropLast().allSatisfy(\.isNumber)) {
                        return "'\(b)' in the \(field.name) field is a Quartz extension that Sundial does not support"
                    }
                    return field.names.isEmpty
                        ? "'\(b)' is not a number in the \(field.name) field"
                        : "'\(b)' is not a number or name (\(field.names.first!.uppercased())-\(field.names.last!.uppercased())) in the \(field.name) field"
                }
                guard field.range.contains(v) else { return "\(v) is out of range \(field.range.lowerBound)-\(field.range.upperBound) in the \(field.name) field" }
                values.append(v)
            }
            if values.count == 2, values[0] > values[1], field != .dayOfWeek {
                return "reversed range '\(base)' in the \(field.name) field"
            }
        }
        return nil
    }
}
