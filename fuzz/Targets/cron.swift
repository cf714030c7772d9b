import SundialCore

/// Fuzzes the cron expression parser (`schedule.cron`, `sundial explain`, crontab import) and,
/// for what parses, the explainer and the next-fire search in UTC and in a daylight-saving zone.
/// Invariants checked: parsing never traps; the canonical text parses to the same sets
/// (documented on `CronExpression.canonical`); a next fire lies strictly after its start.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let e = try? CronExpression(text) else { return 0 }

    let canonical = e.canonical
    guard let again = try? CronExpression(canonical) else { fatalError("canonical '\(canonical)' of '\(text)' does not parse") }
    guard again.canonical == canonical, CronExpression.Field.allCases.allSatisfy({ again.bits($0) == e.bits($0) }),
        again.isWildcardClass == e.isWildcardClass, again.daysUseOrRule == e.daysUseOrRule
    else { fatalError("canonical '\(canonical)' of '\(text)' parses to something else: '\(again.canonical)'") }
    _ = CronExplainer.explain(e)

    // The input's length picks one of the six DST policies, so all are reached across inputs.
    let policy = DSTPolicy(gap: DSTPolicy.Gap.allCases[size % 2], overlap: DSTPolicy.Overlap.allCases[size / 2 % 3])
    // 2026-03-08T06:30:00Z: an hour before the US spring-forward gap, so DST rules are exercised.
    let start = Instant(unixSeconds: 1_772_951_400)
    for zone in zones {
        let schedule = CronSchedule(expression: e, zone: zone, dst: policy)
        var after = start
        for _ in 0..<3 {
            guard let next = schedule.next(after: after) else { break }
            guard next > after else { fatalError("'\(text)' in \(zone): next after \(after) is \(next)") }
            after = next
        }
    }
    return 0
}

/// UTC and New York's rules as a POSIX TZ string: a real gap and overlap without reading files.
nonisolated(unsafe) let zones: [TimeZoneRules] = [
    .utc,
    try! TimeZoneRules(name: "America/New_York", posixTZ: "EST5EDT,M3.2.0,M11.1.0"),
]
