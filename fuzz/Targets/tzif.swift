import SundialCore

/// Fuzzes the time-zone readers: the TZif parser (RFC 8536; the system's /usr/share/zoneinfo
/// files, which a broken or hostile tzdata package could corrupt) when the input starts with
/// `TZif`, and POSIX TZ strings (the `TZ=` form and every TZif footer) otherwise.
/// For a zone that loads, offsets and wall-time lookups are exercised over years 1800-2500,
/// checking that every instant found for a wall time really shows that wall time.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let zone: TimeZoneRules
    if bytes.starts(with: Array("TZif".utf8)) {
        guard let z = try? TimeZoneRules(name: "Fuzz/Zone", tzif: bytes) else { return 0 }
        zone = z
    } else {
        guard let z = try? TimeZoneRules(name: "Fuzz/Zone", posixTZ: String(decoding: bytes, as: UTF8.self)) else { return 0 }
        zone = z
    }
    for year in [1800, 1970, 2026, 2037, 2100, 2101, 2500] {
        for month in [1, 3, 4, 10, 11] {
            let wall = LocalDateTime(year: year, month: month, day: 8, hour: 2, minute: 30).wallMillis
            let instant = Instant(unixMillis: wall)
            let offset = zone.utcOffset(at: instant)
            guard abs(offset) <= 26 * 3600 else { fatalError("offset \(offset) s at \(instant)") }
            _ = zone.localTime(at: instant)
            for found in zone.instants(forWall: wall) {
                guard zone.localTime(at: found).wallMillis == wall else {
                    fatalError("instants(forWall: \(LocalDateTime(wallMillis: wall))) gave \(found), which shows \(zone.localTime(at: found))")
                }
            }
        }
    }
    return 0
}
