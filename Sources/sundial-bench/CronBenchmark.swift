import SundialCore
import SundialRuntime

/// `sundial-bench cron`: the time engine's figures (issue 3).
///
/// 1. The next fire of 10,000 different cron jobs spread over a dozen zones, from one instant
///    (target: under 20 ms in total).
/// 2. The median time of a single `next(after:)` for common expressions (target: under 2 µs).
func cronBenchmark(_ args: [String]) throws {
    let zoneNames = [
        "UTC", "Europe/Berlin", "America/New_York", "America/Los_Angeles", "Asia/Tokyo", "Asia/Kolkata",
        "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Chatham", "Europe/Dublin", "America/Santiago", "Africa/Cairo",
    ]
    let provider = SystemTimeZones()
    let zones = try zoneNames.map { try provider.rules(named: $0) }
    let days = ["* * *", "* * 1-5", "1 * *", "*/2 * *", "15 */3 *", "* * SAT,SUN", "1-7 * 1", "13 * 5", "28-31 * *", "* JAN,JUL *"]
    let policies = [DSTPolicy(), DSTPolicy(gap: .skip), DSTPolicy(overlap: .last), DSTPolicy(overlap: .both)]

    // 10,000 distinct (expression, zone) jobs: fixed-class and wildcard-class mixed.
    var texts: [String] = []
    for i in 0..<10_000 {
        let minute = i % 60
        let hour = (i / 60) % 24
        let d = days[(i / 1440) % days.count]
        switch i % 5 {
        case 0: texts.append("*/\(1 + i % 30) \(hour) \(d)")
        case 1: texts.append("\(minute) */\(1 + i % 6) \(d)")
        default: texts.append("\(minute) \(hour) \(d)")
        }
    }
    let clock = ContinuousClock()
    var schedules: [CronSchedule] = []
    let parse = clock.measure {
        schedules = texts.enumerated().map { i, t in
            CronSchedule(expression: try! CronExpression(t), zone: zones[i % zones.count], dst: policies[i % policies.count])
        }
    }
    let start = Instant(unixMillis: 1_772_900_000_000)  // 2026-03-07, just before US DST starts
    var totals: [Duration] = []
    var checksum: Int64 = 0
    for _ in 0..<25 {
        totals.append(
            clock.measure {
                for s in schedules { checksum &+= s.next(after: start)?.unixMillis ?? 0 }
            })
    }
    totals.sort()
    print(
        "cron: next fire of \(schedules.count) jobs in \(zones.count) zones: median \(ms(totals[totals.count / 2])), best \(ms(totals[0])) (parse: \(ms(parse)))"
    )

    // Single `next` for common expressions: median over batches.
    let berlin = try provider.rules(named: "Europe/Berlin")
    for text in ["*/5 * * * *", "30 2 * * *", "0 9 * * 1-5", "@hourly", "0 0 1 * *", "*/15 9-17 * * 1-5", "0 30 2 * * *", "0 0 29 2 *"] {
        let s = try CronSchedule(text, zone: berlin)
        var perCall: [Double] = []
        var t = start
        for _ in 0..<200 {
            let d = clock.measure {
                for _ in 0..<500 {
                    let n = s.next(after: t)!
                    checksum &+= n.unixMillis
                    t = t + .seconds(3_607)  // walk forward so inputs vary
                }
            }
            perCall.append(Double(d.components.attoseconds) / 1e9 / 500 + Double(d.components.seconds) * 1e9 / 500)
        }
        perCall.sort()
        print("cron: single next '\(text)' Europe/Berlin: median \(fmt(perCall[perCall.count / 2])) ns, p90 \(fmt(perCall[perCall.count * 9 / 10])) ns")
    }
    if checksum == 42 { print("") }  // keep the work observable
}

private func ms(_ d: Duration) -> String {
    let v = Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    return fmt(v) + " ms"
}

private func fmt(_ v: Double) -> String {
    let r = (v * 100).rounded() / 100
    return String(r)
}
