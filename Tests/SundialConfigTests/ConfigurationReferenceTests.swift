import Foundation
import SundialConfig
import SundialTesting
import Testing

@Suite(.offPool) struct ConfigurationReferenceTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func committedReferenceMatchesTheSchema() throws {
        let schema = try String(contentsOf: Self.root.appendingPathComponent("schemas/sundial-jobs.v1.schema.json"), encoding: .utf8)
        let committed = try String(contentsOf: Self.root.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        let generated = try ConfigurationReference.markdown(schemaText: schema)
        #expect(committed == generated, "docs/configuration.md is stale: run scripts/generate-docs.sh")
    }

    @Test func everyJobKeyAndTypeIsDocumented() throws {
        let schemaText = try String(contentsOf: Self.root.appendingPathComponent("schemas/sundial-jobs.v1.schema.json"), encoding: .utf8)
        let md = try ConfigurationReference.markdown(schemaText: schemaText)
        let json = try JSONSerialization.jsonObject(with: Data(schemaText.utf8)) as! [String: Any]
        let defs = json["$defs"] as! [String: Any]
        let props = (defs["job"] as! [String: Any])["properties"] as! [String: Any]
        for key in props.keys { #expect(md.contains("\n### `\(key)`\n"), "no section for \(key)") }
        for title in ["duration", "job id", "RFC 3339 time"] { #expect(md.contains("\n### \(title)\n")) }
        #expect(md.contains("| `attempts` | integer 1–100 |"))
        #expect(md.contains("- Exactly one of `command`, `shell`."))
        #expect(md.contains("`offset` requires `every`."))
    }

    @Test func changesInTheSchemaShowInTheOutput() throws {
        let schema = #"""
            {"description": "Top.", "required": ["jobs"], "properties": {"jobs": {"type": "object", "description": "J | K"}},
             "$defs": {"job": {"description": "A job.", "properties": {"when": {"enum": ["a", "b"], "description": "Pick one. More."}}},
                       "defaults": {"properties": {"when": {}}}}}
            """#
        let md = try ConfigurationReference.markdown(schemaText: schema)
        #expect(md.contains("| `jobs` | map | yes | J \\| K |"))
        #expect(md.contains("| [`when`](#when) | one of `a`, `b` | yes | Pick one. |"))
        #expect(throws: ConfigurationReference.GenerationError.self) { try ConfigurationReference.markdown(schemaText: "{") }
        #expect(throws: ConfigurationReference.GenerationError.self) { try ConfigurationReference.markdown(schemaText: "{}") }
    }
}
