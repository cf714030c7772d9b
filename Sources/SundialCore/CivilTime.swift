/// Proleptic Gregorian calendar arithmetic on plain integers.
///
/// Hand-written because the core may not use Foundation's `Calendar` (it reads ICU's compiled-in
/// zone data and allocates); these are Howard Hinnant's public-domain `days_from_civil`
/// algorithms, exact for every year Sundial accepts.
public enum CivilTime {
    /// Days since 1970-01-01 of the given date (month 1...12, day 1...31).
    @inlinable public static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The date of a day count since 1970-01-01.
    @inlinable public static func civilFromDays(_ z0: Int) -> (year: Int, month: Int, day: Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    /// Day of week of a day count since 1970-01-01: 0 = Sunday ... 6 = Saturday.
    @inlinable public static func weekday(days: Int) -> Int {
        let w = (days + 4) % 7
        return w < 0 ? w + 7 : w
    }

    @inlinable public static func isLeapYear(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    @inlinable public static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}

/// A wall-clock reading: date and time of day without a zone.
public struct LocalDateTime: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, millisecond: Int

    public init(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0, millisecond: Int = 0) {
        (self.year, self.month, self.day, self.hour, self.minute, self.second, self.millisecond) = (year, month, day, hour, minute, second, millisecond)
    }

    /// Interprets the reading as if it were UTC: milliseconds since the epoch of the same wall time.
    /// Useful to compare and step wall-clock readings linearly.
    public var wallMillis: Int64 {
        let days = Int64(CivilTime.daysFromCivil(year: year, month: month, day: day))
        return ((days * 24 + Int64(hour)) * 60 + Int64(minute)) * 60_000 + Int64(second) * 1000 + Int64(millisecond)
    }

    public init(wallMillis: Int64) {
        var days = wallMillis / 86_400_000
        var rem = wallMillis % 86_400_000
        if rem < 0 {
            rem += 86_400_000
            days -= 1
        }
        let (y, m, d) = CivilTime.civilFromDays(Int(days))
        let ms = Int(rem)
        self.init(year: y, month: m, day: d, hour: ms / 3_600_000, minute: ms / 60_000 % 60, second: ms / 1000 % 60, millisecond: ms % 1000)
    }

    public static func < (a: LocalDateTime, b: LocalDateTime) -> Bool { a.wallMillis < b.wallMillis }

    public var weekday: Int { CivilTime.weekday(days: CivilTime.daysFromCivil(year: year, month: month, day: day)) }

    public var description: String {
        "\(pad(year, 4))-\(pad(month))-\(pad(day))T\(pad(hour)):\(pad(minute)):\(pad(second))"
    }
}

@usableFromInline func pad(_ v: Int, _ width: Int = 2) -> String {
    let s = String(v < 0 ? -v : v)
    let padded = s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    return v < 0 ? "-" + padded : padded
}
