import Foundation
import OrderedCollections
import SundialCore
import SundialTesting
import Testing

@testable import SundialConfig

@Suite("The job schema", .offPool)
struct JobSchemaTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func embeddedCopyEqualsTheSchemaFile() throws {
        let file = try String(contentsOf: Self.root.appendingPathComponent("schemas/sundial-jobs.v1.schema.json"), encoding: .utf8)
        #expect(
            JobSchema.text + "\n" == file || JobSchema.text == file,
            "schemas/sundial-jobs.v1.schema.json changed: run scripts/embed-schema.sh")
    }

    @Test func everyPropertyHasADescription() throws {
        let doc = try JSONParser.parse(JobSchema.text)
        guard case let .object(defs) = doc["$defs"] else {
            Issue.record("no $defs")
            return
        }
        var missing: [String] = []
        for (name, def) in defs where name.hasPrefix("job.") {
            if def["description"] == nil { missing.append(name) }
            if case let .object(props) = def["properties"] {
                for (p, v) in props where v["description"] == nil { missing.append("\(name).\(p)") }
            }
        }
        #expect(missing.isEmpty, "without description: \(missing)")
        #expect(defs.count > 30)
    }

    @Test func defaultsAcceptEveryJobKeyButTheJobOnlyOnes() throws {
        let doc = try JSONParser.parse(JobSchema.text)
        guard case let .object(jobProps) = doc["$defs"]?["job"]?["properties"],
            case let .object(defaultProps) = doc["$defs"]?["defaults"]?["properties"]
        else {
            Issue.record("schema shape changed")
            return
        }
        #expect(Set(jobProps.keys).subtracting(defaultProps.keys) == JobSchema.jobOnlyKeys)
    }

    @Test func scheduleKeysAreExclusive() {
        let r = ConfigLoader().load([.init(path: "x.yaml", bytes: Array("version: 1\njobs:\n  a: { every: 5m, schedule: '* * * * *', shell: x }\n".utf8))])
        #expect(
            r.diagnostics.map(\.description) == [
                "x.yaml:3:3: error: job `a` has more than one of `schedule`, `every` and `at`; keep one; a job with several schedules is two jobs"
            ])
    }

    @Test func jobOnlyKeysInDefaultsAreExplained() {
        let r = ConfigLoader().load([.init(path: "x.yaml", bytes: Array("version: 1\ndefaults:\n  schedule: '@daily'\njobs:\n  a: { shell: x }\n".utf8))])
        #expect(r.diagnostics.map(\.description) == ["x.yaml:3:3: error: `schedule` cannot be set in `defaults`; set it on each job"])
    }

    @Test func topLevelListAndMissingKeys() {
        let list = ConfigLoader().load([.init(path: "x.yaml", bytes: Array("- a\n- b\n".utf8))])
        #expect(list.diagnostics.map(\.message) == ["a job file must be a map with `version:` and `jobs:`, found a list"])
        let empty = ConfigLoader().load([.init(path: "x.yaml", bytes: Array("defaults: {}\n".utf8))])
        #expect(Set(empty.diagnostics.map(\.message)) == ["missing `version: 1` at the top of the file", "missing `jobs:`, the map of jobs by id"])
    }

    @Test func nothingToRunAndMergeKeys() {
        let r = ConfigLoader().load([
            .init(path: "x.yaml", bytes: Array("version: 1\njobs:\n  a: { every: 5m }\n  b:\n    <<: {shell: x}\n    shell: y\n".utf8))
        ])
        let m = r.diagnostics.map(\.description)
        #expect(m.contains("x.yaml:3:3: error: job `a` has nothing to run; add `command:` (a list: program and arguments) or `shell:` (a string)"))
        #expect(m.contains("x.yaml:5:5: error: YAML merge keys (`<<`) are not supported; use `defaults:` for shared values"))
    }

    @Test func negativeDurationAndBadNeedsEntry() {
        let r = ConfigLoader().load([
            .init(path: "x.yaml", bytes: Array("version: 1\njobs:\n  a: { every: -5s, shell: x }\n  b: { needs: [A], shell: x, offset: 5m }\n".utf8))
        ])
        let m = r.diagnostics.map(\.description)
        #expect(m.contains("x.yaml:3:15: error: `every`: duration `-5s` is negative; durations must be positive"))
        #expect(m.contains { $0.hasPrefix("x.yaml:4:16: error: invalid job id `A`") })
        #expect(m.contains { $0.hasPrefix("x.yaml:4:30: error: `offset` needs `every`") })
    }
}
