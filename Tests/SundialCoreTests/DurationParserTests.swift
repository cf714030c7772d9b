import SundialCore
import Testing

/// The duration grammar (`w d h m s ms`, largest first, each once) and its errors, which
/// reach users as diagnostics (`timeout: invalid duration …`).
struct DurationParserTests {
    @Test(
        arguments: [
            ("500ms", 500), ("30s", 30_000), ("5m", 300_000), ("1h30m", 5_400_000), ("1d", 86_400_000),
            ("2w", 1_209_600_000), ("1w2d3h4m5s6ms", 788_645_006), ("0s", 0), ("0ms", 0), ("007s", 7_000),
            ("1m1ms", 60_001), ("36600d", DurationParser.maximumMilliseconds),
        ] as [(String, Int64)])
    func parses(text: String, milliseconds: Int64) throws {
        #expect(try DurationParser.parseMilliseconds(text) == milliseconds)
    }

    @Test(arguments: [
        ("", "empty duration; write e.g. 30s, 5m or 1h30m"),
        ("-5s", "duration '-5s' is negative; durations must be positive"),
        ("s", "invalid duration 's': expected a number at position 1; write e.g. 30s, 5m or 1h30m"),
        ("5", "invalid duration '5': no unit; use ms, s, m, h, d or w"),
        ("5x", "invalid duration '5x': unknown unit 'x'; use ms, s, m, h, d or w"),
        ("5mss", "invalid duration '5mss': unknown unit 'mss'; use ms, s, m, h, d or w"),
        ("5sm", "invalid duration '5sm': unknown unit 'sm'; use ms, s, m, h, d or w"),
        ("5M", "invalid duration '5M': no unit; use ms, s, m, h, d or w"),
        ("5s5m", "invalid duration '5s5m': units must go from largest to smallest, each once (e.g. 1h30m)"),
        ("5s5s", "invalid duration '5s5s': units must go from largest to smallest, each once (e.g. 1h30m)"),
        ("1s ", "invalid duration '1s ': expected a number at position 3; write e.g. 30s, 5m or 1h30m"),
        ("5é", "invalid duration '5é': no unit; use ms, s, m, h, d or w"),
        ("36601d", "duration '36601d' is too large (at most 100 years)"),
        ("36600d1ms", "duration '36600d1ms' is too large (at most 100 years)"),
        ("99999999999999999999s", "duration '99999999999999999999s' is too large (at most 100 years)"),
        ("36600d1d", "invalid duration '36600d1d': units must go from largest to smallest, each once (e.g. 1h30m)"),
        ("1537228672809129301w", "duration '1537228672809129301w' is too large (at most 100 years)"),
    ])
    func refuses(text: String, message: String) {
        do {
            let ms = try DurationParser.parseMilliseconds(text)
            Issue.record("parsed `\(text)` as \(ms) ms")
        } catch {
            #expect(error.message == message)
        }
    }
}
