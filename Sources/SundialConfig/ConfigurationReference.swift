import OrderedCollections
import SundialCore

/// Generates `docs/configuration.md` from the JSON Schema's titles, descriptions, types,
/// enums and examples, so the reference cannot drift from what the agent validates
/// (design §5: the schema is the single source of truth). A test compares the committed file
/// with this output; `sundial config-reference > docs/configuration.md` (or
/// `scripts/generate-docs.sh`) regenerates it.
public enum ConfigurationReference {
    public struct GenerationError: Error, CustomStringConvertible {
        public var description: String
    }

    /// The Markdown reference for the schema text (deterministic: same schema, same bytes).
    /// - Throws: `GenerationError` when the text is not JSON or lacks the expected `$defs`.
    public static func markdown(schemaText: String, schemaPath: String = "schemas/sundial-jobs.v1.schema.json") throws(GenerationError) -> String {
        let schema: JSONValue
        do { schema = try JSONParser.parse(schemaText) } catch { throw GenerationError(description: "schema is not JSON: \(error)") }
        guard case let .object(defs)? = schema["$defs"], case let .object(job)? = defs["job"],
            case let .object(jobProps)? = job["properties"]
        else {
            throw GenerationError(description: "schema lacks $defs.job.properties")
        }
        let r = Renderer(defs: defs)
        var out = "# Configuration reference\n\n"
        out += "<!-- Generated from \(schemaPath) by `sundial config-reference` (scripts/generate-docs.sh).\n"
        out += "     Do not edit by hand: a test fails when this file and the schema disagree. -->\n\n"
        if let d = schema["description"]?.stringValue { out += d + "\n\n" }
        out += "Editors that speak yaml-language-server complete and check job files when the file starts with\n"
        out += "`# yaml-language-server: $schema=…` pointing at the schema (`sundial schema` prints it; the Debian\n"
        out += "package installs it as `/usr/share/sundial/sundial-jobs.v1.schema.json`).\n\n"

        out += "## File\n\n| key | type | required | description |\n| --- | --- | --- | --- |\n"
        var required: Set<String> = []
        if case let .array(names)? = schema["required"] { required = Set(names.compactMap(\.stringValue)) }
        if case let .object(top)? = schema["properties"] {
            for (key, node) in top {
                out += "| `\(key)` | \(r.cell(r.typeText(node))) | \(required.contains(key) ? "yes" : "no") | \(r.cell(r.description(node) ?? "")) |\n"
            }
        }

        out += "\n## Jobs\n\n"
        if let d = job["description"]?.stringValue { out += d + "\n\n" }
        let rules = r.rules(job)
        if !rules.isEmpty { out += rules.map { "- " + $0 }.joined(separator: "\n") + "\n\n" }
        var defaultsKeys: Set<String> = []
        if case let .object(d)? = defs["defaults"], case let .object(p)? = d["properties"] { defaultsKeys = Set(p.keys) }
        out += "| key | type | in `defaults` | summary |\n| --- | --- | --- | --- |\n"
        for (key, node) in jobProps {
            out +=
                "| [`\(key)`](#\(r.anchor(key))) | \(r.cell(r.typeText(node))) | \(defaultsKeys.contains(key) ? "yes" : "no") | \(r.cell(r.firstSentence(r.description(node) ?? ""))) |\n"
        }
        if case let .object(d)? = defs["defaults"], let desc = d["description"]?.stringValue {
            out += "\n`defaults` (per file): " + desc + "\n"
        }
        for (key, node) in jobProps {
            out += "\n### `\(key)`\n\n"
            if let d = r.description(node) { out += d + "\n\n" }
            out += "- Type: " + r.typeText(node) + "\n"
            if defaultsKeys.contains(key) { out += "- Allowed in `defaults`.\n" }
            let examples = r.examples(node)
            if !examples.isEmpty { out += "- Examples: " + examples.map { "`\($0)`" }.joined(separator: ", ") + "\n" }
            let sub = r.subkeys(node)
            if !sub.isEmpty {
                out += "\n| key | type | description |\n| --- | --- | --- |\n"
                for (k, t, d) in sub { out += "| `\(k)` | \(r.cell(t)) | \(r.cell(d)) |\n" }
            }
        }

        out += "\n## Value types\n"
        for (name, title) in Renderer.namedTypes {
            guard case let .object(def)? = defs[name] else { continue }
            out += "\n### \(title)\n\n"
            if let d = def["description"]?.stringValue { out += d + "\n\n" }
            if let p = def["pattern"]?.stringValue { out += "- Pattern: `\(p)`\n" }
            let examples = r.examples(.object(def))
            if !examples.isEmpty { out += "- Examples: " + examples.map { "`\($0)`" }.joined(separator: ", ") + "\n" }
        }
        return out
    }
}

/// Turns schema nodes into Markdown fragments.
struct Renderer {
    let defs: OrderedDictionary<String, JSONValue>

    /// `$defs` shown under "Value types", with their titles.
    static let namedTypes: [(String, String)] = [("duration", "duration"), ("jobId", "job id"), ("rfc3339", "RFC 3339 time"), ("envName", "variable name")]

    /// GitHub's heading anchor for "### `key`": lowercase, backticks dropped.
    func anchor(_ key: String) -> String { key.lowercased() }

    func resolve(_ node: JSONValue) -> JSONValue {
        var n = node
        var hops = 0
        while let ref = n["$ref"]?.stringValue, ref.hasPrefix("#/$defs/"), hops < 16 {
            let name = String(ref.dropFirst(8))
            guard let target = defs[name] else { break }
            if Renderer.namedTypes.contains(where: { $0.0 == name }) { break }
            n = target
            hops += 1
        }
        return n
    }

