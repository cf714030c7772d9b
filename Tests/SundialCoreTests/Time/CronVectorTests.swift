import Foundation
import SundialCore
import SundialTesting
import Testing

/// Every case of the shared vectors (`Fixtures/cron-vectors.json`, copied from
/// /work/shared/testdata/cron/vectors.json) run through the engine.
@Suite(.offPool)
struct CronVectorTests {
    struct Case: Decodable, Sendable, CustomTestStringConvertible {
        var id: String
        var cron: String
        var tz: String
        var after: String
        var count: Int
        var kind: String
        var expected: [String]?
        var why: String
        var testDescription: String { "\(id) '\(cron)' \(tz): \(why)" }
    }

    struct File: Decodable {
        var cases: [Case]
    }

    static let cases: [Case] = {
        guard let url = Bundle.module.url(forResource: "cron-vectors", withExtension: "json", subdirectory: "Fixtures"),
            let data = try? Data(contentsOf: url),
            let file = try? JSONDecoder().decode(File.self, from: data)
        else { return [] }
        return file.cases
    }()

    @Test func fixtureLoads() {
        #expect(Self.cases.count >= 90)
    }

    @Test(arguments: cases)
    func vector(_ c: Case) throws {
        let zone = try TestZones.zone(c.tz)
        let after = try instant(c.after)
        switch c.kind {
        case "times":
            let schedule = try CronSchedule(c.cron, zone: zone)
            let got = schedule.next(after: after, count: c.count)
            let gotText = got.map { RFC3339.format($0, utcOffsetSeconds: zone.utcOffset(at: $0)) }
            let expected = try (c.expected ?? []).map { try RFC3339.parse($0) }
            #expect(got == expected.map(\.instant), "got \(gotText)")
            // Offsets too: the expected lines carry the zone's offset at each fire.
            #expect(got.map { zone.utcOffset(at: $0) } == expected.map(\.utcOffsetSeconds), "got \(gotText)")
        case "never":
            let e = try CronExpression(c.cron)
            #expect(e.neverFires)
            #expect(throws: CronError.self) { try CronSchedule(c.cron, zone: zone) }
            #expect(CronSchedule(expression: e, zone: zone).next(after: after) == nil)
        case "invalid":
            // Either a syntax error, or (for @reboot) an expression with no calendar times.
            do {
                let e = try CronExpression(c.cron)
                #expect(e.isReboot, "parsed but should be invalid: \(e.canonical)")
                #expect(CronSchedule(expression: e, zone: zone).next(after: after) == nil)
            } catch {
                #expect(error.column >= 1)
                #expect(!error.message.isEmpty)
            }
        default:
            Issue.record("unknown kind \(c.kind)")
        }
    }
}
