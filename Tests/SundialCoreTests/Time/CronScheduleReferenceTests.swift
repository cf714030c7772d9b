import SundialTesting
import Testing

@testable import SundialCore

/// The efficient search against a literal, minute-by-minute reading of design §2's definition,
/// around every DST transition of 2026–2028 in many zones, for many expressions and each policy.
@Suite(.offPool)
struct CronScheduleReferenceTests {
    static let zones = [
        "America/New_York", "Europe/Berlin", "Europe/Dublin", "Australia/Lord_Howe", "Pacific/Chatham",
        "America/Santiago", "Antarctica/Troll", "Africa/Casablanca", "Africa/Cairo", "America/Nuuk",
        "Asia/Beirut", "Australia/Adelaide", "America/Havana", "Europe/London", "Asia/Kathmandu",
    ]

    static let expressions = [
        "30 2 * * *", "0 1 * * *", "59 1 * * *", "0 2,3 * * *", "15 1,2 * * *", "0-59/20 1-3 * * *",
        "0-59/10 0-3 * * *", "0 0 * * *", "30 23 * * *", "45 2 * * *", "5 3 * * 0", "0 0 * * 6",
        "*/15 * * * *", "0 * * * *", "*/20 2 * * *", "10,40 * * * *", "0 */2 * * *", "* * * * *",
        "0,30 0-4,22-23 * * *", "0 1-3 * * 0",
    ]

    /// A window of minute ticks with the wall clock at each, computed once per zone and window.
    struct Window {
        static let tick: Int64 = 60_000
        var from: Int64, to: Int64
        var ticks: [Int64] = []
        var walls: [Int64] = []
        /// The lowest wall reading after each tick.
        var laterMin: [Int64] = []

        init(_ zone: TimeZoneRules, from: Int64, to: Int64) {
            (self.from, self.to) = (from, to)
            // Start early enough that HW is the zone's real high-water mark, and look ahead
            // far enough to see whether a wall time comes back.
            var t = from - 12 * 3_600_000
            while t < to + 12 * 3_600_000 {
                ticks.append(t)
                t += Self.tick
            }
            walls = ticks.map { $0 + Int64(zone.utcOffset(at: Instant(unixMillis: $0))) * 1000 }
            laterMin = [Int64](repeating: Int64.max, count: walls.count)
            for i in stride(from: walls.count - 2, through: 0, by: -1) { laterMin[i] = min(laterMin[i + 1], walls[i + 1]) }
        }
    }

    /// The fires in `[from, to)` by the definition, tick by tick with L and HW tracked explicitly.
    /// - Parameter matches: whether the wall time at each tick matches (from `naiveMatch`).
    static func reference(_ e: CronExpression, _ dst: DSTPolicy, _ w: Window, _ matches: [Bool], _ matchCache: inout [Int64: Bool]) -> [Int64] {
        let tick = Window.tick
        var fires: [Int64] = []
        let first = w.ticks.firstIndex { $0 >= w.from }!
        var hw = w.walls[0..<first].max()!  // HW(from − tick)
        var i = first
        while i < w.ticks.count, w.ticks[i] < w.to {
            let wall = w.walls[i]
            var fire = false
            if e.isWildcardClass {
                fire = matches[i]  // R3, R5: the wall clock shows a matching time
            } else if wall > hw {
                // A new wall time; anything between the old high and now was jumped over (R2).
                if dst.gap == .shift {
                    var m = hw + tick
                    while m < wall {
                        let hit = matchCache[m] ?? naiveMatch(e, LocalDateTime(wallMillis: m))
                        matchCache[m] = hit
                        if hit { fire = true }
                        m += tick
                    }
                }
                if matches[i] && (dst.overlap != .last || w.laterMin[i] > wall) { fire = true }
            } else if matches[i] {
                // A repeated wall time (R4 and the overlap policy).
                fire = dst.overlap == .both || (dst.overlap == .last && w.laterMin[i] > wall)
            }
            hw = max(hw, wall)
            if fire { fires.append(w.ticks[i]) }
            i += 1
        }
        return fires
    }

    static func transitions(_ zone: TimeZoneRules) -> [Int64] {
        var result: [Int64] = []
        let end = try! instant("2029-01-01T00:00:00Z").unixMillis
        var seg = zone.segment(containing: try! instant("2026-01-01T00:00:00Z").unixMillis)
        while let e = seg.end, e < end {
            result.append(e)
            seg = zone.segment(containing: e)
        }
        return result
    }

    @Test(arguments: zones)
    func agreesWithDefinition(_ zoneName: String) throws {
        let zone = try TestZones.zone(zoneName)
        var windows = Self.transitions(zone).map { Window(zone, from: $0 - 8 * 3_600_000, to: $0 + 8 * 3_600_000) }
        if windows.isEmpty {
            windows = [Window(zone, from: try instant("2027-06-01T00:00:00Z").unixMillis, to: try instant("2027-06-02T12:00:00Z").unixMillis)]
        }
        var compared = 0
        for text in Self.expressions {
            let e = try CronExpression(text)
            var matchCache: [Int64: Bool] = [:]
            // Only the ticks the reference reads need a match; not the warm-up or look-ahead.
            let matches = windows.map { w in
                w.ticks.indices.map { i in w.ticks[i] >= w.from && w.ticks[i] < w.to && naiveMatch(e, LocalDateTime(wallMillis: w.walls[i])) }
            }
            for gap in DSTPolicy.Gap.allCases {
                for overlap in DSTPolicy.Overlap.allCases {
                    let dst = DSTPolicy(gap: gap, overlap: overlap)
                    let schedule = CronSchedule(expression: e, zone: zone, dst: dst)
                    for (wi, w) in windows.enumerated() {
                        let (from, to) = (w.from, w.to)
                        let expected = Self.reference(e, dst, w, matches[wi], &matchCache)
                        var got: [Int64] = []
                        var t = Instant(unixMillis: from - 1)
                        while let n = schedule.next(after: t), n.unixMillis < to {
                            got.append(n.unixMillis)
                            t = n
                        }
                        compared += 1
                        #expect(
                            got == expected,
                            "\(zoneName) '\(text)' \(dst) window from \(Instant(unixMillis: from)): got \(got.map { Instant(unixMillis: $0) }) expected \(expected.map { Instant(unixMillis: $0) })"
                        )
                    }
                }
            }
        }
        #expect(compared > 0)
    }
}
