import Foundation
import SundialCore
import SundialTesting
import Testing

@testable import SundialRuntime

/// The zoneinfo reader against glibc, and the provider's file handling.
@Suite(.serialized, .offPool)
struct SystemTimeZonesTests {
    static let zones = [
        "America/New_York", "Europe/Berlin", "Europe/Dublin", "Australia/Lord_Howe", "Asia/Kathmandu",
        "Pacific/Chatham", "America/Santiago", "Antarctica/Troll", "Africa/Casablanca", "Africa/Cairo",
        "America/Nuuk", "Asia/Tehran", "America/St_Johns", "Pacific/Apia", "Australia/Adelaide",
        "America/Sao_Paulo", "Europe/Moscow", "Asia/Gaza",
    ]

    /// glibc's offset for `seconds` in zone `name` (TZ set, tzset, localtime_r).
    static func glibcOffset(_ name: String, _ seconds: Int64) -> Int {
        var t = time_t(seconds)
        var result = tm()
        localtime_r(&t, &result)
        return result.tm_gmtoff
    }

    @Test(arguments: zones)
    func agreesWithGlibcLocaltime(_ name: String) throws {
        let rules = try SystemTimeZones().rules(named: name)
        let saved = getenv("TZ").map { String(cString: $0) }
        setenv("TZ", name, 1)
        tzset()
        defer {
            if let saved { setenv("TZ", saved, 1) } else { unsetenv("TZ") }
            tzset()
        }
        var rng = SeededRandom(seed: UInt64(truncatingIfNeeded: name.hashValue & 0x7fff_ffff) | 1)
        let from: Int64 = 0
        let to: Int64 = 2_208_988_800  // 1970 ... 2040
        var mismatches: [String] = []
        var instants = (0..<2000).map { _ in from + Int64(rng.nextUInt64() % UInt64(to - from)) }
        // Every transition in 2024–2030, and a second either side, where mistakes would show.
        var t = Instant(unixSeconds: 1_704_067_200)
        while let next = Self.nextChange(rules, after: t), next.unixSeconds < 1_924_992_000 {
            instants += [next.unixSeconds - 1, next.unixSeconds, next.unixSeconds + 1]
            t = next
        }
        // Far-future instants exercise the footer rule beyond the tabulated years.
        instants += (0..<200).map { _ in 4_102_444_800 + Int64(rng.nextUInt64() % 12_000_000_000) }
        for s in instants {
            let ours = rules.utcOffset(at: Instant(unixSeconds: s))
            let theirs = Self.glibcOffset(name, s)
            if ours != theirs { mismatches.append("\(Instant(unixSeconds: s)): ours \(ours), glibc \(theirs)") }
        }
        #expect(mismatches.isEmpty, "\(name): \(mismatches.prefix(5))")
    }

