import SundialCore
import SundialTesting
import Testing

@Suite(.offPool)
struct IntervalScheduleTests {
    @Test func countedFromTheAnchor() throws {
        let anchor = Instant(unixMillis: 1_000_123)
        let s = try IntervalSchedule(intervalMs: 30_000, anchor: anchor)
        #expect(s.next(after: anchor) == anchor + .seconds(30))
        #expect(s.next(after: anchor + .seconds(29)) == anchor + .seconds(30))
        #expect(s.next(after: anchor + .seconds(30)) == anchor + .seconds(60))
        // Before the anchor: the first fire is still one interval after it.
        #expect(s.next(after: anchor - .seconds(600)) == anchor + .seconds(30))
    }

    @Test func alignedToOffsetPastTheEpoch() throws {
        // every 1h, offset 15m: hh:15 UTC whatever the anchor.
        let s = try IntervalSchedule(intervalMs: 3_600_000, offsetMs: 900_000, anchor: Instant(unixMillis: 123_456))
        #expect(s.next(after: try instant("2026-01-01T10:00:00Z")) == (try instant("2026-01-01T10:15:00Z")))
        #expect(s.next(after: try instant("2026-01-01T10:15:00Z")) == (try instant("2026-01-01T11:15:00Z")))
        // Before 1970 too (floor division).
        #expect(s.next(after: try instant("1969-12-31T22:20:00Z")) == (try instant("1969-12-31T23:15:00Z")))
        let ms = try IntervalSchedule(intervalMs: 500, offsetMs: 0, anchor: Instant(unixMillis: 0))
        #expect(ms.next(after: Instant(unixMillis: 1_250)) == Instant(unixMillis: 1_500))
        let days = try IntervalSchedule(intervalMs: 86_400_000, offsetMs: 3_600_000, anchor: Instant(unixMillis: 0))
        #expect(days.next(after: try instant("2026-05-05T12:00:00Z")) == (try instant("2026-05-06T01:00:00Z")))
    }

    @Test func invalidIntervals() {
        #expect(throws: IntervalSchedule.InvalidInterval.self) { try IntervalSchedule(intervalMs: 0, anchor: Instant(unixMillis: 0)) }
        #expect(throws: IntervalSchedule.InvalidInterval.self) { try IntervalSchedule(intervalMs: -60_000, anchor: Instant(unixMillis: 0)) }
        #expect(throws: IntervalSchedule.InvalidInterval.self) { try IntervalSchedule(intervalMs: 1000, offsetMs: -1, anchor: Instant(unixMillis: 0)) }
    }

    @Test func overflowIsNilNotATrap() throws {
        let s = try IntervalSchedule(intervalMs: 1000, offsetMs: 0, anchor: Instant(unixMillis: 0))
        #expect(s.next(after: Instant(unixMillis: Int64.max - 10)) == nil)
    }

    @Test func oneShots() throws {
        let a = try instant("2026-05-01T10:00:00+02:00")
        let b = try instant("2026-06-01T10:00:00Z")
        let s = OneShotSchedule([b, a])
        #expect(s.next(after: a - .seconds(1)) == a)
        #expect(s.next(after: a) == b)
        #expect(s.next(after: b) == nil)
        #expect(OneShotSchedule([]).next(after: a) == nil)
    }
}

struct CalendarFireCalculatorTests {
    /// Counts zone lookups, to show the cache works.
    final class CountingZones: TimeZoneProvider, @unchecked Sendable {  // test-only counter, single task
        var lookups = 0
        func rules(named name: String?) throws -> TimeZoneRules {
            lookups += 1
            return try TestZones.system.rules(named: name)
        }
    }

