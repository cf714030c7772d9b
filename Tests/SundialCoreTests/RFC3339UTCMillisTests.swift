import SundialCore
import SundialTesting
import Testing

@Suite("RFC 3339 UTC milliseconds", .offPool)
struct RFC3339UTCMillisTests {
    @Test("the fast formatter prints exactly what the general one does")
    func sameAsGeneral() {
        var random = SeededRandom(seed: 3)
        var samples: [Int64] = [0, -1, 1, 999, -86_400_000, 1_767_571_200_000, 253_402_300_799_999, -62_167_219_200_000]
        for _ in 0..<20_000 { samples.append(Int64(random.nextUInt64() % 253_402_300_800_000)) }
        for ms in samples {
            let i = Instant(unixMillis: ms)
            #expect(RFC3339.formatUTCMillis(i) == RFC3339.format(i, utcOffsetSeconds: 0, fractionDigits: 3), "\(ms)")
        }
        #expect(Instant(unixMillis: 1_767_571_200_123).description == "2026-01-05T00:00:00.123Z")
    }
}
