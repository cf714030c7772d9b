import Foundation
import SundialCore
import SundialTesting
import Testing

/// Inputs on which `fuzz/run` found a crash, kept in `Fixtures/fuzz/TARGET/` and fed to the
/// parsers that target exercises: each must now give a value or an error, never trap.
@Suite(.offPool) struct FuzzRegressionTests {
    /// The saved inputs of one fuzz target, by file name.
    static func inputs(_ target: String) throws -> [(name: String, bytes: [UInt8])] {
        let dir = try #require(Bundle.module.resourceURL).appendingPathComponent("Fixtures/fuzz/\(target)")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        return try names.map { ($0, Array(try Data(contentsOf: dir.appendingPathComponent($0)))) }
    }

    @Test func durationTargetInputs() throws {
        let inputs = try Self.inputs("duration")
        #expect(!inputs.isEmpty)
        for (_, bytes) in inputs {
            let text = String(decoding: bytes, as: UTF8.self)
            _ = try? DurationParser.parseMilliseconds(text)
            _ = try? RFC3339.parse(text)
        }
    }

    /// More than three fraction digits trapped (`4..<3`) instead of being truncated to
    /// milliseconds; an `at:` time with microseconds brought the loader down.
    @Test func fractionDigitsPastMillisecondsAreTruncated() throws {
        let micro = try RFC3339.parse("2026-07-08T02:30:00.123456Z")
        #expect(micro.instant == (try RFC3339.parse("2026-07-08T02:30:00.123Z")).instant)
        #expect((try RFC3339.parse("2026-07-08T02:30:00.5+02:00")).instant.unixMillis % 1000 == 500)
        #expect(throws: RFC3339.ParseError.self) { _ = try RFC3339.parse("2026-07-08T02:30:00.12320") }
    }
}
