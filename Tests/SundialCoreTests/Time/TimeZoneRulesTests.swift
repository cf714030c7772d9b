import Foundation
import SundialTesting
import Testing

@testable import SundialCore

@Suite(.offPool)
struct TimeZoneRulesTests {
    // MARK: - POSIX TZ footer rules

    @Test(
        arguments: [
            ("EST5EDT,M3.2.0,M11.1.0", -18_000, -14_400),
            ("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", 37_800, 39_600),
            ("IST-1GMT0,M10.5.0,M3.5.0/1", 3600, 0),
            ("<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45", 45_900, 49_500),
            ("<-03>3<-02>,M3.5.0/-2,M10.5.0/-1", -10_800, -7200),
            ("<-04>4<-03>,M9.1.6/24,M4.1.6/24", -14_400, -10_800),
            ("CET-1CEST,M3.5.0,M10.5.0/3", 3600, 7200),
            ("AAA3BBB,J60/0,J300", -10_800, -7200),
            ("AAA3BBB,59,300/26", -10_800, -7200),
            ("PST8PDT", -28_800, -25_200),
        ] as [(String, Int, Int)])
    func posixOffsets(_ text: String, _ std: Int, _ dst: Int) throws {
        let p = try PosixTZ(text)
        #expect(p.standardOffset == std)
        #expect(p.daylight?.offset == dst)
    }

    @Test(arguments: ["<+0545>-5:45", "UTC0", "<-03>3", "GMT0"])
    func posixWithoutDST(_ text: String) throws {
        let p = try PosixTZ(text)
        #expect(p.daylight == nil)
        #expect(p.transitions(year: 2026).isEmpty)
    }

    @Test(arguments: [
        "", "E5", "EST", "EST5EDT,M3.2.0", "EST5EDT,M13.2.0,M11.1.0", "EST5EDT,M3.6.0,M11.1.0",
        "EST5EDT,J0,J300", "EST5EDT,M3.2.0/200,M11.1.0", "<EST5", "EST99", "EST5EDT,M3.2.0,M11.1.0x",
    ])
    func posixErrors(_ text: String) {
        #expect(throws: PosixTZ.ParseError.self) { try PosixTZ(text) }
    }

    @Test func posixTransitionInstants() throws {
        // New York 2026: 2026-03-08T07:00Z and 2026-11-01T06:00Z.
        let ny = try PosixTZ("EST5EDT,M3.2.0,M11.1.0").transitions(year: 2026)
        #expect(ny.map(\.at) == [try instant("2026-03-08T07:00:00Z").unixSeconds, try instant("2026-11-01T06:00:00Z").unixSeconds])
        // Southern hemisphere: the end comes first in the calendar year.
        let lh = try PosixTZ("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0").transitions(year: 2026)
        #expect(lh.map(\.at) == [try instant("2026-04-04T15:00:00Z").unixSeconds, try instant("2026-10-03T15:30:00Z").unixSeconds])
        #expect(lh.map(\.after) == [37_800, 39_600])
        // Santiago's "24:00 on the first Saturday" is the Sunday's midnight.
        let scl = try PosixTZ("<-04>4<-03>,M9.1.6/24,M4.1.6/24").transitions(year: 2026)
        #expect(scl.map(\.at) == [try instant("2026-04-05T03:00:00Z").unixSeconds, try instant("2026-09-06T04:00:00Z").unixSeconds])
        // Julian days: J60 is March 1 in every year; 59 (zero-based) is Feb 29 in a leap year.
        let j = try PosixTZ("AAA3BBB,J60/0,59/0").transitions(year: 2028)
        #expect(j.map(\.at).sorted() == [try instant("2028-02-29T02:00:00Z").unixSeconds, try instant("2028-03-01T03:00:00Z").unixSeconds])
    }

    @Test func rulesFromPosixStringAlone() throws {
        let z = try TimeZoneRules(name: "EST5EDT", posixTZ: "EST5EDT,M3.2.0,M11.1.0")
        #expect(z.utcOffset(at: try instant("2026-07-01T00:00:00Z")) == -14_400)
        #expect(z.utcOffset(at: try instant("2026-01-01T00:00:00Z")) == -18_000)
        #expect(z.utcOffset(at: try instant("2500-07-01T00:00:00Z")) == -14_400)
        #expect(z.utcOffset(at: try instant("1900-07-01T00:00:00Z")) == -14_400)
        #expect(throws: TimeZoneError.self) { try TimeZoneRules(name: "x", posixTZ: "nonsense") }
    }

