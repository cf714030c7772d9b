import OrderedCollections
import SundialCore

/// Turns a schema document into a ``SchemaProgram``: registers every `$id` and `$anchor`,
/// resolves each `$ref` once, checks every keyword's value, compiles regexes once, and rejects
/// reference loops that would never terminate.
struct SchemaCompiler {
    /// Schema objects nested deeper than this are rejected (the stack is finite).
    static let maximumDepth = 512

    /// The base URI of a document without `$id`; any absolute URI would do.
    static let defaultBase = SchemaURI("urn:sundial:schema")

    /// Keywords whose value is one schema.
    static let singleSchemaKeywords: Set<String> = [
        "additionalProperties", "propertyNames", "items", "contains", "not", "if", "then", "else",
    ]
    /// Keywords whose value is an array of schemas.
    static let arraySchemaKeywords: Set<String> = ["prefixItems", "allOf", "anyOf", "oneOf"]
    /// Keywords whose value is a map of schemas.
    static let mapSchemaKeywords: Set<String> = ["properties", "patternProperties", "$defs", "dependentSchemas"]
    /// Keywords that carry no assertion (annotations, identifiers handled elsewhere).
    static let ignoredKeywords: Set<String> = [
        "$schema", "$id", "$anchor", "$dynamicAnchor", "$comment", "$vocabulary", "$defs", "title",
        "description", "default", "examples", "deprecated", "readOnly", "writeOnly", "format",
        "contentEncoding", "contentMediaType", "contentSchema",
    ]
    /// Draft 2020-12 keywords deliberately not implemented (see ``JSONSchemaError/Code/unsupportedKeyword``).
    static let unsupportedKeywords: Set<String> = [
        "$dynamicRef", "$recursiveRef", "$recursiveAnchor", "unevaluatedProperties", "unevaluatedItems",
    ]
    static let dialects: Set<String> = [
        "https://json-schema.org/draft/2020-12/schema", "https://json-schema.org/draft/2020-12/schema#",
    ]

    let document: JSONValue
    private var resources: [SchemaURI: [String]] = [:]
    private var anchors: [String: [String]] = [:]
    private var bases: [[String]: SchemaURI] = [:]
    private var memo: [[String]: Int] = [:]
    private var nodes: [SchemaNode] = []
    private var regexCache: [String: SchemaPattern] = [:]
    private(set) var unknownKeywords: [[String]] = []

    static func compile(_ document: JSONValue) throws(JSONSchemaError) -> (SchemaProgram, unknownKeywords: [[String]]) {
        var c = SchemaCompiler(document: document)
        try c.scan(document, at: [], base: defaultBase, depth: 0)
        let root = try c.compile(at: [])
        try rejectCycles(c.nodes)
        let alias = c.bypassPlainReferences()
        return (SchemaProgram(nodes: c.nodes, root: alias(root)), c.unknownKeywords)
    }

    private init(document: JSONValue) { self.document = document }

    // MARK: - Pass 1: identifiers

    /// Records the base URI of every schema location and registers `$id`s and `$anchor`s, so
    /// that pass 2 can resolve references to places it has not compiled yet.
    private mutating func scan(_ schema: JSONValue, at path: [String], base: SchemaURI, depth: Int) throws(JSONSchemaError) {
        guard depth <= Self.maximumDepth else {
            throw JSONSchemaError(.invalidSchema, at: path, "schema is nested more than \(Self.maximumDepth) levels deep")
        }
        guard case let .object(o) = schema else {
            bases[path] = base
            return
        }
        var base = base
        if let id = o["$id"] {
            guard case let .string(s) = id else { throw invalid(path + ["$id"], "`$id` must be a string") }
            base = base.resolving(SchemaURI(s)).withoutFragment
            if resources[base] == nil { resources[base] = path }
        }
        bases[path] = base
        for key in ["$anchor", "$dynamicAnchor"] {
            guard let a = o[key] else { continue }
            guard case let .string(name) = a, Self.isValidAnchor(name) else {
                throw invalid(path + [key], "`\(key)` must be a plain name (letters, digits, `-`, `_`, `.`), starting with a letter or `_`")
            }
            let k = "\(base)#\(name)"
            if anchors[k] == nil { anchors[k] = path }
        }
        for (key, value) in o {
            if Self.singleSchemaKeywords.contains(key) {
                try scan(value, at: path + [key], base: base, depth: depth + 1)
            } else if Self.arraySchemaKeywords.contains(key), case let .array(a) = value {
                for (i, v) in a.enumerated() { try scan(v, at: path + [key, String(i)], base: base, depth: depth + 1) }
            } else if Self.mapSchemaKeywords.contains(key), case let .object(m) = value {
                for (k, v) in m { try scan(v, at: path + [key, k], base: base, depth: depth + 1) }
            }
        }
    }

