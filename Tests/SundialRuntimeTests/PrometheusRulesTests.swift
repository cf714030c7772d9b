import Foundation
import OrderedCollections
import SundialCore
import SundialTesting
import Testing

@testable import SundialRuntime

/// The shipped alert rules (packaging/prometheus) must name series and labels the exporter
/// really writes: promtool tests the rules against hand-written series, and this checks those
/// series against the real exposition, so a renamed metric or label cannot pass both.
@Suite(.offPool) struct PrometheusRulesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// Labels Prometheus adds to every scraped series (target labels), not the exporter.
    static let targetLabels: Set<String> = ["instance", "job"]

    /// A selector in rule or test text: `sundial_name` and the label names of its `{...}`.
    struct Selector: Hashable {
        var name: String
        var labels: Set<String>
    }

    static func selectors(in text: String) -> [Selector] {
        var out: [Selector] = []
        let chars = Array(text.unicodeScalars)
        var i = 0
        func isNameChar(_ c: Unicode.Scalar) -> Bool { c == "_" || ("a"..."z").contains(c) || ("0"..."9").contains(c) }
        while i < chars.count {
            guard chars.count - i >= 8, String(String.UnicodeScalarView(chars[i..<i + 8])) == "sundial_",
                i == 0 || !isNameChar(chars[i - 1])
            else {
                i += 1
                continue
            }
            var j = i
            while j < chars.count, isNameChar(chars[j]) { j += 1 }
            let name = String(String.UnicodeScalarView(chars[i..<j]))
            var labels: Set<String> = []
            if j < chars.count, chars[j] == "{", let close = chars[j...].firstIndex(of: "}") {
                for part in String(String.UnicodeScalarView(chars[(j + 1)..<close])).split(separator: ",") {
                    let key = part.prefix { $0 != "=" && $0 != "!" }.trimmingCharacters(in: .whitespaces)
                    if !key.isEmpty { labels.insert(key) }
                }
                j = close
            }
            out.append(Selector(name: name, labels: labels))
            i = j
        }
        return out
    }

    /// `name → label names` of every sample in an exposition.
    static func exposed(_ text: String) -> [String: Set<String>] {
        var out: [String: Set<String>] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let name = String(line.prefix { $0 != "{" && $0 != " " })
            var labels: Set<String> = []
            if let open = line.firstIndex(of: "{"), let close = line.lastIndex(of: "}") {
                // Label values here are job ids and versions: no `,` or `=` inside quotes.
                for part in line[line.index(after: open)..<close].split(separator: ",") {
                    labels.insert(String(part.prefix { $0 != "=" }))
                }
            }
            out[name, default: []].formUnion(labels)
        }
        return out
    }

    /// The file the exporter writes after a realistic stretch: start, a load, a run that
    /// failed for good, a success, a skip, and the scheduler's plans.
    static func realExposition() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sundial-rules-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/sundial.prom"
        let exporter = try MetricsExporter(filePath: path, listen: nil, version: "1", writeInterval: .seconds(3600))
        try exporter.start()
        let t0 = Instant(unixSeconds: 1_767_225_600)
        exporter.observe(.agentStarted(.init(version: "1", pid: 1, config: [], state: "/var/lib/sundial", at: t0)))
        exporter.observe(.configLoaded(.init(revision: "r1", files: 1, jobs: 2, added: ["dump-db", "backup"], removed: [], changed: [], reason: nil, at: t0)))
        exporter.observe(.runStarted(.init(job: "dump-db", runID: RunID(rawValue: "R1"), attempt: 1, scheduledFor: t0, trigger: .schedule, pid: nil, at: t0)))
        exporter.observe(
            .runFinished(
                .init(job: "dump-db", runID: RunID(rawValue: "R1"), attempt: 1, outcome: .failure(exitCode: 1), exitCode: 1, signal: nil, durationMs: 5, at: t0)
            ))
        exporter.observe(
            .runFinished(
                .init(job: "backup", runID: RunID(rawValue: "R2"), attempt: 1, outcome: .success(exitCode: 0), exitCode: 0, signal: nil, durationMs: 5, at: t0))
        )
        exporter.observe(.runSkipped(.init(job: "backup", scheduledFor: t0, reason: .overlap, count: nil, at: t0)))
        exporter.endStep(nextFires: ["dump-db": t0 + .seconds(86_400), "backup": t0 + .seconds(3600)])
        try exporter.writeFileNow()
        exporter.stop()
        return try String(contentsOfFile: path, encoding: .utf8)
    }

    @Test(arguments: ["sundial-rules.yml", "sundial-rules.test.yml"])
    func everySeriesTheRulesUseIsExported(file: String) throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("packaging/prometheus/" + file), encoding: .utf8)
        let exposed = Self.exposed(try Self.realExposition())
        let used = Set(Self.selectors(in: text))
        #expect(used.count >= 4, "too few sundial_ series found in \(file): \(used)")
        for s in used {
            let labels = try #require(exposed[s.name], "\(file) uses \(s.name), which the exporter does not write")
            for l in s.labels.subtracting(Self.targetLabels) {
                #expect(labels.contains(l), "\(file): \(s.name) has no label \(l) (it has \(labels.sorted()))")
            }
        }
        // Templates name only labels the alerting series carry.
        for line in text.split(separator: "\n") where line.contains("$labels.") {
            for part in line.split(separator: "$labels.").dropFirst() {
                let label = String(part.prefix { $0.isLetter || $0 == "_" })
                #expect(label == "job_name" || Self.targetLabels.contains(label), "\(file): template uses $labels.\(label)")
            }
        }
    }

    @Test func noExportedSeriesCarriesTheReservedJobLabel() throws {
        let exposed = Self.exposed(try Self.realExposition())
        #expect(exposed["sundial_runs_finished_total"]?.contains("job_name") == true)
        for (name, labels) in exposed { #expect(!labels.contains("job"), "\(name) has a job label") }
    }
}