    // MARK: - TZif files

    @Test func systemFileMatchesKnownOffsets() throws {
        let z = try TestZones.zone("America/New_York")
        #expect(z.utcOffset(at: try instant("2026-03-08T06:59:59Z")) == -18_000)
        #expect(z.utcOffset(at: try instant("2026-03-08T07:00:00Z")) == -14_400)
        #expect(z.utcOffset(at: try instant("1883-11-18T16:59:59Z")) == -17_762)  // LMT
        #expect(z.utcOffset(at: try instant("2400-07-01T00:00:00Z")) == -14_400)  // footer, computed
        #expect(z.description == "America/New_York")
        let k = try TestZones.zone("Asia/Kathmandu")
        #expect(k.utcOffset(at: try instant("2026-01-01T00:00:00Z")) == 20_700)
        #expect(TimeZoneRules.utc.utcOffset(at: Instant(unixMillis: 0)) == 0)
    }

    @Test func wallTimesMapToZeroOneOrTwoInstants() throws {
        let z = try TestZones.zone("America/New_York")
        #expect(z.instants(forWall: try wall("2026-03-08T02:30:00")).isEmpty)
        #expect(z.instants(forWall: try wall("2026-03-08T03:00:00")) == [try instant("2026-03-08T03:00:00-04:00")])
        #expect(z.instants(forWall: try wall("2026-11-01T01:30:00")) == [try instant("2026-11-01T01:30:00-04:00"), try instant("2026-11-01T01:30:00-05:00")])
        #expect(z.instants(forWall: try wall("2026-07-01T12:00:00")) == [try instant("2026-07-01T12:00:00-04:00")])
        let lh = try TestZones.zone("Australia/Lord_Howe")
        #expect(lh.instants(forWall: try wall("2026-04-05T01:45:00")).count == 2)
        #expect(lh.instants(forWall: try wall("2026-10-04T02:15:00")).isEmpty)
        #expect(z.localTime(at: try instant("2026-11-01T06:30:00Z")).description == "2026-11-01T01:30:00")
    }

    /// Builds a TZif file: `version` 0 for v1, else '2'/'3'; 64-bit data only for v2+.
    static func tzif(version: UInt8, transitions: [(Int64, UInt8)], types: [Int32], footer: String?) -> [UInt8] {
        func be32(_ v: Int32) -> [UInt8] { withUnsafeBytes(of: UInt32(bitPattern: v).bigEndian, Array.init) }
        func be64(_ v: Int64) -> [UInt8] { withUnsafeBytes(of: UInt64(bitPattern: v).bigEndian, Array.init) }
        func block(_ wide: Bool) -> [UInt8] {
            var b: [UInt8] = Array("TZif".utf8) + [version] + [UInt8](repeating: 0, count: 15)
            for c in [0, 0, 0, transitions.count, types.count, 4] { b += be32(Int32(c)) }
            for (t, _) in transitions { b += wide ? be64(t) : be32(Int32(truncatingIfNeeded: t)) }
            for (_, i) in transitions { b.append(i) }
            for off in types { b += be32(off) + [0, 0] }
            b += Array("ABC\0".utf8)
            return b
        }
        if version == 0 { return block(false) }
        return block(false) + block(true) + Array("\n\(footer ?? "")\n".utf8)
    }

