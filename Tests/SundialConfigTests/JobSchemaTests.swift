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

    // MARK: - The schema compiled ahead of time (SchemaProgram+Wire.swift)

    @Test func theEmbeddedProgramIsCurrent() throws {
        let file = try String(
            contentsOf: Self.root.appendingPathComponent("Sources/SundialConfig/JobSchema+Compiled.swift"), encoding: .utf8)
        #expect(
            try JobSchema.compiledSource(of: JobSchema.text) == file,
            "the compiled job schema is stale: run scripts/embed-schema.sh")
        #expect(JobSchema.embedded() != nil, "the embedded program was not used")
        #expect(JobSchema.shared.maxJobsPerFile == 10_000)
    }

    /// Documents that reach most of the schema: every example, and each of them broken in
    /// several ways (wrong types, unknown keys, bad patterns, out-of-range numbers).
    static func sampleDocuments() throws -> [JSONValue] {
        let examples = Self.root.appendingPathComponent("examples")
        let files = try #require(FileManager.default.enumerator(atPath: examples.path)).compactMap { $0 as? String }
            .filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files.count >= 5)
        var documents: [JSONValue] = []
        for name in files {
            let bytes = try [UInt8](Data(contentsOf: examples.appendingPathComponent(name)))
            let node = try #require(YAMLReader().read(bytes: bytes, file: name).node)
            documents.append(node.jsonValue())
        }
        let job: JSONValue = [
            "schedule": ["cron": "61 * * * *", "dst": ["gap": "later"]], "command": [1], "timeout": "5 parsecs",
            "retry": ["attempts": -1, "backoff": "sometimes", "delay": true], "needs": ["Bad Id!"], "jitter": 3,
            "concurrency": "lots", "unknown": 1, "env": ["1A": 2], "notify": ["on": ["never"]],
        ]
        documents += [
            [:], ["version": 2, "jobs": []], ["version": 1, "jobs": ["a b": job, "ok": ["every": "5m", "shell": "x"]]],
            ["version": 1, "defaults": ["schedule": "x", "timezone": 5], "jobs": ["x": ["every": "0s", "offset": "1m"]]],
            ["version": 1, "jobs": ["x": ["at": ["not a time"], "shell": "", "description": ""]]],
        ]
        return documents
    }

    @Test func theEmbeddedProgramValidatesLikeTheSchemaText() throws {
        let embedded = try #require(JobSchema.embedded())
        let compiled = JobSchema.compiled(JobSchema.text)
        var violations = 0
        for document in try Self.sampleDocuments() {
            let a = embedded.schema.validate(document)
            #expect(a == compiled.schema.validate(document))
            #expect(embedded.schema.isValid(document) == a.isEmpty)
            violations += a.count
        }
        #expect(violations > 20, "the samples should break many rules")
        #expect(embedded.schema.document == compiled.schema.document, "the document parsed on demand")
    }

    /// The embedded bytes are part of the binary, but a damaged program must still be refused
    /// (and the text compiled instead), never followed out of bounds or into a loop.
    @Test func aDamagedProgramIsRefusedOrHarmless() throws {
        let bytes = try #require(JobSchema.hexBytes(JobSchema.compiledProgram))
        let sample = try #require(Self.sampleDocuments().first)
        var refused = 0
        func attempt(_ candidate: [UInt8]) {
            guard let (program, unknown) = try? SchemaProgram.decode(candidate) else {
                refused += 1
                return
            }
            _ = JSONSchema(program: program, unknownKeywords: unknown, text: "").validate(sample)
        }
        for n in stride(from: 0, to: bytes.count, by: 3) { attempt(Array(bytes.prefix(n))) }
        for i in bytes.indices {
            var changed = bytes
            changed[i] ^= i % 4 == 0 ? 0x80 : 0x01
            attempt(changed)
        }
        #expect(refused > bytes.count / 3, "prefixes must be refused")
        #expect(JobSchema.hexBytes("0g") == nil && JobSchema.hexBytes("abc") == nil && JobSchema.hexBytes("0a\nff") == [10, 255])
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