    @Test func eachScheduleKind() throws {
        let calc = CalendarFireCalculator(zones: TestZones.system)
        let start = try instant("2026-03-07T12:00:00-05:00")
        var job = JobSpec(id: "j", schedule: .cron("30 2 * * *"), command: .argv(["true"]))
        job.timezone = "America/New_York"
        #expect(calc.nextFire(of: job, after: start, anchor: start) == (try instant("2026-03-08T03:00:00-04:00")))
        job.dst = DSTPolicy(gap: .skip)
        #expect(calc.nextFire(of: job, after: start, anchor: start) == (try instant("2026-03-09T02:30:00-04:00")))
        job.schedule = .every(intervalMs: 60_000, offsetMs: nil)
        #expect(calc.nextFire(of: job, after: start, anchor: start) == start + .seconds(60))
        job.schedule = .every(intervalMs: 3_600_000, offsetMs: 0)
        #expect(calc.nextFire(of: job, after: start, anchor: start) == (try instant("2026-03-07T18:00:00Z")))
        job.schedule = .at([try instant("2026-03-08T00:00:00Z")])
        #expect(calc.nextFire(of: job, after: start, anchor: start) == (try instant("2026-03-08T00:00:00Z")))
        job.schedule = .reboot
        #expect(calc.nextFire(of: job, after: start, anchor: start) == nil)
        job.schedule = .manual
        #expect(calc.nextFire(of: job, after: start, anchor: start) == nil)
        job.schedule = .cron("0 0 30 2 *")
        #expect(calc.nextFire(of: job, after: start, anchor: start) == nil)
        job.schedule = .cron("0 0 * * *")
        job.timezone = "Mars/Olympus_Mons"
        #expect(calc.nextFire(of: job, after: start, anchor: start) == nil)
    }

    @Test func cachesParsedSchedulesUntilInvalidated() throws {
        let zones = CountingZones()
        let calc = CalendarFireCalculator(zones: zones)
        var job = JobSpec(id: "j", schedule: .cron("*/5 * * * *"), command: .argv(["true"]))
        job.timezone = "Europe/Berlin"
        let t = try instant("2026-01-01T00:00:00Z")
        for i in 0..<100 { _ = calc.nextFire(of: job, after: t + .seconds(Int64(i)), anchor: t) }
        #expect(zones.lookups == 1)
        job.dst = DSTPolicy(overlap: .both)  // a different key
        _ = calc.nextFire(of: job, after: t, anchor: t)
        #expect(zones.lookups == 2)
        calc.invalidateCache()
        _ = calc.nextFire(of: job, after: t, anchor: t)
        #expect(zones.lookups == 3)
        #expect(throws: TimeZoneError.self) { try calc.cronSchedule("* * * * *", timezone: "No/Such_Zone", dst: DSTPolicy()) }
        #expect(throws: CronError.self) { try calc.cronSchedule("61 * * * *", timezone: nil, dst: DSTPolicy()) }
    }
}

@Suite(.offPool)
struct CronExplainerTests {
    @Test(
        arguments: [
            ("30 2 * * 1-5", "at 02:30 on Monday through Friday"),
            ("30 2 * * MON-FRI", "at 02:30 on Monday through Friday"),
            ("*/15 * * * *", "every 15 minutes"),
            ("5 * JAN * *", nil),
            ("5 * * JAN *", "at minute 5 past every hour in January"),
            ("* * * * *", "every minute"),
            ("@daily", "at 00:00"),
            ("@hourly", "at minute 0 past every hour"),
            ("@weekly", "at 00:00 on Sunday"),
            ("@yearly", "at 00:00 on January 1"),
            ("@reboot", "once each time the agent starts (not on reload)"),
            ("0 9 * * SAT-SUN", "at 09:00 on Saturday and Sunday"),
            ("0 0 13 * 5", "at 00:00 on day 13 of the month or on Friday"),
            ("0 0 1 * */2", "at 00:00 on day 1 of the month if it is Tuesday, Thursday, Saturday or Sunday"),
            ("0 0 */2 * 1", "at 00:00 on every 2nd day of the month from the 1st if it is Monday"),
            ("0 0 29 2 *", "at 00:00 on February 29"),
            ("0 0 1,15 * *", "at 00:00 on days 1 and 15 of the month"),
            ("5 1,2,3 * * *", "at 01:05, 02:05 and 03:05"),
            ("0-59/20 1-3 * * *", "at minutes 0, 20 and 40 past hours 1 through 3"),
            ("*/15 9-17 * * 1-5", "every 15 minutes during hours 9 through 17 on Monday through Friday"),
            ("0 9 * FEB-APR SAT-SUN", "at 09:00 on Saturday and Sunday in February through April"),
            ("* * * * * *", "every second"),
            ("*/30 * * * * *", "every 30 seconds"),
            ("30 0 0 * * *", "at 00:00:30"),
            ("*/20 30 2 * * *", "every 20 seconds in the minute 02:30"),
            ("0 0 30 2 *", "at 00:00 on February 30 (never fires: no date matches)"),
        ] as [(String, String?)])
    func explain(_ text: String, _ expected: String?) {
        guard let expected else {
            #expect(throws: CronError.self) { try CronExplainer.explain(text) }
            return
        }
        #expect((try? CronExplainer.explain(text)) == expected)
    }
}