    /// The next offset change after `t`, found by the schedule engine's own view of the zone.
    static func nextChange(_ rules: TimeZoneRules, after t: Instant) -> Instant? {
        var lo = t.unixSeconds
        var hi = t.unixSeconds + 400 * 86_400
        let o = rules.utcOffset(at: t)
        guard rules.utcOffset(at: Instant(unixSeconds: hi)) != o || hi - lo > 0 else { return nil }
        // Step a day at a time to find a change, then bisect.
        var probe = lo
        while probe < hi, rules.utcOffset(at: Instant(unixSeconds: probe)) == o { probe += 86_400 }
        guard probe < hi else { return nil }
        hi = probe
        lo = max(lo, probe - 86_400)
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if rules.utcOffset(at: Instant(unixSeconds: mid)) == o { lo = mid } else { hi = mid }
        }
        return Instant(unixSeconds: hi)
    }

    // MARK: - Names, files, reload

    @Test(arguments: ["../etc/passwd", "/etc/localtime", "Europe/../UTC", "", "Europe//Berlin", "./UTC", "Europe/Berlin\n"])
    func rejectsUnsafeNames(_ name: String) {
        #expect(throws: TimeZoneError.self) { try SystemTimeZones().rules(named: name) }
    }

    @Test func unknownZone() {
        do {
            _ = try SystemTimeZones().rules(named: "Europe/Berln")
            Issue.record("loaded a zone that does not exist")
        } catch let error as TimeZoneError {
            #expect(error.name == "Europe/Berln")
            #expect(error.description.contains("unknown time zone"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func directoryIsNotAZone() {
        #expect(throws: TimeZoneError.self) { try SystemTimeZones().rules(named: "Europe") }
    }

    /// A temporary zone directory with a few files copied in.
    static func tempZoneDir() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sundial-tz-\(UInt64.random(in: 0...UInt64.max))").path
        try FileManager.default.createDirectory(atPath: dir + "/Test", withIntermediateDirectories: true)
        for z in ["Asia/Tokyo", "Europe/Berlin", "UTC"] {
            try FileManager.default.createDirectory(atPath: dir + "/" + (z as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: "/usr/share/zoneinfo/" + z, toPath: dir + "/" + z)
        }
        return dir
    }

    @Test func reloadRereadsChangedFiles() throws {
        let dir = try Self.tempZoneDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: dir + "/Asia/Tokyo", toPath: dir + "/Test/Zone")
        let zones = SystemTimeZones(directory: dir, tz: .some(nil))
        let t = Instant(unixSeconds: 1_800_000_000)
        #expect(try zones.rules(named: "Test/Zone").utcOffset(at: t) == 32_400)
        // A tzdata update replaces the file; the cached rules stay until reload.
        try FileManager.default.removeItem(atPath: dir + "/Test/Zone")
        try FileManager.default.copyItem(atPath: dir + "/Europe/Berlin", toPath: dir + "/Test/Zone")
        #expect(try zones.rules(named: "Test/Zone").utcOffset(at: t) == 32_400)
        zones.reload()
        #expect(try zones.rules(named: "Test/Zone").utcOffset(at: t) == 3600)
        #expect(zones.directory == dir)
    }

    @Test func systemZoneFromTZ() throws {
        let dir = try Self.tempZoneDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try SystemTimeZones(directory: dir, tz: "Asia/Tokyo").rules(named: nil).name == "Asia/Tokyo")
        #expect(try SystemTimeZones(directory: dir, tz: ":Europe/Berlin").rules(named: nil).name == "Europe/Berlin")
        #expect(try SystemTimeZones(directory: dir, tz: dir + "/Asia/Tokyo").rules(named: nil).utcOffset(at: Instant(unixSeconds: 0)) == 32_400)
        let posix = try SystemTimeZones(directory: dir, tz: "ABC3").rules(named: nil)
        #expect(posix.utcOffset(at: Instant(unixSeconds: 0)) == -10_800)
        #expect(try SystemTimeZones(directory: dir, tz: "Not/AZone").rules(named: nil).name == "UTC")
    }

    @Test func systemZoneFromLocaltimeLink() throws {
        let dir = try Self.tempZoneDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let link = dir + "/localtime"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: dir + "/Asia/Tokyo")
        // The link's target names the zone only if it runs through a "zoneinfo/" directory;
        // otherwise the file itself is read.
        let viaFile = try SystemTimeZones(directory: dir, tz: .some(nil), localtime: link).rules(named: nil)
        #expect(viaFile.utcOffset(at: Instant(unixSeconds: 0)) == 32_400)
        let real = try SystemTimeZones(tz: .some(nil), localtime: "/etc/localtime").rules(named: nil)
        if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/etc/localtime"), target.contains("zoneinfo/") {
            #expect(target.hasSuffix(real.name))
        }
        let missing = try SystemTimeZones(directory: dir, tz: .some(nil), localtime: dir + "/nope").rules(named: nil)
        #expect(missing.name == "UTC")
        #expect(missing.utcOffset(at: Instant(unixSeconds: 0)) == 0)
    }

    @Test func zoneNameFromPath() {
        #expect(SystemTimeZones.zoneName(fromPath: "/usr/share/zoneinfo/Europe/Berlin") == "Europe/Berlin")
        #expect(SystemTimeZones.zoneName(fromPath: "../usr/share/zoneinfo/posix/Asia/Tokyo") == "Asia/Tokyo")
        #expect(SystemTimeZones.zoneName(fromPath: "/etc/tz/Berlin") == nil)
    }
}