    @Test func syntheticFiles() throws {
        // v1: two transitions, no footer: the last offset holds forever.
        let v1 = Self.tzif(version: 0, transitions: [(0, 1), (1_000_000, 0)], types: [3600, 7200], footer: nil)
        let z1 = try TimeZoneRules(name: "v1", tzif: v1)
        #expect(z1.utcOffset(at: Instant(unixSeconds: -5)) == 3600)
        #expect(z1.utcOffset(at: Instant(unixSeconds: 5)) == 7200)
        #expect(z1.utcOffset(at: Instant(unixSeconds: 2_000_000_000)) == 3600)
        // v2 with no transitions and only a footer rule: the rule governs all time.
        let v2 = Self.tzif(version: 0x32, transitions: [], types: [-18_000], footer: "EST5EDT,M3.2.0,M11.1.0")
        let z2 = try TimeZoneRules(name: "v2", tzif: v2)
        #expect(z2.utcOffset(at: try instant("2026-07-01T00:00:00Z")) == -14_400)
        #expect(z2.utcOffset(at: try instant("3026-07-01T00:00:00Z")) == -14_400)
        #expect(z2.utcOffset(at: try instant("3026-01-01T00:00:00Z")) == -18_000)
        // v3 with a big-bang transition and an empty footer.
        let v3 = Self.tzif(version: 0x33, transitions: [(-(1 << 59), 0), (100, 1)], types: [0, 19_800], footer: "")
        let z3 = try TimeZoneRules(name: "v3", tzif: v3)
        #expect(z3.utcOffset(at: Instant(unixSeconds: -1 << 40)) == 0)
        #expect(z3.utcOffset(at: Instant(unixSeconds: 101)) == 19_800)
    }

    @Test func malformedFilesThrow() throws {
        let good = Array(FileManager.default.contents(atPath: "/usr/share/zoneinfo/Europe/Berlin")!)
        #expect(throws: TimeZoneError.self) { try TimeZoneRules(name: "x", tzif: []) }
        #expect(throws: TimeZoneError.self) { try TimeZoneRules(name: "x", tzif: Array("not a tz file at all, just text".utf8)) }
        for cut in [4, 20, 44, 45, 100, good.count / 2, good.count - 2] {
            #expect(throws: TimeZoneError.self, "cut at \(cut)") { try TimeZoneRules(name: "x", tzif: Array(good[0..<cut])) }
        }
        let badFooter = Self.tzif(version: 0x32, transitions: [], types: [0], footer: "nonsense,,,")
        #expect(throws: TimeZoneError.self) { try TimeZoneRules(name: "x", tzif: badFooter) }
        let badType = Self.tzif(version: 0, transitions: [(0, 5)], types: [0], footer: nil)
        #expect(throws: TimeZoneError.self) { try TimeZoneRules(name: "x", tzif: badType) }
        let unsorted = Self.tzif(version: 0, transitions: [(10, 0), (5, 0)], types: [0], footer: nil)
        #expect(throws: TimeZoneError.self) { try TimeZoneRules(name: "x", tzif: unsorted) }
    }

    /// Random corruption of real files never traps: it parses to something or throws.
    @Test func corruptedFilesNeverCrash() throws {
        var rng = SeededRandom(seed: 99)
        for name in ["Europe/Berlin", "America/Santiago", "Australia/Lord_Howe"] {
            let good = Array(FileManager.default.contents(atPath: "/usr/share/zoneinfo/" + name)!)
            for _ in 0..<300 {
                var bytes = good
                for _ in 0..<(1 + Int(rng.nextUInt64() % 8)) {
                    bytes[Int(rng.nextUInt64() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.nextUInt64())
                }
                if let z = try? TimeZoneRules(name: name, tzif: bytes) {
                    _ = z.utcOffset(at: Instant(unixSeconds: Int64(rng.nextUInt64() % 4_000_000_000)))
                    if let s = try? CronSchedule("30 2 * * *", zone: z) { _ = s.next(after: Instant(unixMillis: 1_800_000_000_000)) }
                }
            }
        }
    }
}

extension TimeZoneRulesTests {
    @Test func equalityComparesRules() throws {
        let a = try TestZones.zone("Europe/Berlin")
        let bytes = Array(FileManager.default.contents(atPath: "/usr/share/zoneinfo/Europe/Berlin")!)
        #expect(a == (try TimeZoneRules(name: "Europe/Berlin", tzif: bytes)))
        #expect(a != (try TimeZoneRules(name: "Europe/Paris", tzif: bytes)))
        #expect(a != (try TestZones.zone("Europe/London")))
        #expect(TimeZoneRules.utc == TimeZoneRules(name: "UTC", fixedOffset: 0))
    }
}