    private static func isValidAnchor(_ s: String) -> Bool {
        guard let f = s.unicodeScalars.first, f.properties.isAlphabetic && f.isASCII || f == "_" else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0)) }
    }

    // MARK: - Pass 2: compile

    private func value(at path: [String]) -> JSONValue? {
        var v = document
        for token in path {
            switch v {
            case let .object(o):
                guard let next = o[token] else { return nil }
                v = next
            case let .array(a):
                guard let i = Int(token), token == String(i), a.indices.contains(i) else { return nil }
                v = a[i]
            default:
                return nil
            }
        }
        return v
    }

    /// The base URI in effect at `path`: recorded by the scan, or (for a location only a JSON
    /// pointer reaches) inherited from the nearest scanned ancestor plus the node's own `$id`.
    private func base(at path: [String], schema: JSONValue) -> SchemaURI {
        if let b = bases[path] { return b }
        var prefix = path
        var b = Self.defaultBase
        while !prefix.isEmpty {
            prefix.removeLast()
            if let found = bases[prefix] {
                b = found
                break
            }
        }
        if case let .string(id)? = schema["$id"] { b = b.resolving(SchemaURI(id)).withoutFragment }
        return b
    }

    /// Compiles the schema at `path` (once; later calls return the same index).
    private mutating func compile(at path: [String]) throws(JSONSchemaError) -> Int {
        if let i = memo[path] { return i }
        guard let schema = value(at: path) else {
            throw JSONSchemaError(.unresolvedReference, at: path, "no schema at \(JSONSchema.pointer(path))")
        }
        let index = nodes.count
        memo[path] = index
        nodes.append(SchemaNode(location: path))
        nodes[index] = try compileNode(schema, at: path)
        return index
    }

    private mutating func compileNode(_ schema: JSONValue, at path: [String]) throws(JSONSchemaError) -> SchemaNode {
        var node = SchemaNode(location: path)
        guard path.count <= Self.maximumDepth * 3 else {
            throw invalid(path, "schema is nested too deeply")
        }
        switch schema {
        case .bool(true): return node
        case .bool(false):
            node.checks = [.never]
            return node
        case .object: break
        default: throw invalid(path, "a schema must be an object or a boolean, found \(SchemaEvaluator.article(for: schema))")
        }
        guard case let .object(o) = schema else { return node }
        let base = base(at: path, schema: schema)

        if let s = o["$schema"] {
            guard case let .string(uri) = s, Self.dialects.contains(uri) else {
                throw JSONSchemaError(
                    .unsupportedKeyword, at: path + ["$schema"],
                    "only JSON Schema draft 2020-12 is supported (`$schema`: \"https://json-schema.org/draft/2020-12/schema\")")
            }
        }
        if case let .string(t)? = o["title"] { node.title = t }
        if o["writeOnly"] == .bool(true) { node.writeOnly = true }

        let object = ObjectCheck()
        var hasObjectCheck = false
        var prefixItems: [Int]?
        var items: Int?
        var ifThenElse: (Int?, Int?, Int?) = (nil, nil, nil)

        for (key, value) in o {
            let kp = path + [key]
            switch key {
            case "type":
                var set = SchemaTypes()
                let names: [JSONValue]
                if case let .array(a) = value { names = a } else { names = [value] }
                for n in names {
                    guard case let .string(name) = n, let t = SchemaTypes(name: name) else {
                        throw invalid(kp, "`type` must be one of string, integer, number, boolean, array, object, null (or a list of them)")
                    }
                    set.insert(t)
                }
                node.declaredTypes = set
                node.checks.append(.type(set))
            case "enum":
                guard case let .array(a) = value else { throw invalid(kp, "`enum` must be a list") }
                node.checks.append(.enumeration(a))
            case "const":
                node.checks.append(.constant(value))
            case "properties":
                guard case let .object(m) = value else { throw invalid(kp, "`properties` must be a map of schemas") }
                for (name, _) in m {
                    object.properties[name] = try compile(at: kp + [name])
                    object.propertyOrder.append(name)
                }
                hasObjectCheck = true
            case "patternProperties":
                guard case let .object(m) = value else { throw invalid(kp, "`patternProperties` must be a map of schemas") }
                for (source, _) in m {
                    let pattern = try regex(source, at: kp + [source])
                    object.patterns.append((pattern, try compile(at: kp + [source])))
                }
                hasObjectCheck = true
            case "additionalProperties":
                let i = try compile(at: kp)
                object.additional = i
                if case .bool(false) = value { object.additionalIsFalse = true }
                hasObjectCheck = true
            case "propertyNames":
                node.checks.append(.propertyNames(try compile(at: kp)))
            case "required":
                node.checks.append(.required(try stringList(value, at: kp)))
            case "minProperties": node.checks.append(.minProperties(try count(value, at: kp)))
            case "maxProperties": node.checks.append(.maxProperties(try count(value, at: kp)))
            case "dependentRequired":
                guard case let .object(m) = value else { throw invalid(kp, "`dependentRequired` must be a map of lists of key names") }
                var deps: [(String, [String])] = []
                for (k, v) in m { deps.append((k, try stringList(v, at: kp + [k]))) }
                node.checks.append(.dependentRequired(deps))
            case "dependentSchemas":
                guard case let .object(m) = value else { throw invalid(kp, "`dependentSchemas` must be a map of schemas") }
                var deps: [(String, Int)] = []
                for (k, _) in m { deps.append((k, try compile(at: kp + [k]))) }
                node.checks.append(.dependentSchemas(deps))
            case "items":
                if case .array = value {
                    throw invalid(kp, "`items` must be a schema; draft 2020-12 writes a tuple as `prefixItems`")
                }
                items = try compile(at: kp)
            case "prefixItems":
                prefixItems = try schemaList(value, at: kp)
            case "contains", "minContains", "maxContains":
                break  // compiled together below
            case "minItems": node.checks.append(.minItems(try count(value, at: kp)))
            case "maxItems": node.checks.append(.maxItems(try count(value, at: kp)))
            case "uniqueItems":
                guard case let .bool(b) = value else { throw invalid(kp, "`uniqueItems` must be true or false") }
                if b { node.checks.append(.uniqueItems) }
            case "minLength": node.checks.append(.minLength(try count(value, at: kp)))
            case "maxLength": node.checks.append(.maxLength(try count(value, at: kp)))
            case "pattern":
                guard case let .string(source) = value else { throw invalid(kp, "`pattern` must be a string") }
                node.checks.append(.pattern(try regex(source, at: kp)))
            case "minimum": node.checks.append(.minimum(try number(value, at: kp)))
            case "maximum": node.checks.append(.maximum(try number(value, at: kp)))
            case "exclusiveMinimum": node.checks.append(.exclusiveMinimum(try number(value, at: kp)))
            case "exclusiveMaximum": node.checks.append(.exclusiveMaximum(try number(value, at: kp)))
            case "multipleOf":
                let n = try number(value, at: kp)
                guard JSONNumber.compare(n, .int(0)) == 1 else { throw invalid(kp, "`multipleOf` must be greater than 0") }
                node.checks.append(.multipleOf(n))
            case "allOf": node.checks.append(.allOf(try schemaList(value, at: kp)))
            case "anyOf": node.checks.append(.anyOf(try schemaList(value, at: kp)))
            case "oneOf": node.checks.append(.oneOf(try schemaList(value, at: kp)))
            case "not": node.checks.append(.not(try compile(at: kp)))
            case "if": ifThenElse.0 = try compile(at: kp)
            case "then": ifThenElse.1 = try compile(at: kp)
            case "else": ifThenElse.2 = try compile(at: kp)
            case "$ref":
                guard case let .string(ref) = value else { throw invalid(kp, "`$ref` must be a string") }
                node.checks.append(.ref(try resolve(ref, base: base, at: kp)))
            default:
                if Self.ignoredKeywords.contains(key) { break }
                if Self.unsupportedKeywords.contains(key) {
                    throw JSONSchemaError(.unsupportedKeyword, at: kp, "`\(key)` is not supported by this validator")
                }
                unknownKeywords.append(kp)
            }
        }
        if let c = o["contains"] {
            _ = c
            let schema = try compile(at: path + ["contains"])
            let minimum = try o["minContains"].map { v throws(JSONSchemaError) in try count(v, at: path + ["minContains"]) } ?? 1
            let maximum = try o["maxContains"].map { v throws(JSONSchemaError) in try count(v, at: path + ["maxContains"]) }
            node.checks.append(.contains(schema, min: minimum, max: maximum))
        }
        if prefixItems != nil || items != nil {
            node.checks.append(.items(prefix: prefixItems ?? [], rest: items))
        }
        if hasObjectCheck { node.checks.append(.object(object)) }
        if let i = ifThenElse.0, ifThenElse.1 != nil || ifThenElse.2 != nil {
            node.checks.append(.conditional(if: i, then: ifThenElse.1, else: ifThenElse.2))
        }
        node.checks.sort { Self.cost($0) < Self.cost($1) }
        return node
    }

    /// Cheap checks first, so that a non-collecting evaluation (inside `not`, `anyOf`, …)
    /// fails as early as possible, and so that an object's own problems (wrong type, missing
    /// keys) are reported before those of its members.
    private static func cost(_ c: SchemaCheck) -> Int {
        switch c {
        case .never, .type: 0
        case .constant, .enumeration, .required, .minProperties, .maxProperties, .minItems, .maxItems,
            .minimum, .maximum, .exclusiveMinimum, .exclusiveMaximum, .multipleOf, .minLength, .maxLength,
            .dependentRequired:
            1
        case .pattern: 2
        default: 3
        }
    }

    // MARK: - References

    private mutating func resolve(_ ref: String, base: SchemaURI, at path: [String]) throws(JSONSchemaError) -> Int {
        let target = base.resolving(SchemaURI(ref))
        let resource = target.withoutFragment
        guard let root = resources[resource] ?? (resource == Self.defaultBase ? [] : nil) else {
            throw JSONSchemaError(
                .unresolvedReference, at: path, "`$ref` \"\(ref)\" does not refer to a schema in this document (remote references are not fetched)")
        }
        let fragment = SchemaURI.percentDecoded(target.fragment ?? "")
        if fragment.isEmpty { return try compile(at: root) }
        if fragment.hasPrefix("/") {
            let tokens = fragment.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map(Self.unescapedToken)
            let targetPath = root + tokens
            guard value(at: targetPath) != nil else {
                throw JSONSchemaError(.unresolvedReference, at: path, "`$ref` \"\(ref)\" points at nothing")
            }
            return try compile(at: targetPath)
        }
        guard let anchored = anchors["\(resource)#\(fragment)"] else {
            throw JSONSchemaError(.unresolvedReference, at: path, "`$ref` \"\(ref)\": no `$anchor` named \"\(fragment)\"")
        }
        return try compile(at: anchored)
    }

    /// One RFC 6901 reference token unescaped (`~1` → `/`, then `~0` → `~`). By hand rather than
    /// with `replacing(_:with:)`: that generic call resolved its generic requirements at run
    /// time on first use, 3 M instructions of every loader child's 20 M (callgrind), for a
    /// schema whose pointers have no `~` at all.
    static func unescapedToken(_ token: Substring) -> String {
        guard token.utf8.contains(UInt8(ascii: "~")) else { return String(token) }
        return String(decoding: replaced(replaced(Array(token.utf8), "1", by: "/"), "0", by: "~"), as: UTF8.self)
    }

    /// `bytes` with every `~` followed by `second` replaced by `replacement`, left to right.
    private static func replaced(_ bytes: [UInt8], _ second: Unicode.Scalar, by replacement: Unicode.Scalar) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "~"), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: second) {
                out.append(UInt8(ascii: replacement))
                i += 2
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }

    /// Rejects cycles of in-place applicators (`{"$ref": "#"}`, or two `$defs` referring to each
    /// other through `allOf`): evaluating them would never reach a new part of the instance.
    static func rejectCycles(_ nodes: [SchemaNode]) throws(JSONSchemaError) {
        var state = [UInt8](repeating: 0, count: nodes.count)  // 0 new, 1 on stack, 2 done
        for start in nodes.indices where state[start] == 0 {
            var stack: [(node: Int, children: [Int], next: Int)] = [(start, nodes[start].checks.flatMap(\.inPlaceChildren), 0)]
            state[start] = 1
            while !stack.isEmpty {
                let top = stack.count - 1
                if stack[top].next == stack[top].children.count {
                    state[stack[top].node] = 2
                    stack.removeLast()
                    continue
                }
                let child = stack[top].children[stack[top].next]
                stack[top].next += 1
                switch state[child] {
                case 1:
                    throw JSONSchemaError(
                        .referenceCycle, at: nodes[child].location, "this schema refers back to itself without descending into the value (an infinite loop)")
                case 0:
                    state[child] = 1
                    stack.append((child, nodes[child].checks.flatMap(\.inPlaceChildren), 0))
                default: break
                }
            }
        }
    }

    /// Points every reference to a node that only says `{"$ref": …}` (and has no title to
    /// report) at the node it refers to, so evaluation skips the hop. Violations still name the
    /// schema location where the rule is written. Runs after ``rejectCycles(_:)``, so chains end.
    private mutating func bypassPlainReferences() -> (Int) -> Int {
        var target = Array(nodes.indices)
        for i in nodes.indices {
            var t = i
            var hops = 0
            while nodes[t].title == nil, nodes[t].checks.count == 1, case let .ref(next) = nodes[t].checks[0], hops < nodes.count {
                t = next
                hops += 1
            }
            target[i] = t
        }
        let alias = { (i: Int) in target[i] }
        for i in nodes.indices {
            nodes[i].checks = nodes[i].checks.map { $0.mapChildren(alias) }
        }
        return alias
    }

    // MARK: - Keyword values

    private func invalid(_ path: [String], _ message: String) -> JSONSchemaError {
        JSONSchemaError(.invalidSchema, at: path, message)
    }

    private mutating func regex(_ source: String, at path: [String]) throws(JSONSchemaError) -> SchemaPattern {
        if let r = regexCache[source] { return r }
        guard let r = SchemaPattern(source) else { throw invalid(path, "invalid regular expression \"\(source)\"") }
        regexCache[source] = r
        return r
    }

    private mutating func schemaList(_ value: JSONValue, at path: [String]) throws(JSONSchemaError) -> [Int] {
        guard case let .array(a) = value, !a.isEmpty else { throw invalid(path, "`\(path.last ?? "")` must be a non-empty list of schemas") }
        var out: [Int] = []
        for i in a.indices { out.append(try compile(at: path + [String(i)])) }
        return out
    }

    private func stringList(_ value: JSONValue, at path: [String]) throws(JSONSchemaError) -> [String] {
        guard case let .array(a) = value else { throw invalid(path, "`\(path.last ?? "")` must be a list of strings") }
        var out: [String] = []
        for v in a {
            guard case let .string(s) = v else { throw invalid(path, "`\(path.last ?? "")` must be a list of strings") }
            out.append(s)
        }
        return out
    }

    private func count(_ value: JSONValue, at path: [String]) throws(JSONSchemaError) -> Int {
        switch value {
        case let .int(i) where i >= 0: return Int(clamping: i)
        case let .double(d) where d >= 0 && d == d.rounded() && d < 9e18: return Int(d)
        default: throw invalid(path, "`\(path.last ?? "")` must be a non-negative integer")
        }
    }

    private func number(_ value: JSONValue, at path: [String]) throws(JSONSchemaError) -> JSONValue {
        switch value {
        case .int, .double: return value
        default: throw invalid(path, "`\(path.last ?? "")` must be a number")
        }
    }
}