    /// The node's own description, else its reference's.
    func description(_ node: JSONValue) -> String? {
        if let d = node["description"]?.stringValue { return d }
        return resolve(node)["description"]?.stringValue
    }

    func examples(_ node: JSONValue) -> [String] {
        let n = node["examples"] != nil ? node : resolve(node)
        guard case let .array(a)? = n["examples"] else {
            if let ref = n["$ref"]?.stringValue, let t = defs[String(ref.dropFirst(8))], case let .array(b)? = t["examples"] {
                return b.map(exampleText)
            }
            return []
        }
        return a.map(exampleText)
    }

    func exampleText(_ v: JSONValue) -> String {
        if case let .string(s) = v { return s }
        if case let .array(items) = v { return "[" + items.map { $0.stringValue ?? $0.jsonText }.joined(separator: ", ") + "]" }
        return v.jsonText
    }

    func typeText(_ node: JSONValue) -> String {
        if let ref = node["$ref"]?.stringValue, ref.hasPrefix("#/$defs/") {
            let name = String(ref.dropFirst(8))
            if let t = Renderer.namedTypes.first(where: { $0.0 == name }) {
                return "[\(t.1)](#\(t.1.lowercased().replacingAll(" ", with: "-")))"
            }
            if name == "defaults" { return "map (the job keys marked \"in `defaults`\")" }
            if let target = defs[name] { return typeText(target) }
        }
        if let c = node["const"] { return "`\(c.jsonText)`" }
        if case let .array(values)? = node["enum"] { return "one of " + values.map { "`\($0.stringValue ?? $0.jsonText)`" }.joined(separator: ", ") }
        if case let .array(alts)? = node["oneOf"] { return alts.map(typeText).joined(separator: ", or ") }
        var type = node["type"]?.stringValue
        if case let .array(ts)? = node["type"] {
            let names = ts.compactMap(\.stringValue)
            return names.dropLast().joined(separator: ", ") + (names.count > 1 ? " or " : "") + (names.last ?? "")
        }
        if type == nil, node["properties"] != nil { type = "object" }
        switch type {
        case "array":
            guard let items = node["items"] else { return "list" }
            return "list of " + typeText(items)
        case "object":
            if node["properties"] != nil { return "map" }
            if let ap = node["additionalProperties"], case .object = ap {
                let key = node["propertyNames"].map(typeText) ?? "string"
                if ap["$ref"]?.stringValue == "#/$defs/job" { return "map of \(key) to job" }
                return "map of \(key) to \(typeText(ap))"
            }
            return "map"
        case "integer":
            var t = "integer"
            if let lo = node["minimum"], let hi = node["maximum"] { t += " \(lo.jsonText)–\(hi.jsonText)" }
            return t
        case "number":
            if let lo = node["minimum"], let hi = node["maximum"] { return "number \(lo.jsonText)–\(hi.jsonText)" }
            return "number"
        case let t?: return t
        case nil: return "any"
        }
    }

    /// Keys of an object-valued option (`retry`, `dst`, `output`, the object form of `needs`).
    func subkeys(_ node: JSONValue) -> [(String, String, String)] {
        let n = resolve(node)
        var props: OrderedDictionary<String, JSONValue>?
        if case let .object(p)? = n["properties"] { props = p }
        if props == nil, case let .array(alts)? = n["items"]?["oneOf"] {
            for a in alts { if case let .object(p)? = a["properties"] { props = p } }
        }
        guard let props else { return [] }
        return props.map { ($0.key, typeText($0.value), description($0.value) ?? "") }
    }

    /// Cross-key rules: `oneOf` of `required` sets, `not anyOf` pairs, `dependentRequired`.
    func rules(_ job: OrderedDictionary<String, JSONValue>) -> [String] {
        var out: [String] = []
        if case let .array(alts)? = job["oneOf"] {
            let keys = alts.compactMap { a -> String? in
                if case let .array(r)? = a["required"], r.count == 1 { return r[0].stringValue } else { return nil }
            }
            if keys.count == alts.count { out.append("Exactly one of " + keys.map { "`\($0)`" }.joined(separator: ", ") + ".") }
        }
        if case let .array(pairs)? = job["not"]?["anyOf"] {
            var names: [String] = []
            for p in pairs { if case let .array(r)? = p["required"] { for k in r.compactMap(\.stringValue) where !names.contains(k) { names.append(k) } } }
            if pairs.count == names.count * (names.count - 1) / 2 {
                out.append(
                    "At most one of " + names.map { "`\($0)`" }.joined(separator: ", ")
                        + "; with none (and no `needs`) the job runs only when triggered by hand.")
            }
        }
        if case let .object(deps)? = job["dependentRequired"] {
            for (k, v) in deps {
                if case let .array(r) = v { out.append("`\(k)` requires " + r.compactMap(\.stringValue).map { "`\($0)`" }.joined(separator: ", ") + ".") }
            }
        }
        return out
    }

    func firstSentence(_ s: String) -> String {
        var i = s.startIndex
        while i < s.endIndex {
            if s[i] == ".", s.index(after: i) == s.endIndex || s[s.index(after: i)] == " " {
                let prev = s[s.startIndex..<i]
                // Not the dot of "e.g." or "i.e.".
                if !(prev.hasSuffix("e.g") || prev.hasSuffix("i.e")) { return String(s[...i]) }
            }
            i = s.index(after: i)
        }
        return s
    }

    /// Escapes a table cell.
    func cell(_ s: String) -> String { s.replacingAll("|", with: "\\|").replacingAll("\n", with: " ") }
}
