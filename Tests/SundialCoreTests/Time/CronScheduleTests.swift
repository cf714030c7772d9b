import SundialTesting
import Testing

@testable import SundialCore

/// Calendar edge cases without DST: leap days, month ends, the day rule, seconds, uneven steps.
@Suite(.offPool)
struct CronScheduleTests {
    @Test(
        arguments: [
            // Leap days.
            ("0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]),
            ("0 0 29 2 *", "Europe/Berlin", "2026-03-01T00:00:00+01:00", ["2028-02-29T00:00:00+01:00"]),
            ("0 12 28-29 2 *", "UTC", "2027-02-28T12:00:00Z", ["2028-02-28T12:00:00Z", "2028-02-29T12:00:00Z", "2029-02-28T12:00:00Z"]),
            ("0 0 29 2 1", "UTC", "2028-02-27T00:00:00Z", ["2028-02-28T00:00:00Z", "2028-02-29T00:00:00Z", "2029-02-05T00:00:00Z"]),
            ("0 0 29 2 */7", "UTC", "2026-01-01T00:00:00Z", ["2032-02-29T00:00:00Z", "2060-02-29T00:00:00Z"]),
            // Century years: 2100 is not a leap year, 2400 is.
            ("0 0 29 2 *", "UTC", "2096-03-01T00:00:00Z", ["2104-02-29T00:00:00Z"]),
            // Month ends.
            ("0 0 31 * *", "UTC", "2026-01-31T00:00:00Z", ["2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z"]),
            ("0 0 30 * *", "UTC", "2026-01-30T00:00:00Z", ["2026-03-30T00:00:00Z", "2026-04-30T00:00:00Z"]),
            ("59 23 28-31 * *", "America/New_York", "2026-02-27T00:00:00-05:00", ["2026-02-28T23:59:00-05:00", "2026-03-28T23:59:00-04:00"]),
            ("0 0 1 * *", "Australia/Lord_Howe", "2026-12-15T00:00:00+11:00", ["2027-01-01T00:00:00+11:00", "2027-02-01T00:00:00+11:00"]),
            // Vixie's rule: OR when both restricted, AND when either starts with '*'.
            ("0 0 1 * 1", "UTC", "2026-05-30T00:00:00Z", ["2026-06-01T00:00:00Z", "2026-06-08T00:00:00Z"]),
            (
                "0 0 1,15 * 5", "UTC", "2026-05-01T00:00:00Z",
                ["2026-05-08T00:00:00Z", "2026-05-15T00:00:00Z", "2026-05-22T00:00:00Z", "2026-05-29T00:00:00Z", "2026-06-01T00:00:00Z"]
            ),
            ("0 0 */2 * 1", "UTC", "2026-01-01T00:00:00Z", ["2026-01-05T00:00:00Z", "2026-01-19T00:00:00Z"]),
            ("0 0 * * */3", "UTC", "2026-01-01T00:00:00Z", ["2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z", "2026-01-07T00:00:00Z"]),
            ("0 0 13 * FRI", "UTC", "2026-03-01T00:00:00Z", ["2026-03-06T00:00:00Z", "2026-03-13T00:00:00Z", "2026-03-20T00:00:00Z"]),
            // Seconds field.
            ("15,45 * * * * *", "UTC", "2026-01-01T00:00:15Z", ["2026-01-01T00:00:45Z", "2026-01-01T00:01:15Z"]),
            ("0 0 0 1 1 *", "UTC", "2026-06-01T00:00:00Z", ["2027-01-01T00:00:00Z"]),
            ("59 59 23 31 12 *", "UTC", "2026-12-31T23:59:58.999Z", ["2026-12-31T23:59:59Z", "2027-12-31T23:59:59Z"]),
            ("*/7 * * * * *", "UTC", "2026-01-01T00:00:50Z", ["2026-01-01T00:00:56Z", "2026-01-01T00:01:00Z", "2026-01-01T00:01:07Z"]),
            // Steps that do not divide evenly restart at each boundary.
            ("*/25 * * * *", "UTC", "2026-01-01T00:30:00Z", ["2026-01-01T00:50:00Z", "2026-01-01T01:00:00Z", "2026-01-01T01:25:00Z"]),
            ("0 */5 * * *", "UTC", "2026-01-01T19:00:00Z", ["2026-01-01T20:00:00Z", "2026-01-02T00:00:00Z", "2026-01-02T05:00:00Z"]),
            ("0 0 */10 * *", "UTC", "2026-01-25T00:00:00Z", ["2026-01-31T00:00:00Z", "2026-02-01T00:00:00Z", "2026-02-11T00:00:00Z"]),
            ("0 0 1 */5 *", "UTC", "2026-07-01T00:00:00Z", ["2026-11-01T00:00:00Z", "2027-01-01T00:00:00Z", "2027-06-01T00:00:00Z"]),
            ("0 0 * * 1-5/2", "UTC", "2026-01-04T00:00:00Z", ["2026-01-05T00:00:00Z", "2026-01-07T00:00:00Z", "2026-01-09T00:00:00Z", "2026-01-12T00:00:00Z"]),
            // Odd offsets and zones far from UTC.
            ("30 9 * * 1-5", "Asia/Kathmandu", "2026-01-02T09:30:00+05:45", ["2026-01-05T09:30:00+05:45"]),
            ("0 0 1 1 *", "Pacific/Kiritimati", "2026-12-31T09:59:59Z", ["2027-01-01T00:00:00+14:00"]),
            ("0 0 1 1 *", "Pacific/Pago_Pago", "2026-06-01T00:00:00Z", ["2027-01-01T00:00:00-11:00"]),
            // Fractional `after` and strictly-after.
            ("* * * * *", "UTC", "2026-01-01T00:00:59.999Z", ["2026-01-01T00:01:00Z"]),
            ("* * * * *", "UTC", "2026-01-01T00:01:00Z", ["2026-01-01T00:02:00Z"]),
            // Far past and far future (the footer rule beyond the table).
            ("30 2 * * *", "America/New_York", "2230-03-08T00:00:00-05:00", ["2230-03-08T02:30:00-05:00"]),
            ("30 2 * * *", "America/New_York", "2231-03-12T12:00:00-05:00", ["2231-03-13T03:00:00-04:00", "2231-03-14T02:30:00-04:00"]),
            ("30 1 * * *", "Europe/Berlin", "1950-01-01T00:00:00+01:00", ["1950-01-01T01:30:00+01:00"]),
        ] as [(String, String, String, [String])])
    func fires(_ cron: String, _ zoneName: String, _ after: String, _ expected: [String]) throws {
        let zone = try TestZones.zone(zoneName)
        let schedule = try CronSchedule(cron, zone: zone)
        let got = schedule.next(after: try instant(after), count: expected.count)
        let shown = got.map { RFC3339.format($0, utcOffsetSeconds: zone.utcOffset(at: $0)) }
        #expect(got == (try expected.map { try instant($0) }), "\(shown)")
    }

    @Test func neverFiringIsAValidationErrorAndNextIsNil() throws {
        #expect(throws: CronError.self) { try CronSchedule("0 0 30 2 *", zone: .utc) }
        do {
            _ = try CronSchedule("0 0 31 4,6,9,11 *", zone: .utc)
        } catch {
            #expect(error.message.contains("never fires"))
        }
        let e = try CronExpression("0 0 30 2 *")
        #expect(CronSchedule(expression: e, zone: .utc).next(after: Instant(unixMillis: 0)) == nil)
    }

    @Test func rebootHasNoCalendarTimes() throws {
        let s = try CronSchedule("@reboot", zone: .utc)
        #expect(s.next(after: Instant(unixMillis: 0)) == nil)
        #expect(s.next(after: Instant(unixMillis: 0), count: 3).isEmpty)
    }

    @Test func endsAtYear9999() throws {
        let s = try CronSchedule("0 0 1 1 *", zone: .utc)
        #expect(s.next(after: try instant("9999-06-01T00:00:00Z")) == nil)
    }

    /// A rare but valid expression (February 29 on a Sunday) is found; it needs decades.
    @Test func rareExpressionIsFoundAcrossDSTZone() throws {
        let zone = try TestZones.zone("America/New_York")
        let s = try CronSchedule("0 12 29 2 */7", zone: zone)
        #expect(s.next(after: try instant("2032-03-01T00:00:00Z")) == (try instant("2060-02-29T12:00:00-05:00")))
    }

    /// Each fire is a whole second and strictly increasing, and `next` from just before a fire
    /// finds that fire (consistency of the search with itself), for random expressions in DST zones.
    @Test func selfConsistentOnRandomExpressions() throws {
        var rng = SeededRandom(seed: 7)
        func pick(_ options: [String]) -> String { options[Int(rng.nextUInt64() % UInt64(options.count))] }
        let zones = try ["America/New_York", "Australia/Lord_Howe", "Europe/Dublin", "Pacific/Chatham", "America/Santiago"].map(TestZones.zone)
        for _ in 0..<200 {
            let text = [
                pick(["*", "0", "*/7", "5/15", "10-20", "59", "0,30"]), pick(["*", "0", "*/5", "2", "1-3", "23"]),
                pick(["*", "1", "*/10", "29-31"]), pick(["*", "3", "10-11", "*/4"]), pick(["*", "0", "SAT-SUN", "*/2"]),
            ].joined(separator: " ")
            let zone = zones[Int(rng.nextUInt64() % UInt64(zones.count))]
            let dst = DSTPolicy(
                gap: pick(["shift", "skip"]) == "shift" ? .shift : .skip,
                overlap: [.first, .last, .both][Int(rng.nextUInt64() % 3)])
            guard let s = try? CronSchedule(text, zone: zone, dst: dst) else { continue }
            var t = Instant(unixMillis: try instant("2026-01-01T00:00:00Z").unixMillis + Int64(rng.nextUInt64() % 94_000_000_000))
            for _ in 0..<20 {
                guard let n = s.next(after: t) else {
                    Issue.record("\(text) in \(zone) stopped")
                    break
                }
                #expect(n > t)
                #expect(n.unixMillis % 1000 == 0)
                #expect(s.next(after: n - .milliseconds(1)) == n, "\(text) \(zone) \(n)")
                t = n
            }
        }
    }
}
