/// Plain-English descriptions of cron expressions, for `sundial explain` and `status`.
///
/// "at 02:30 on Monday through Friday", "every 15 minutes", "at minute 5 past every hour in
/// January". Built from the parsed sets, so it describes what the expression does, whatever
/// way it was written (`1-5` and `MON-FRI` read the same).
public enum CronExplainer {
    static let monthNames = [
        "January", "February", "March", "April", "May", "June", "July",
        "August", "September", "October", "November", "December",
    ]
    static let weekdayNames = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]

    /// One sentence, without a final period.
    public static func explain(_ e: CronExpression) -> String {
        if e.isReboot { return "once each time the agent starts (not on reload)" }
        var parts = [timeOfDay(e)]
        let domValues = values(e.daysOfMonth, .dayOfMonth)
        let monthValues = values(e.months, .month)
        if domValues.count == 1, monthValues.count == 1, !e.daysUseOrRule, e.daysOfWeek == full(.dayOfWeek) {
            // "on February 29" rather than "on day 29 of the month in February".
            parts.append("on \(monthNames[monthValues[0] - 1]) \(domValues[0])")
        } else {
            if let days = days(e) { parts.append(days) }
            if e.months != full(.month) { parts.append("in " + list(values(e.months, .month), name: { monthNames[$0 - 1] })) }
        }
        var sentence = parts.joined(separator: " ")
        if e.neverFires { sentence += " (never fires: no date matches)" }
        return sentence
    }

    /// Parses and explains; throws the parser's error.
    public static func explain(_ text: String) throws(CronError) -> String {
        explain(try CronExpression(text))
    }

    // MARK: - Time of day

    static func timeOfDay(_ e: CronExpression) -> String {
        let secs = values(e.seconds, .second)
        let mins = values(e.minutes, .minute)
        let hours = values(e.hours, .hour)
        let allHours = e.hours == full(.hour)
        // A handful of clock times: "at 02:30", "at 01:05, 02:05 and 03:05".
        if mins.count * hours.count <= 4 {
            if secs.count == 1 {
                return "at " + join(hours.flatMap { h in mins.map { m in clock(h, m, secs[0] == 0 ? nil : secs[0]) } })
            }
            let minutesText =
                (mins.count * hours.count == 1 ? "the minute " : "the minutes ")
                + join(hours.flatMap { h in mins.map { m in clock(h, m, nil) } })
            return secondsPhrase(e) + " in " + minutesText
        }
        var phrase: String
        let minuteStep = Int(e.starSteps[CronExpression.Field.minute.rawValue])
        if e.minutes == full(.minute) {
            phrase = "every minute"
        } else if minuteStep > 1, e.minutes == CronExpression.stepBits(from: 0, to: 59, step: minuteStep) {
            phrase = "every \(minuteStep) minutes"
        } else {
            phrase = (mins.count == 1 ? "at minute " : "at minutes ") + list(mins, name: { String($0) }) + " past"
            phrase += allHours ? " every hour" : (hours.count == 1 ? " hour " : " hours ") + list(hours, name: { String($0) })
        }
        if !allHours, !phrase.hasPrefix("at ") {
            phrase += " during " + (hours.count == 1 ? "hour " : "hours ") + list(hours, name: { String($0) })
        }
        if secs == [0] { return phrase }
        if phrase == "every minute" { return secondsPhrase(e) }
        return secondsPhrase(e) + ", " + phrase
    }

    static func secondsPhrase(_ e: CronExpression) -> String {
        let secs = values(e.seconds, .second)
        let step = Int(e.starSteps[CronExpression.Field.second.rawValue])
        if e.seconds == full(.second) { return "every second" }
        if step > 1, e.seconds == CronExpression.stepBits(from: 0, to: 59, step: step) { return "every \(step) seconds" }
        return (secs.count == 1 ? "at second " : "at seconds ") + list(secs, name: { String($0) })
    }

    static func clock(_ h: Int, _ m: Int, _ s: Int?) -> String {
        let hm = two(h) + ":" + two(m)
        return s.map { hm + ":" + two($0) } ?? hm
    }

    // MARK: - Days

    static func days(_ e: CronExpression) -> String? {
        let domAll = e.daysOfMonth == full(.dayOfMonth)
        let dowAll = e.daysOfWeek == full(.dayOfWeek)
        let domStep = Int(e.starSteps[CronExpression.Field.dayOfMonth.rawValue])
        let dom: String
        if domStep > 1, e.daysOfMonth == CronExpression.stepBits(from: 1, to: 31, step: domStep) {
            dom = "on every \(ordinal(domStep)) day of the month from the 1st"
        } else {
            dom =
                "on " + (values(e.daysOfMonth, .dayOfMonth).count == 1 ? "day " : "days ")
                + list(values(e.daysOfMonth, .dayOfMonth), name: { String($0) }) + " of the month"
        }
        let dow = "on " + list(values(e.daysOfWeek, .dayOfWeek), name: { weekdayNames[$0] }, weekdays: true)
        if e.daysUseOrRule {
            // Both restricted (Vixie): either one matches.
            if domAll || dowAll { return nil }  // `1-31` or `0-6` OR anything: every day
            return dom + " or " + dow
        }
        switch (domAll, dowAll) {
        case (true, true): return nil
        case (false, true): return dom
        case (true, false): return dow
        case (false, false): return dom + " if it is " + list(values(e.daysOfWeek, .dayOfWeek), name: { weekdayNames[$0] }, weekdays: true, conjunction: "or")
        }
    }

    // MARK: - Lists

    static func full(_ f: CronExpression.Field) -> UInt64 {
        CronExpression.stepBits(from: f.valueRange.lowerBound, to: f.valueRange.upperBound, step: 1)
    }

    static func values(_ bits: UInt64, _ f: CronExpression.Field) -> [Int] {
        f.valueRange.filter { bits >> UInt64($0) & 1 == 1 }
    }

    /// "1, 15 and 20", "Monday through Friday", "1 through 5 and 10". Day-of-week lists start
    /// on Monday so that Saturday and Sunday read as a weekend.
    static func list(_ values: [Int], name: (Int) -> String, weekdays: Bool = false, conjunction: String = "and") -> String {
        var vs = values
        if weekdays, vs.first == 0, values.count < 7 { vs = Array(vs.dropFirst()) + [7] }
        func label(_ v: Int) -> String { name(weekdays && v == 7 ? 0 : v) }
        var parts: [String] = []
        var i = 0
        while i < vs.count {
            var j = i
            while j + 1 < vs.count, vs[j + 1] == vs[j] + 1 { j += 1 }
            if j - i >= 2 {
                parts.append(label(vs[i]) + " through " + label(vs[j]))
            } else {
                for k in i...j { parts.append(label(vs[k])) }
            }
            i = j + 1
        }
        return join(parts, conjunction: conjunction)
    }

    static func join(_ parts: [String], conjunction: String = "and") -> String {
        switch parts.count {
        case 0: return ""
        case 1: return parts[0]
        default: return parts.dropLast().joined(separator: ", ") + " \(conjunction) " + parts[parts.count - 1]
        }
    }

    static func ordinal(_ n: Int) -> String {
        let suffix = (11...13).contains(n % 100) ? "th" : n % 10 == 1 ? "st" : n % 10 == 2 ? "nd" : n % 10 == 3 ? "rd" : "th"
        return "\(n)\(suffix)"
    }

    static func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
}
