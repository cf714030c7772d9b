import SundialTesting
import Testing

@testable import SundialCore

@Suite(.offPool)
struct CronExpressionTests {
    static func set(_ values: [Int]) -> UInt64 { values.reduce(0) { $0 | 1 << UInt64($1) } }

    // MARK: - Sets

    @Test func fiveFieldsSetsAndDefaults() throws {
        let e = try CronExpression("30 2 * * 1-5")
        #expect(e.seconds == 1)
        #expect(e.minutes == Self.set([30]))
        #expect(e.hours == Self.set([2]))
        #expect(e.daysOfMonth == Self.set(Array(1...31)))
        #expect(e.months == Self.set(Array(1...12)))
        #expect(e.daysOfWeek == Self.set([1, 2, 3, 4, 5]))
        #expect(!e.hasSecondsField)
        #expect(!e.isWildcardClass)
        #expect(!e.isReboot)
    }

    @Test(
        arguments: [
            ("*/15 * * * *", CronExpression.Field.minute, [0, 15, 30, 45]),
            ("5/15 * * * *", .minute, [5, 20, 35, 50]),
            ("10-50/20 * * * *", .minute, [10, 30, 50]),
            ("*/7 * * * *", .minute, [0, 7, 14, 21, 28, 35, 42, 49, 56]),
            ("0 3/6 * * *", .hour, [3, 9, 15, 21]),
            ("0 0 1 */4 *", .month, [1, 5, 9]),
            ("0 0 * JAN,mar,Dec *", .month, [1, 3, 12]),
            ("0 0 * FEB-APR *", .month, [2, 3, 4]),
            ("0 0 * * SAT-SUN", .dayOfWeek, [0, 6]),
            ("0 0 * * 5-0", .dayOfWeek, [0, 5, 6]),
            ("0 0 * * 5-0/2", .dayOfWeek, [0, 5]),
            ("0 0 * * FRI-SUN", .dayOfWeek, [0, 5, 6]),
            ("0 0 * * 7-0", .dayOfWeek, [0]),
            ("0 0 * * 7-2", .dayOfWeek, [0, 1, 2]),
            ("*/90 * * * *", .minute, [0]),
            ("5/90 * * * *", .minute, [5]),
            ("0 */25 * * *", .hour, [0]),
            ("0 0 * * */8", .dayOfWeek, [0]),
            ("0 0 * * 7", .dayOfWeek, [0]),
            ("0 0 * * 0,7", .dayOfWeek, [0]),
            ("0 0 * * 5-7", .dayOfWeek, [0, 5, 6]),
            ("0 0 * * 0-7", .dayOfWeek, [0, 1, 2, 3, 4, 5, 6]),
            ("0 0 * * sun-sat", .dayOfWeek, [0, 1, 2, 3, 4, 5, 6]),
            ("0 0 * * 1,3-4,6", .dayOfWeek, [1, 3, 4, 6]),
            ("1,2,3,58,59 * * * *", .minute, [1, 2, 3, 58, 59]),
            ("0 0 28-31 * *", .dayOfMonth, [28, 29, 30, 31]),
            ("*/20 30 2 * * *", .second, [0, 20, 40]),
            ("10-20/5 0 12 * * MON", .second, [10, 15, 20]),
            ("0 0 0 * * *", .hour, [0]),
            ("*/13 */5 * * *", .hour, [0, 5, 10, 15, 20]),
            ("05 * * * *", .minute, [5]),
        ] as [(String, CronExpression.Field, [Int])])
    func fieldSets(_ text: String, _ field: CronExpression.Field, _ values: [Int]) throws {
        let e = try CronExpression(text)
        #expect(e.bits(field) == Self.set(values), "\(text)")
    }

