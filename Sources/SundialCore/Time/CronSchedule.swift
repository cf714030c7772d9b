/// A cron expression evaluated on one zone's wall clock, with design §2's daylight-saving rules.
///
/// ## The rules
/// With L(t) the wall clock at instant t and HW(t) = max L(s) for s <= t (design §2):
/// - a **fixed-class** job fires at t iff some matching wall time m has HW(t−) < m <= L(t).
///   So each matching wall time fires once, at the first instant the wall clock reaches it:
///   at its first occurrence (R1, R4), or, if the clock jumped over it, at the jump (R2; several
///   skipped matches collapse into one fire). Nothing fires in the second pass of a repeated
///   interval until the wall clock passes its earlier high point.
/// - a **wildcard-class** job fires at t iff L(t) matches: skipped times are dropped (R3) and
///   repeated ones fire in both passes (R5). This is the same as the policy
///   `{gap: skip, overlap: both}`.
/// - `dst` overrides R2 and R4 for fixed-class jobs: `gap: skip` drops the catch-up fire;
///   `overlap: last` fires a repeated wall time at its last occurrence, `both` at each. It does
///   not apply to wildcard-class jobs, which always follow real time (R3, R5).
/// - R6: `next(after: T)` is the first fire strictly after T of a job that has been running
///   continuously, which the definition gives directly (HW looks at the past, not at T).
///
/// ## The search
/// The zone's time line is a sequence of segments with one UTC offset each; within a segment
/// the wall clock runs linearly. For each segment from T on, the calendar search
/// (`CronExpression.nextMatch`, field by field on bitsets) finds the first acceptable wall time
/// in that segment's wall range, and a forward jump at the segment's start is checked for
/// skipped matches. Bounded: the calendar search stops after 401 years (a whole Gregorian
/// cycle) and the walk after as many years of segments, so a never-firing expression answers
/// `nil` quickly instead of looping.
public struct CronSchedule: Sendable {
    public let expression: CronExpression
    public let zone: TimeZoneRules
    /// The policy as configured (see the type's notes for when it applies).
    public let dst: DSTPolicy
    /// The policy in effect after the job's class is taken into account.
    let gapShift: Bool
    let overlap: DSTPolicy.Overlap
    /// `expression.neverFires`, computed once.
    public let neverFires: Bool

    public init(expression: CronExpression, zone: TimeZoneRules, dst: DSTPolicy = DSTPolicy()) {
        self.expression = expression
        self.zone = zone
        self.dst = dst
        if expression.isWildcardClass {
            gapShift = false
            overlap = .both
        } else {
            gapShift = dst.gap == .shift
            overlap = dst.overlap
        }
        neverFires = expression.neverFires
    }

    /// Parses `text` and checks that it can fire.
    /// - Throws: `CronError` for a syntax error, or for an expression that never fires (column 1).
    public init(_ text: String, zone: TimeZoneRules, dst: DSTPolicy = DSTPolicy()) throws(CronError) {
        let e = try CronExpression(text)
        if !e.isReboot, e.neverFires { throw CronError.neverFires(e) }
        self.init(expression: e, zone: zone, dst: dst)
    }

    /// How far the segment walk goes before giving up (in milliseconds): the calendar horizon.
    static let horizonMillis: Int64 = Int64(CronExpression.searchHorizonYears) * 366 * 86_400_000

    /// The first fire strictly after `after`, or `nil` when there is none (`@reboot`, a
    /// never-firing expression, or nothing before the horizon / year 9999).
    public func next(after: Instant) -> Instant? {
        if neverFires { return nil }
        let t0 = after.unixMillis &+ 1
        let limit = after.unixMillis &+ Self.horizonMillis
        var seg = zone.segment(containing: t0)
        for _ in 0..<100_000 {
            let o = Int64(seg.offset) * 1000
            let start = seg.start ?? Int64.min
            // R2: a forward jump at this segment's start fires skipped matches once, at the jump.
            if gapShift, let s = seg.start, s >= t0, let previous = seg.previousOffset, previous < seg.offset {
                let from = max(s + Int64(previous) * 1000, seg.highWaterBefore)
                if let m = expression.nextMatch(atOrAfterWall: from), m < s + o { return Instant(unixMillis: s) }
            }
            var lo = max(t0, start) + o
            // R4: in the second pass of a repeated interval, only times above the earlier high.
            if overlap == .first { lo = max(lo, seg.highWaterBefore) }
            guard let m = expression.nextMatch(atOrAfterWall: lo) else { return nil }
            guard let end = seg.end else { return Instant(unixMillis: m - o) }
            if m < end + o {
                // `overlap: last` skips an occurrence the clock will show again after `end`.
                if overlap != .last || m < zone.lowWaterWall(from: end) { return Instant(unixMillis: m - o) }
            }
            if end > limit { return nil }
            seg = zone.segment(containing: end)
        }
        return nil
    }

    /// The next `count` fires after `after`, in order (fewer if the schedule runs out).
    public func next(after: Instant, count: Int) -> [Instant] {
        var result: [Instant] = []
        var t = after
        while result.count < count, let n = next(after: t) {
            result.append(n)
            t = n
        }
        return result
    }
}

extension CronError {
    /// The validation error for an expression that matches no calendar date.
    public static func neverFires(_ e: CronExpression) -> CronError {
        CronError(column: 1, field: nil, message: "'\(e.text)' never fires: no date matches its day-of-month, month and day-of-week fields")
    }
}

extension TimeZoneRules {
    /// The lowest wall reading (ms) shown at or after instant `t` (ms), looking ahead as far as
    /// a wall clock can go back (two days): below it, a wall time shown before `t` is shown again.
    func lowWaterWall(from t: Int64) -> Int64 {
        var seg = segment(containing: t)
        var low = t + Int64(seg.offset) * 1000
        let horizon = t + 50 * 3_600_000
        while let e = seg.end, e < horizon {
            seg = segment(containing: e)
            low = min(low, e + Int64(seg.offset) * 1000)
        }
        return low
    }
}
