extension RFC3339 {
    /// `instant` as `YYYY-MM-DDTHH:MM:SS.mmmZ`: the same text as
    /// `format(instant, utcOffsetSeconds: 0, fractionDigits: 3)`, written into one 24-byte
    /// buffer instead of concatenated strings. Every event line prints two or three of these
    /// (`ts`, `scheduled_for`), so a simulated year formats millions of them.
    public static func formatUTCMillis(_ instant: Instant) -> String {
        let ms = instant.unixMillis
        let days = ms >= 0 ? ms / 86_400_000 : -((-ms + 86_399_999) / 86_400_000)
        let (year, month, day) = CivilTime.civilFromDays(Int(days))
        guard (0...9999).contains(year) else { return format(instant, utcOffsetSeconds: 0, fractionDigits: 3) }
        let inDay = Int(ms - days * 86_400_000)
        return String(unsafeUninitializedCapacity: 24) { buf in
            func put(_ value: Int, _ width: Int, at offset: Int) {
                var v = value
                for i in stride(from: offset + width - 1, through: offset, by: -1) {
                    buf[i] = UInt8(48 + v % 10)
                    v /= 10
                }
            }
            put(year, 4, at: 0)
            buf[4] = 45  // -
            put(month, 2, at: 5)
            buf[7] = 45
            put(day, 2, at: 8)
            buf[10] = 84  // T
            put(inDay / 3_600_000, 2, at: 11)
            buf[13] = 58  // :
            put(inDay / 60_000 % 60, 2, at: 14)
            buf[16] = 58
            put(inDay / 1000 % 60, 2, at: 17)
            buf[19] = 46  // .
            put(inDay % 1000, 3, at: 20)
            buf[23] = 90  // Z
            return 24
        }
    }
}
