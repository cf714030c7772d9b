import Foundation
import SundialCore
import SundialTesting
import Testing

@testable import SundialConfig

/// Runs the official JSON-Schema-Test-Suite (draft 2020-12) files in
/// `Fixtures/JSON-Schema-Test-Suite/` against ``JSONSchema`` and requires every case to pass,
/// except the ones listed in ``skipped`` with their reason.
@Suite(.offPool) struct JSONSchemaSuiteTests {
    /// Test groups (file, group description) not run, each with why. Nothing else may be skipped:
    /// a case missing from this list that fails is a failure.
    static let skipped: [String: [String: String]] = [
        "defs.json": [
            "validate definition against metaschema":
                "`$ref`s the 2020-12 meta-schema, a remote document (and it uses `$dynamicRef`)"
        ],
        "ref.json": [
            "remote ref, containing refs itself":
                "`$ref`s the 2020-12 meta-schema, a remote document",
            "ref creates new scope when adjacent to keywords":
                "uses `unevaluatedProperties`, which is not supported (rejected at compile time)",
        ],
        "not.json": [
            "collect annotations inside a 'not', even if collection is disabled":
                "uses `unevaluatedProperties`, which is not supported (rejected at compile time)"
        ],
    ]

    struct Outcome {
        var passed = 0
        var skipped = 0
        var failures: [String] = []
    }

    static func fixturesDirectory() throws -> URL {
        let dir = try #require(Bundle.module.resourceURL).appendingPathComponent("Fixtures/JSON-Schema-Test-Suite")
        return dir
    }

    /// With `throughCompiledForm`, each schema is compiled, encoded as the job schema ships
    /// (`SchemaProgram+Wire.swift`), decoded, and must then give exactly the violations the
    /// schema compiled from JSON gives, case by case.
    static func run(throughCompiledForm: Bool = false) throws -> Outcome {
        var outcome = Outcome()
        let dir = try fixturesDirectory()
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".json") }.sorted()
        #expect(files.count >= 35, "fixture files missing")
        for file in files {
            let data = try Data(contentsOf: dir.appendingPathComponent(file))
            let groups: JSONValue
            do {
                groups = try JSONParser.parse([UInt8](data))
            } catch {
                outcome.failures.append("\(file): cannot parse: \(error)")
                continue
            }
            guard case let .array(list) = groups else {
                outcome.failures.append("\(file): not a list of groups")
                continue
            }
            for group in list {
                let description = group["description"]?.stringValue ?? "?"
                guard case let .array(tests)? = group["tests"], let schemaValue = group["schema"] else {
                    outcome.failures.append("\(file) / \(description): malformed group")
                    continue
                }
                if skipped[file]?[description] != nil {
                    outcome.skipped += tests.count
                    continue
                }
                let schema: JSONSchema
                do {
                    schema = try JSONSchema(schemaValue)
                } catch {
                    outcome.failures.append("\(file) / \(description): schema rejected: \(error)")
                    continue
                }
                for test in tests {
                    let name = test["description"]?.stringValue ?? "?"
                    guard case let .bool(expected)? = test["valid"], let data = test["data"] else {
                        outcome.failures.append("\(file) / \(description) / \(name): malformed test")
                        continue
                    }
                    var violations = schema.validate(data)
                    var quick = schema.isValid(data)
                    if throughCompiledForm {
                        let bytes = schema.program.encoded(unknownKeywords: [])
                        let decoded: JSONSchema
                        do {
                            let (program, unknown) = try SchemaProgram.decode(bytes)
                            decoded = JSONSchema(program: program, unknownKeywords: unknown, text: "")
                        } catch {
                            outcome.failures.append("\(file) / \(description): the compiled form does not decode: \(error)")
                            break
                        }
                        let again = decoded.validate(data)
                        if again != violations {
                            outcome.failures.append("\(file) / \(description) / \(name): compiled form found \(again), JSON form \(violations)")
                        }
                        (violations, quick) = (again, decoded.isValid(data))
                    }
                    if violations.isEmpty == expected && quick == expected {
                        outcome.passed += 1
                    } else {
                        outcome.failures.append(
                            "\(file) / \(description) / \(name): expected \(expected ? "valid" : "invalid"), "
                                + "validate found \(violations.count) violation(s) \(violations.map(\.description)), isValid=\(quick)")
                    }
                }
            }
        }
        return outcome
    }

    @Test func officialSuitePasses() throws {
        let outcome = try Self.run()
        print("JSON-Schema-Test-Suite draft2020-12: \(outcome.passed) passed, \(outcome.failures.count) failed, \(outcome.skipped) skipped (listed)")
        for f in outcome.failures { Issue.record("\(f)") }
        #expect(outcome.failures.isEmpty)
        #expect(outcome.passed > 1000)
    }

    @Test func theSuitePassesThroughTheCompiledForm() throws {
        let outcome = try Self.run(throughCompiledForm: true)
        for f in outcome.failures { Issue.record("\(f)") }
        #expect(outcome.failures.isEmpty)
        #expect(outcome.passed > 1000)
    }
}