    @Test(arguments: [
        ("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"), ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"), ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"), ("  @daily  ", "0 0 * * *"), ("@DAILY", "0 0 * * *"),
    ])
    func macros(_ macro: String, _ expansion: String) throws {
        let e = try CronExpression(macro)
        let x = try CronExpression(expansion)
        #expect(e.canonical == expansion)
        for f in CronExpression.Field.allCases { #expect(e.bits(f) == x.bits(f)) }
        #expect(e.isWildcardClass == x.isWildcardClass)
    }

    @Test func reboot() throws {
        let e = try CronExpression("@reboot")
        #expect(e.isReboot)
        #expect(e.canonical == "@reboot")
        #expect(!e.isWildcardClass)
        #expect(e.nextMatch(atOrAfterWall: 0) == nil)
    }

    // MARK: - Class and the day rule

    @Test(arguments: [
        ("* * * * *", true), ("*/15 * * * *", true), ("*/15 2 * * *", true), ("0 * * * *", true),
        ("@hourly", true), ("0 */2 * * *", true), ("*/5,7 1 * * *", true),
        ("30 2 * * *", false), ("0-59/20 1-3 * * *", false), ("@daily", false), ("0-59 1 * * *", false),
        ("5/15 * * * *", true), ("5/15 1 * * *", false),
        // Seconds never change the class.
        ("* 30 2 * * *", false), ("*/20 30 2 * * *", false), ("0 * * * * *", true), ("30 0 * * * *", true),
    ])
    func wildcardClass(_ text: String, _ wildcard: Bool) throws {
        #expect(try CronExpression(text).isWildcardClass == wildcard, "\(text)")
    }

    @Test(arguments: [
        ("0 0 13 * 5", true), ("0 0 */2 * 1", false), ("0 0 1 * */2", false), ("0 0 * * 1", false),
        ("0 0 1 * *", false), ("0 0 8-14 * 1", true), ("0 0 1-31 * 0-6", true), ("0 0 *,1 * 1", false),
    ])
    func vixieDayRule(_ text: String, _ orRule: Bool) throws {
        #expect(try CronExpression(text).daysUseOrRule == orRule, "\(text)")
    }

    // MARK: - Canonical text and the round trip

    static let roundTrip = [
        "30 2 * * 1-5", "*/15 * * * *", "5/15 * * * *", "10-50/20 * * * *", "0 0 * * SAT-SUN",
        "0 0 * * 5-0", "*/90 * * * *", "0 9 * FEB-APR sat-sun", "0 0 29 2 *", "*/20 30 2 * * *", "10-20/5 0 12 * * MON",
        "1,2,3,58,59 * * * *", "*/5,7,9 1 * * *", "0 0 1,15 * *", "0-59/20 1-3 * * *", "0-59 1 * * *",
        "0 0 * * 0,7", "@hourly", "@daily", "@reboot", "0 0 13 * 5", "* * * * * *", "0 0 1 */4 *",
        "0 */7 * * *", "0 0 28-31 * *", "*/13 */5 * * *", "0 4 8-14 * 1", "0 0 */2 * 1", "0 0 1 * */2",
        "0 0 1-31 * 0-6", "1-2 * * * *", "0,30 9-17/2 * * 1,3,5",
    ]

    @Test(arguments: roundTrip)
    func canonicalRoundTrip(_ text: String) throws {
        let e = try CronExpression(text)
        let again = try CronExpression(e.canonical)
        #expect(again.canonical == e.canonical, "\(text) → \(e.canonical) → \(again.canonical)")
        for f in CronExpression.Field.allCases { #expect(again.bits(f) == e.bits(f), "\(text) \(f)") }
        #expect(again.isWildcardClass == e.isWildcardClass)
        #expect(again.daysUseOrRule == e.daysUseOrRule)
        #expect(again.hasSecondsField == e.hasSecondsField)
    }

    @Test(arguments: [
        ("30 2 * * MON-FRI", "30 2 * * 1-5"),
        ("5/15 * * * *", "5-59/15 * * * *"),
        ("0-59/20 1-3 * * *", "0-59/20 1-3 * * *"),
        ("0 0 * * SAT-SUN", "0 0 * * 0,6"),
        ("0 0 * * 7", "0 0 * * 0"),
        ("@hourly", "0 * * * *"),
        ("0 9 * feb-apr *", "0 9 * 2-4 *"),
        ("*/15 * * * *", "*/15 * * * *"),
        ("0-59 1 * * *", "0-59 1 * * *"),
        ("00 02 * * *", "0 2 * * *"),
        ("  30   2 * *\t*  ", "30 2 * * *"),
        ("*/20 30 2 * * *", "*/20 30 2 * * *"),
    ])
    func canonicalForms(_ text: String, _ canonical: String) throws {
        #expect(try CronExpression(text).canonical == canonical)
    }

    // MARK: - Warnings: what cronie accepts but probably does not mean what it says

    @Test(arguments: [
        ("*/90 * * * *", 3, "minute step 90 is larger than the field (60 values): '*/90' means minute 0 only, as in cronie; write 0 to say so"),
        ("5/90 * * * *", 3, "minute step 90 is larger than the field (60 values): '5/90' means minute 5 only, as in cronie; write 5 to say so"),
        ("0 1,*/25 * * *", 7, "hour step 25 is larger than the field (24 values): '*/25' means hour 0 only, as in cronie; write 0 to say so"),
        (
            "*/99999999 0 0 * * *", 3,
            "second step 100000 is larger than the field (60 values): '*/99999999' means second 0 only, as in cronie; write 0 to say so"
        ),
    ])
    func stepLargerThanItsFieldWarns(_ text: String, _ column: Int, _ message: String) throws {
        let e = try CronExpression(text)
        #expect(e.warnings.map(\.column) == [column])
        #expect(e.warnings.map(\.message) == [message])
    }

    @Test(arguments: ["*/60 * * * *", "*/59 * * * *", "0 0 * * SAT-SUN", "0 0 * * */7", "30 2 * * *", "@daily"])
    func noWarningWithinTheField(_ text: String) throws {
        #expect(try CronExpression(text).warnings.isEmpty)
    }

    // MARK: - Errors: field, column, message

    @Test(
        arguments: [
            ("60 * * * *", 1, "minute", "minute 60 is out of range 0-59"),
            ("30 24 * * *", 4, "hour", "hour 24 is out of range 0-23"),
            ("* * * *", 8, nil, "expected 5 fields"),
            ("* * * * * * *", 13, nil, "found 7"),
            ("", 1, nil, "empty cron expression"),
            ("*/0 * * * *", 3, "minute", "step 0 is out of range"),
            ("5-1 * * * *", 1, "minute", "range 5-1 is reversed"),
            ("0 22-2 * * *", 3, "hour", "hour range 22-2 is reversed; write 2-22, or a list such as 22-23,0-2"),
            ("0 0 * * 5-1", 9, "day-of-week", "day-of-week range 5-1 is reversed; for days across Sunday write a list such as 5-7,0-1"),
            ("0 0 * * 1,FRI-MON", 11, "day-of-week", "day-of-week range FRI-MON is reversed"),
            ("0 0 * * 6-5/2", 9, "day-of-week", "range 6-5 is reversed"),
            ("0 0 20-10 * *", 5, "day-of-month", "day-of-month range 20-10 is reversed"),
            ("0 0 * DEC-JAN *", 7, "month", "month range DEC-JAN is reversed"),
            ("30-10 0 0 * * *", 1, "second", "second range 30-10 is reversed"),
            ("* * * * MON-", 13, "day-of-week", "missing its end"),
            ("@sometimes", 1, nil, "unknown macro '@sometimes'"),
            ("@daily extra", 8, nil, "unexpected text after '@daily'"),
            ("0 MON * * *", 3, "hour", "day name 'MON' is only allowed in the day-of-week field"),
            ("0 0 * * JAN", 9, "day-of-week", "month name 'JAN' is only allowed in the month field"),
            ("JAN * * * *", 1, "minute", "month name 'JAN'"),
            ("0 0 * XYZ *", 7, "month", "unknown name 'XYZ'"),
            ("* * 0 * *", 5, "day-of-month", "day-of-month 0 is out of range 1-31"),
            ("* * 32 * *", 5, "day-of-month", "out of range 1-31"),
            ("* * * 0 *", 7, "month", "month 0 is out of range 1-12"),
            ("* * * 13 *", 7, "month", "month 13"),
            ("* * * * 8", 9, "day-of-week", "day-of-week 8 is out of range 0-7"),
            ("0 0 L * *", 5, "day-of-month", "'L'"),
            ("0 0 15W * *", 7, "day-of-month", "'W'"),
            ("0 0 * * 5L", 10, "day-of-week", "'L'"),
            ("0 0 * * 1#2", 10, "day-of-week", "'#'"),
            ("0 0 ? * 1", 5, "day-of-month", "'?'"),
            ("1,,2 * * * *", 3, "minute", "empty item"),
            ("1, * * * *", 3, "minute", "empty item after ','"),
            ("*5 * * * *", 2, "minute", "unexpected character '5'"),
            ("1-2-3 * * * *", 4, "minute", "unexpected character '-'"),
            ("*/x * * * *", 3, "minute", "step after '/' must be a number"),
            ("99999999999999999999 * * * *", 1, "minute", "out of range"),
            ("60 30 2 * * *", 1, "second", "second 60 is out of range 0-59"),
            ("0 0 * * 1-", 11, "day-of-week", "missing its end"),
            ("0 0 * * é", 9, "day-of-week", "unexpected character"),
        ] as [(String, Int, String?, String)])
    func errors(_ text: String, _ column: Int, _ field: String?, _ fragment: String) {
        do {
            let e = try CronExpression(text)
            Issue.record("'\(text)' parsed as \(e.canonical)")
        } catch {
            #expect(error.column == column, "\(text): \(error)")
            #expect(error.field == field, "\(text): \(error)")
            #expect(error.message.contains(fragment), "\(text): \(error)")
            #expect(error.description == "column \(error.column): \(error.message)")
        }
    }

    // MARK: - Never fires

    @Test(arguments: [
        ("0 0 30 2 *", true), ("0 0 31 4,6,9,11 *", true), ("0 0 31 2,4,6,9,11 *", true), ("0 0 0 31 11 *", true),
        ("0 0 29 2 *", false), ("0 0 31 * *", false), ("0 0 30 2 1", false), ("0 0 30 2 */7", true),
        ("0 0 29 2 */7", false), ("0 0 31 1 *", false), ("@reboot", true),
    ])
    func neverFires(_ text: String, _ never: Bool) throws {
        #expect(try CronExpression(text).neverFires == never, "\(text)")
    }

    // MARK: - Calendar search (zone-free)

    @Test(
        arguments: [
            ("0 0 29 2 *", "2026-01-01T00:00:00", "2028-02-29T00:00:00"),
            ("0 0 29 2 */7", "2026-01-01T00:00:00", "2032-02-29T00:00:00"),  // Feb 29 that is a Sunday
            ("0 0 29 2 */7", "2032-03-01T00:00:00", "2060-02-29T00:00:00"),
            ("0 0 31 * *", "2026-04-01T00:00:00", "2026-05-31T00:00:00"),
            ("59 23 31 12 *", "2026-01-01T00:00:00", "2026-12-31T23:59:00"),
            ("* * * * * *", "2026-01-01T00:00:00.001", "2026-01-01T00:00:01"),
            ("0 0 * * *", "2026-01-01T00:00:00", "2026-01-01T00:00:00"),  // at or after
            ("0 12 * * 1", "2026-12-31T13:00:00", "2027-01-04T12:00:00"),
            ("0 0 1 1 *", "9999-06-01T00:00:00", nil),
        ] as [(String, String, String?)])
    func nextMatch(_ text: String, _ from: String, _ expected: String?) throws {
        let e = try CronExpression(text)
        let got = e.nextMatch(atOrAfterWall: try wall(from)).map { LocalDateTime(wallMillis: $0).description }
        #expect(got == expected)
    }

    @Test func neverFiringSearchEndsQuickly() throws {
        // The static check and the horizon both bound the work.
        let e = try CronExpression("0 0 31 4,6,9,11 *")
        #expect(e.nextMatch(atOrAfterWall: 0) == nil)
    }

    /// The calendar search agrees with a minute-by-minute scan on random expressions.
    @Test func nextMatchAgreesWithScan() throws {
        var rng = SeededRandom(seed: 42)
        func pick(_ options: [String]) -> String { options[Int(rng.nextUInt64() % UInt64(options.count))] }
        for _ in 0..<150 {
            let text = [
                pick(["*", "0", "*/7", "5/15", "10-20", "59", "0,30"]),
                pick(["*", "0", "*/5", "23", "1-3", "9-17/4"]),
                pick(["*", "1", "15", "29-31", "*/10", "13"]),
                pick(["*", "2", "*/3", "JAN,JUL", "11-12"]),
                pick(["*", "1", "5", "SAT-SUN", "*/2", "0"]),
            ].joined(separator: " ")
            let e = try CronExpression(text)
            let start = Int64(rng.nextUInt64() % 200_000_000) * 60_000 / 10 * 10  // 1970–2350ish
            var w = start - start % 60_000 + 60_000
            var scanned: Int64?
            for _ in 0..<(60 * 24 * 40) {
                if naiveMatch(e, LocalDateTime(wallMillis: w)) {
                    scanned = w
                    break
                }
                w += 60_000
            }
            let got = e.nextMatch(atOrAfterWall: start + 1)
            if let scanned { #expect(got == scanned, "\(text) from \(LocalDateTime(wallMillis: start))") } else { #expect(got == nil || got! > w - 60_000) }
        }
    }
}

/// Wall milliseconds of `YYYY-MM-DDTHH:MM:SS[.fff]` (no offset).
func wall(_ text: String) throws -> Int64 {
    try RFC3339.parse(text + "Z").instant.unixMillis
}

/// Matching written the slow, obvious way, as a reference.
func naiveMatch(_ e: CronExpression, _ t: LocalDateTime) -> Bool {
    func has(_ bits: UInt64, _ v: Int) -> Bool { bits >> UInt64(v) & 1 == 1 }
    guard t.millisecond == 0, has(e.seconds, t.second), has(e.minutes, t.minute), has(e.hours, t.hour), has(e.months, t.month) else { return false }
    let dom = has(e.daysOfMonth, t.day)
    let dow = has(e.daysOfWeek, t.weekday)
    return e.daysUseOrRule ? (dom || dow) : (dom && dow)
}
