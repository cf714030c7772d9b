/// Calendar search on wall-clock readings, without any zone: "the first matching wall time at or
/// after this one". `CronSchedule` maps the answer onto the zone's time line.
extension CronExpression {
    /// How far a calendar search looks ahead. 401 years spans a whole Gregorian cycle (weekdays
    /// and leap days repeat every 400 years), so an expression that is not `neverFires` always
    /// finds a match within it, and one that is never loops forever.
    public static let searchHorizonYears = 401

    /// The smallest matching wall time (milliseconds, as `LocalDateTime.wallMillis`) that is
    /// `>= wall`, or `nil` if there is none within `searchHorizonYears` (or past year 9999).
    ///
    /// Jumps field by field (month, day, hour, minute, second), each jump a trailing-zero
    /// count on the field's bitset: a yearly job costs a handful of steps, not a year of minutes.
    public func nextMatch(atOrAfterWall wall: Int64) -> Int64? {
        if isReboot { return nil }
        // Round up to a whole second.
        let secs = floorDiv(wall + 999, 1000)
        var days = floorDiv(secs, 86_400)
        var sod = Int(secs - days * 86_400)
        let (y0, m0, d0) = CivilTime.civilFromDays(Int(days))
        var year = y0
        var month = m0
        var day = d0
        var hour = sod / 3600
        var minute = sod / 60 % 60
        var second = sod % 60
        let lastYear = min(year + Self.searchHorizonYears, 9999)

        while true {
            // Carries from the steps below.
            if second > 59 {
                second = 0
                minute += 1
            }
            if minute > 59 {
                minute = 0
                hour += 1
            }
            if hour > 23 {
                hour = 0
                day += 1
            }
            if month > 12 {
                month = 1
                year += 1
            }
            if day > CivilTime.daysInMonth(year: year, month: month) {
                day = 1
                month += 1
                if month > 12 {
                    month = 1
                    year += 1
                }
            }
            if year > lastYear { return nil }

            // Month.
            if months >> UInt64(month) & 1 == 0 {
                guard let m = Self.nextBit(months, from: month + 1, max: 12) else {
                    year += 1
                    month = Self.nextBit(months, from: 1, max: 12) ?? 1
                    day = 1
                    hour = 0
                    minute = 0
                    second = 0
                    continue
                }
                month = m
                day = 1
                hour = 0
                minute = 0
                second = 0
            }
            // Day.
            let dim = CivilTime.daysInMonth(year: year, month: month)
            let first = CivilTime.daysFromCivil(year: year, month: month, day: 1)
            let dayBits = matchingDays(firstWeekday: CivilTime.weekday(days: first), daysInMonth: dim)
            guard let d = Self.nextBit(dayBits, from: day, max: 31) else {
                month += 1
                day = 1
                hour = 0
                minute = 0
                second = 0
                continue
            }
            if d != day {
                day = d
                hour = 0
                minute = 0
                second = 0
            }
            // Hour, minute, second.
            guard let h = Self.nextBit(hours, from: hour, max: 23) else {
                day += 1
                hour = 0
                minute = 0
                second = 0
                continue
            }
            if h != hour {
                hour = h
                minute = 0
                second = 0
            }
            guard let mi = Self.nextBit(minutes, from: minute, max: 59) else {
                hour += 1
                minute = 0
                second = 0
                continue
            }
            if mi != minute {
                minute = mi
                second = 0
            }
            guard let s = Self.nextBit(seconds, from: second, max: 59) else {
                minute += 1
                second = 0
                continue
            }
            second = s
            days = Int64(CivilTime.daysFromCivil(year: year, month: month, day: day))
            sod = (hour * 60 + minute) * 60 + second
            return (days * 86_400 + Int64(sod)) * 1000
        }
    }

    /// Whether a wall time (milliseconds) matches; the milliseconds must be 0.
    public func matches(wall: Int64) -> Bool {
        guard !isReboot, wall % 1000 == 0 else { return false }
        return nextMatch(atOrAfterWall: wall) == wall
    }

    /// The smallest set bit `>= from` and `<= max`, if any.
    @inline(__always) static func nextBit(_ bits: UInt64, from: Int, max: Int) -> Int? {
        guard from <= max else { return nil }
        let rest = bits >> UInt64(from)
        guard rest != 0 else { return nil }
        let v = from + rest.trailingZeroBitCount
        return v <= max ? v : nil
    }
}

/// Division rounding toward negative infinity (Swift's `/` truncates toward zero).
@inline(__always) func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}
