/// The UTC offsets of one IANA time zone over time, read from a TZif file (RFC 8536).
///
/// Pure: built from the file's bytes, which the runtime reads from the system's tz database
/// (`SystemTimeZones`), so a `tzdata` update reaches Sundial on the next reload.
///
/// Internally a sorted table of offset changes: the file's explicit transitions, then those its
/// footer rule (`PosixTZ`) generates up to `tableEndYear`; beyond that the footer is evaluated
/// year by year, so every instant up to year 9999 has an exact offset. Transitions that change
/// only the abbreviation or the DST flag, not the offset, are dropped: they do not move the wall
/// clock, and the schedule engine cares only about wall-clock jumps.
public struct TimeZoneRules: Sendable, Equatable, CustomStringConvertible {
    /// The rules, immutable, behind one reference: every parsed cron schedule keeps its zone,
    /// and inline the rules were 152 bytes per schedule (a name, three array references and
    /// the footer rule), in a cache of one schedule per distinct expression and zone.
    private final class Storage: Sendable {
        let name: String
        let times: [Int64]
        let offsets: [Int32]
        let highWater: [Int64]
        let initialOffset: Int32
        let footer: PosixTZ?
        let dynamicFrom: Int64

        init(name: String, times: [Int64], offsets: [Int32], highWater: [Int64], initialOffset: Int32, footer: PosixTZ?, dynamicFrom: Int64) {
            self.name = name
            self.times = times
            self.offsets = offsets
            self.highWater = highWater
            self.initialOffset = initialOffset
            self.footer = footer
            self.dynamicFrom = dynamicFrom
        }
    }

    private let storage: Storage

    /// The zone's name (`Europe/Berlin`), as asked for.
    public var name: String { storage.name }
    /// Offset changes, sorted: instant (unix seconds) and the offset (seconds east) from then on.
    var times: [Int64] { storage.times }
    var offsets: [Int32] { storage.offsets }
    /// Per entry: the highest wall reading (unix seconds of the wall clock) shown before the
    /// transition, exclusive: `max(times[j] + offsetBefore(j))` over `j <= i`.
    var highWater: [Int64] { storage.highWater }
    /// The offset before the first transition.
    var initialOffset: Int32 { storage.initialOffset }
    /// Rules for instants at or after `dynamicFrom` (and after the last explicit transition).
    var footer: PosixTZ? { storage.footer }
    /// Unix seconds from which transitions are computed from `footer` on the fly.
    var dynamicFrom: Int64 { storage.dynamicFrom }

    /// The footer rule is tabulated up to this year; later years are computed when asked.
    static let tableEndYear = 2100

    public var description: String { name }

    /// Same name and same offsets at every instant (so a reload can tell whether a tzdata
    /// update changed a zone in use).
    public static func == (a: TimeZoneRules, b: TimeZoneRules) -> Bool {
        a.storage === b.storage
            || a.name == b.name && a.initialOffset == b.initialOffset && a.times == b.times && a.offsets == b.offsets
                && a.footer == b.footer && a.dynamicFrom == b.dynamicFrom
    }

    /// Coordinated Universal Time.
    public static let utc = TimeZoneRules(name: "UTC", fixedOffset: 0)

    /// A zone that is always `offset` seconds east of UTC.
    public init(name: String, fixedOffset offset: Int) {
        self.init(name: name, transitions: [], initialOffset: Int32(offset), footer: nil)
    }

    /// A zone from a POSIX TZ string alone (the `TZ=EST5EDT` form), for systems without the file.
    public init(name: String, posixTZ: String) throws(TimeZoneError) {
        do {
            let rule = try PosixTZ(posixTZ)
            self.init(name: name, transitions: [], initialOffset: Int32(rule.standardOffset), footer: rule)
        } catch {
            throw TimeZoneError(name: name, message: error.message)
        }
    }

