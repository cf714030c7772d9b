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

    if let (instant, offset) = try? RFC3339.parse(text) {
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
