import SundialCore

/// Fuzzes the two scalar parsers every job file goes through: ``DurationParser`` (`timeout`,
/// `every`, `retry.backoff`) and ``RFC3339`` (one-shot `at:` times, `sundial next --from`).
/// Any text must parse or throw, never trap; what parses must round-trip through the
/// formatter to the same value.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)

    if let ms = try? DurationParser.parseMilliseconds(text) {
        guard ms >= 0, ms <= DurationParser.maximumMilliseconds else { fatalError("duration \(ms) ms out of range from '\(text)'") }
        let canonical = DurationParser.format(milliseconds: ms)
        guard let back = try? DurationParser.parseMilliseconds(canonical), back == ms else {
            fatalError("duration '\(text)' = \(ms) ms formats as '\(canonical)', which does not parse back")
        }
    }

    // A leap second at the very end of 9999 (`9999-12-31T23:59:60Z`) is read as the first
    // instant of year 10000, which RFC 3339's four-digit years cannot print; skip only that.
    if let (instant, offset) = try? RFC3339.parse(text), LocalDateTime(wallMillis: instant.unixMillis + Int64(offset) * 1000).year <= 9999 {
        for digits in [0, 3] {
            let formatted = RFC3339.format(instant, utcOffsetSeconds: offset, fractionDigits: digits)
            // Formatting at 0 digits drops the milliseconds; compare at the precision printed.
            let expected = digits == 0 ? Instant(unixMillis: instant.unixMillis - floorMod(instant.unixMillis, 1000)) : instant
            guard let back = try? RFC3339.parse(formatted), back.instant == expected, back.utcOffsetSeconds == offset else {
                fatalError("time '\(text)' formats as '\(formatted)', which does not parse back to the same instant")
            }
        }
        _ = RFC3339.formatUTCMillis(instant)
    }
    return 0
}

private func floorMod(_ a: Int64, _ b: Int64) -> Int64 { ((a % b) + b) % b }