    /// Parses a TZif file (version 1, 2, 3 or 4; the 64-bit section and the footer when present).
    /// - Throws: `TimeZoneError` for anything malformed or truncated; never traps on bad bytes.
    public init(name: String, tzif bytes: [UInt8]) throws(TimeZoneError) {
        let parsed: TZifParser.Result
        do {
            parsed = try TZifParser.parse(bytes)
        } catch {
            throw TimeZoneError(name: name, message: "not a valid TZif file: \(error.message)")
        }
        var footer: PosixTZ?
        if let text = parsed.footer, !text.isEmpty {
            do {
                footer = try PosixTZ(text)
            } catch {
                throw TimeZoneError(name: name, message: "TZif footer: \(error.message)")
            }
        }
        self.init(name: name, transitions: parsed.transitions, initialOffset: parsed.initialOffset, footer: footer)
    }

    init(name: String, transitions: [(Int64, Int32)], initialOffset: Int32, footer: PosixTZ?) {
        var times: [Int64] = []
        var offsets: [Int32] = []
        var current = initialOffset
        for (t, o) in transitions where o != current {
            times.append(t)
            offsets.append(o)
            current = o
        }
        let tableEnd = Int64(CivilTime.daysFromCivil(year: Self.tableEndYear + 1, month: 1, day: 1)) * 86_400
        var initial = initialOffset
        if let footer {
            if transitions.isEmpty {
                // Only a rule: it governs all time.
                initial = Int32(footer.standardOffset)
                current = initial
            }
            let after = transitions.last?.0 ?? Int64.min
            let fromYear = transitions.last.map { Self.year(ofUnixSeconds: $0.0) } ?? 1800
            if fromYear <= Self.tableEndYear {
                for year in fromYear...(Self.tableEndYear + 1) {
                    for tr in footer.transitions(year: year) where tr.at > after && tr.at < tableEnd && Int32(tr.after) != current {
                        times.append(tr.at)
                        offsets.append(Int32(tr.after))
                        current = Int32(tr.after)
                    }
                }
            }
        }
        var high: [Int64] = []
        high.reserveCapacity(times.count)
        var h = Int64.min
        for i in times.indices {
            let before = i == 0 ? initial : offsets[i - 1]
            h = max(h, times[i] + Int64(before))
            high.append(h)
        }
        self.storage = Storage(
            name: name, times: times, offsets: offsets, highWater: high, initialOffset: initial,
            footer: footer?.daylight == nil ? nil : footer, dynamicFrom: max(tableEnd, (transitions.last?.0 ?? Int64.min) + 1))
    }

    static func year(ofUnixSeconds s: Int64) -> Int {
        CivilTime.civilFromDays(Int(floorDiv(s, 86_400))).year
    }

    // MARK: - Offsets

    /// Seconds east of UTC in effect at `instant`.
    public func utcOffset(at instant: Instant) -> Int {
        Int(segment(containing: instant.unixMillis).offset)
    }

    /// The wall-clock reading at `instant`.
    public func localTime(at instant: Instant) -> LocalDateTime {
        LocalDateTime(wallMillis: instant.unixMillis + Int64(utcOffset(at: instant)) * 1000)
    }

    /// The instants at which the wall clock shows `wall` (milliseconds, as
    /// `LocalDateTime.wallMillis`), in order: none in a gap (clocks jump forward), two in a
    /// repeated interval (clocks go back), one otherwise.
    public func instants(forWall wall: Int64) -> [Instant] {
        // Any instant showing `wall` lies within a day or so of `wall` read as UTC; try each
        // offset in force near there.
        let window: Int64 = 30 * 3_600_000
        var offsetsNear: [Int32] = []
        var seg = segment(containing: wall - window)
        while true {
            if !offsetsNear.contains(seg.offset) { offsetsNear.append(seg.offset) }
            guard let end = seg.end, end <= wall + window else { break }
            seg = segment(containing: end)
        }
        var result: [Instant] = []
        for o in offsetsNear {
            let t = wall - Int64(o) * 1000
            if segment(containing: t).offset == o, !result.contains(Instant(unixMillis: t)) { result.append(Instant(unixMillis: t)) }
        }
        return result.sorted()
    }

    // MARK: - Segments

