import OrderedCollections
import SundialCore
import SundialTesting
import Testing

@testable import SundialConfig

/// The merged view of a job's keys the decoder reads (``JobFields``).
@Suite("Job fields: a job's keys over its defaults", .offPool)
struct JobFieldsTests {
    func node(_ text: String) throws -> YAMLNode {
        try #require(YAMLReader().read(bytes: Array(text.utf8), file: "t.yaml").node)
    }

    /// A key the decoder does not know would be dropped without a word: the keys are exactly
    /// the job properties of the schema in `schemas/`.
    @Test func theKeysAreTheSchemasJobProperties() throws {
        let schema = try JSONParser.parse(JobSchema.text)
        guard case let .object(properties)? = schema["$defs"]?["job"]?["properties"] else {
            Issue.record("the schema has no $defs.job.properties")
            return
        }
        #expect(Set(JobFields.Key.allCases.map(\.name)) == Set(properties.keys))
    }

    /// Every name finds its key; nothing else finds one (its own name with a byte changed,
    /// added or dropped, other names of the schema, the empty string).
    @Test func keysAreFoundByExactlyTheirNames() {
        for key in JobFields.Key.allCases {
            #expect(JobFields.Key(name: key.name) == key)
            #expect(JobFields.Key(name: key.name + "s") == nil)
            #expect(JobFields.Key(name: String(key.name.dropLast())) == nil)
            #expect(JobFields.Key(name: key.name.uppercased()) == nil)
            #expect(JobFields.Key(name: "x" + key.name.dropFirst()) == nil)
        }
        for other in ["", "version", "jobs", "defaults", "webhook", "attempts", "Command", "tim", "é", "user\0"] {
            #expect(JobFields.Key(name: other) == nil, "\(other)")
        }
    }

    @Test func aJobsOwnValueWinsAndMapsMergeDefaultFirst() throws {
        let defaults = try node("timeout: 5m\nenv: {A: '1'}\nretry: {attempts: 2}\nuser: nobody\n")
        let job = try node("timeout: 10m\nenv: {B: '2'}\ncommand: [x]\nnot_a_key: 1\n")
        let fields = JobFields(job: job, defaults: defaults)
        #expect(fields[.timeout]?.map(\.scalarText) == ["10m"])
        #expect(fields[.user]?.map(\.scalarText) == ["nobody"])
        #expect(fields[.env]?.map { $0.entries.map(\.key) } == [["A"], ["B"]])
        #expect(fields[.retry]?.count == 1)
        #expect(fields[.command]?.count == 1)
        #expect(fields[.shell]?.count == nil)
        #expect(JobFields(job: job, defaults: nil)[.user]?.count == nil)
    }
}