    /// A stretch of time with one offset: `[start, end)` in unix milliseconds (`nil` = unbounded).
    struct Segment {
        var start: Int64?
        var end: Int64?
        var offset: Int32
        var previousOffset: Int32?
        /// The highest wall reading (ms) shown before `start`, exclusive (`Int64.min` if none).
        var highWaterBefore: Int64
    }

    /// The segment holding instant `t` (unix milliseconds).
    func segment(containing t: Int64) -> Segment {
        let ts = floorDiv(t, 1000)
        if ts >= dynamicFrom, let footer {
            return dynamicSegment(containing: ts, footer)
        }
        // Number of table transitions at or before ts.
        var lo = 0
        var hi = times.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if times[mid] <= ts { lo = mid + 1 } else { hi = mid }
        }
        let k = lo - 1  // index of the transition that starts the segment, or -1
        var end: Int64? = k + 1 < times.count ? times[k + 1] * 1000 : nil
        if end == nil, let footer, let next = dynamicTransitions(after: dynamicFrom - 1, footer).first {
            end = next.at * 1000
        }
        guard k >= 0 else {
            return Segment(start: nil, end: end, offset: initialOffset, previousOffset: nil, highWaterBefore: Int64.min)
        }
        return Segment(
            start: times[k] * 1000, end: end, offset: offsets[k],
            previousOffset: k > 0 ? offsets[k - 1] : initialOffset, highWaterBefore: highWater[k] * 1000)
    }

    /// Footer transitions `>= dynamicFrom` and `> after`, in order, from the few years around.
    private func dynamicTransitions(after: Int64, _ footer: PosixTZ) -> [(at: Int64, before: Int, after: Int)] {
        let y = Self.year(ofUnixSeconds: max(after, dynamicFrom))
        var list: [(at: Int64, before: Int, after: Int)] = []
        for year in (y - 1)...(y + 1) {
            for tr in footer.transitions(year: year) where tr.at > after && tr.at >= dynamicFrom { list.append(tr) }
        }
        return list
    }

    private func dynamicSegment(containing ts: Int64, _ footer: PosixTZ) -> Segment {
        let y = Self.year(ofUnixSeconds: ts)
        var all: [(at: Int64, before: Int, after: Int)] = []
        for year in (y - 1)...(y + 1) { all += footer.transitions(year: year) }
        let lastTable = times.last.map { ($0, offsets[offsets.count - 1], highWater[highWater.count - 1]) }
        var start: (at: Int64, before: Int, after: Int)?
        var previousStart: (at: Int64, before: Int, after: Int)?
        var end: Int64?
        for tr in all where tr.at >= dynamicFrom {
            if tr.at <= ts {
                previousStart = start
                start = tr
            } else if end == nil {
                end = tr.at * 1000
            }
        }
        if let start {
            var high = start.at + Int64(start.before)
            if let p = previousStart { high = max(high, p.at + Int64(p.before)) } else if let l = lastTable { high = max(high, l.2) }
            return Segment(start: start.at * 1000, end: end, offset: Int32(start.after), previousOffset: Int32(start.before), highWaterBefore: high * 1000)
        }
        // Between the last table entry and the first computed transition.
        guard let l = lastTable else {
            return Segment(start: nil, end: end, offset: initialOffset, previousOffset: nil, highWaterBefore: Int64.min)
        }
        return Segment(
            start: l.0 * 1000, end: end, offset: l.1, previousOffset: offsets.count > 1 ? offsets[offsets.count - 2] : initialOffset,
            highWaterBefore: l.2 * 1000)
    }
}

/// A zone that cannot be found or read.
public struct TimeZoneError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The zone name as given.
    public var name: String
    public var message: String

    public init(name: String, message: String) {
        self.name = name
        self.message = message
    }

    public var description: String { "time zone '\(name)': \(message)" }
}

/// Where time zone rules come from: the system's tz database in production, fixtures in tests.
public protocol TimeZoneProvider: Sendable {
    /// The rules of the zone `name` (IANA, e.g. `Europe/Berlin`), or of the system zone when
    /// `name` is `nil`.
    /// - Throws: `TimeZoneError` for an unknown or unreadable zone.
    func rules(named name: String?) throws -> TimeZoneRules
}
