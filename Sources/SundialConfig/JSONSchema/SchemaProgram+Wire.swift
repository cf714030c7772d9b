import OrderedCollections
import SundialCore

/// A compiled ``SchemaProgram`` as bytes, so that the job schema ships compiled.
///
/// Why: every loader child (each start and each reload of the agent, each `sundial validate`)
/// compiled the 27 KB job schema from its JSON text before reading a single job file: parsing
/// the text, registering identifiers, resolving references. That was 10 M of the 17 M
/// instructions of a child loading one small file (callgrind, docs/benchmarks.md). The compiled
/// program is now generated at development time (`scripts/embed-schema.sh`, which runs
/// `sundial-bench embed-schema`), embedded in `JobSchema+Compiled.swift`, and decoded here.
///
/// The embedded text is trusted (it is part of the binary), but it is still read with the
/// bounds-checked ``WireReader``: a stale or damaged program is detected, never trusted, and
/// ``JobSchema`` then compiles the schema text instead (see `JobSchema.shared`).
///
/// Layout, in ``WireWriter``'s encoding (LEB128 integers, a string table): the root index, the
/// unknown keywords, then each node: its location, title, `writeOnly`, declared types and checks. A check
/// is its case's index in ``SchemaProgram/CheckKind`` and its operands; JSON operands (`enum`,
/// `const`, the bounds) are tagged values, and patterns their source, compiled again here.
extension SchemaProgram {
    /// The first bytes of an encoded program; a new layout changes the number.
    static let wireMagic: [UInt8] = Array("SUNDIAL-SCHEMA 2\n".utf8)

    /// The checks' cases, in the order their index is written.
    enum CheckKind: UInt8, CaseIterable {
        case never, type, enumeration, constant, object, propertyNames, required, minProperties
        case maxProperties, dependentRequired, dependentSchemas, items, contains, minItems, maxItems
        case uniqueItems, minLength, maxLength, pattern, minimum, maximum, exclusiveMinimum
        case exclusiveMaximum, multipleOf, allOf, anyOf, oneOf, not, conditional, ref
    }

    func encoded(unknownKeywords: [[String]]) -> [UInt8] {
        var w = WireWriter()
        for b in Self.wireMagic { w.uint(UInt64(b)) }
        w.count(root)
        w.count(unknownKeywords.count)
        for k in unknownKeywords { Self.write(k, into: &w) }
        w.count(nodes.count)
        for node in nodes {
            Self.write(node.location, into: &w)
            w.string(node.title)
            w.bool(node.writeOnly)
            w.bool(node.declaredTypes != nil)
            if let t = node.declaredTypes { w.uint(UInt64(t.rawValue)) }
            w.count(node.checks.count)
            for check in node.checks { Self.write(check, into: &w) }
        }
        return w.bytes
    }

    /// A JSON operand, tagged by kind, so that `-2.0` stays a double and `-2` an integer (the
    /// violation messages and `const`'s comparison see the value as written).
    private static func writeJSON(_ v: JSONValue, into w: inout WireWriter) {
        switch v {
        case .null: w.uint(0)
        case let .bool(b): w.uint(b ? 2 : 1)
        case let .int(i):
            w.uint(3)
            w.int(i)
        case let .double(d):
            w.uint(4)
            w.uint(d.bitPattern)
        case let .string(s):
            w.uint(5)
            w.string(s)
        case let .array(a):
            w.uint(6)
            w.count(a.count)
            for x in a { writeJSON(x, into: &w) }
        case let .object(o):
            w.uint(7)
            w.count(o.count)
            for (k, x) in o {
                w.string(k)
                writeJSON(x, into: &w)
            }
        }
    }

    private static func write(_ strings: [String], into w: inout WireWriter) {
        w.count(strings.count)
        for s in strings { w.string(s) }
    }

    private static func write(_ indexes: [Int], into w: inout WireWriter) {
        w.count(indexes.count)
        for i in indexes { w.count(i) }
    }

    private static func write(_ index: Int?, into w: inout WireWriter) {
        w.bool(index != nil)
        if let index { w.count(index) }
    }

    private static func write(_ check: SchemaCheck, into w: inout WireWriter) {
        func kind(_ k: CheckKind) { w.uint(UInt64(k.rawValue)) }
        func json(_ v: JSONValue) { writeJSON(v, into: &w) }
        func number(_ k: CheckKind, _ n: Int) {
            kind(k)
            w.count(n)
        }
        func operand(_ k: CheckKind, _ v: JSONValue) {
            kind(k)
            json(v)
        }
        func children(_ k: CheckKind, _ nodes: [Int]) {
            kind(k)
            write(nodes, into: &w)
        }
        switch check {
        case .never: kind(.never)
        case let .type(t):
            kind(.type)
            w.uint(UInt64(t.rawValue))
        case let .enumeration(values):
            kind(.enumeration)
            json(.array(values))
        case let .constant(v):
            kind(.constant)
            json(v)
        case let .object(o):
            kind(.object)
            w.count(o.propertyOrder.count)
            for name in o.propertyOrder {
                w.string(name)
                w.count(o.properties[name] ?? 0)
            }
            w.count(o.patterns.count)
            for (pattern, index) in o.patterns {
                w.string(pattern.source)
                w.count(index)
            }
            write(o.additional, into: &w)
            w.bool(o.additionalIsFalse)
        case let .propertyNames(i):
            kind(.propertyNames)
            w.count(i)
        case let .required(names):
            kind(.required)
            write(names, into: &w)
        case let .minProperties(n): number(.minProperties, n)
        case let .maxProperties(n): number(.maxProperties, n)
        case let .dependentRequired(deps):
            kind(.dependentRequired)
            w.count(deps.count)
            for (key, names) in deps {
                w.string(key)
                write(names, into: &w)
            }
        case let .dependentSchemas(deps):
            kind(.dependentSchemas)
            w.count(deps.count)
            for (key, index) in deps {
                w.string(key)
                w.count(index)
            }
        case let .items(prefix, rest):
            kind(.items)
            write(prefix, into: &w)
            write(rest, into: &w)
        case let .contains(index, minimum, maximum):
            kind(.contains)
            w.count(index)
            w.count(minimum)
            write(maximum, into: &w)
        case let .minItems(n): number(.minItems, n)
        case let .maxItems(n): number(.maxItems, n)
        case .uniqueItems: kind(.uniqueItems)
        case let .minLength(n): number(.minLength, n)
        case let .maxLength(n): number(.maxLength, n)
        case let .pattern(p):
            kind(.pattern)
            w.string(p.source)
        case let .minimum(v): operand(.minimum, v)
        case let .maximum(v): operand(.maximum, v)
        case let .exclusiveMinimum(v): operand(.exclusiveMinimum, v)
        case let .exclusiveMaximum(v): operand(.exclusiveMaximum, v)
        case let .multipleOf(v): operand(.multipleOf, v)
        case let .allOf(i): children(.allOf, i)
        case let .anyOf(i): children(.anyOf, i)
        case let .oneOf(i): children(.oneOf, i)
        case let .not(i): number(.not, i)
        case let .conditional(i, t, e):
            kind(.conditional)
            w.count(i)
            write(t, into: &w)
            write(e, into: &w)
        case let .ref(i): number(.ref, i)
        }
    }

    // MARK: - Reading

    typealias DecodeError = JobWire.DecodeError

    /// Decodes ``encoded(unknownKeywords:)``'s bytes, checking every node index against the
    /// node count, so that a damaged program cannot make validation index out of bounds.
    static func decode(_ bytes: [UInt8]) throws(DecodeError) -> (SchemaProgram, unknownKeywords: [[String]]) {
        var r = WireReader(bytes)
        for b in wireMagic {
            guard try r.uint("magic") == UInt64(b) else { throw DecodeError("not a compiled schema of this version") }
        }
        let root = try number(&r, "root")
        var unknown: [[String]] = []
        for _ in 0..<(try r.count("unknown keywords")) { unknown.append(try strings(&r)) }
        let nodeCount = try r.count("nodes")
        var decoder = CheckDecoder(nodeCount: nodeCount)
        guard root < nodeCount else { throw DecodeError("root \(root) of \(nodeCount) nodes") }
        var nodes: [SchemaNode] = []
        nodes.reserveCapacity(nodeCount)
        for _ in 0..<nodeCount {
            var node = SchemaNode(location: try strings(&r))
            node.title = try r.optionalString("title")
            node.writeOnly = try r.bool("writeOnly")
            if try r.bool("types") { node.declaredTypes = SchemaTypes(rawValue: try types(&r)) }
            let checks = try r.count("checks")
            node.checks.reserveCapacity(checks)
            for _ in 0..<checks { node.checks.append(try decoder.check(&r)) }
            nodes.append(node)
        }
        guard r.isAtEnd else { throw DecodeError("\(r.remaining) bytes after the last node") }
        // As the compiler does: a loop of in-place references would never end an evaluation.
        do { try SchemaCompiler.rejectCycles(nodes) } catch { throw DecodeError("\(error)") }
        return (SchemaProgram(nodes: nodes, root: root), unknown)
    }

    private static func strings(_ r: inout WireReader) throws(DecodeError) -> [String] {
        var out: [String] = []
        for _ in 0..<(try r.count("strings")) { out.append(try r.string("string")) }
        return out
    }

    /// A node index or a keyword's whole number (not an element count, which ``WireReader``
    /// bounds by the bytes left).
    private static func number(_ r: inout WireReader, _ what: String) throws(DecodeError) -> Int {
        let n = try r.uint(what)
        guard n <= UInt64(Int.max) else { throw DecodeError("\(what): \(n) is out of range") }
        return Int(n)
    }

    private static func types(_ r: inout WireReader) throws(DecodeError) -> UInt8 {
        let t = try r.uint("types")
        guard t < 128 else { throw DecodeError("types \(t)") }
        return UInt8(t)
    }

    /// Reads checks, sharing one compiled pattern per source (as the compiler does).
    private struct CheckDecoder {
        let nodeCount: Int
        var patterns: [String: SchemaPattern] = [:]

        init(nodeCount: Int) { self.nodeCount = nodeCount }

        func node(_ r: inout WireReader) throws(DecodeError) -> Int {
            let i = try number(&r, "node")
            guard i < nodeCount else { throw DecodeError("node \(i) of \(nodeCount)") }
            return i
        }

        func optionalNode(_ r: inout WireReader) throws(DecodeError) -> Int? {
            try r.bool("node?") ? try node(&r) : nil
        }

        func nodes(_ r: inout WireReader) throws(DecodeError) -> [Int] {
            var out: [Int] = []
            for _ in 0..<(try r.count("nodes")) { out.append(try node(&r)) }
            return out
        }

        func json(_ r: inout WireReader, depth: Int = 0) throws(DecodeError) -> JSONValue {
            guard depth < 64 else { throw DecodeError("json: nested too deeply") }
            switch try r.uint("json") {
            case 0: return .null
            case 1: return .bool(false)
            case 2: return .bool(true)
            case 3: return .int(try r.int("json int"))
            case 4: return .double(Double(bitPattern: try r.uint("json double")))
            case 5: return .string(try r.string("json string"))
            case 6:
                var a: [JSONValue] = []
                for _ in 0..<(try r.count("json array")) { a.append(try json(&r, depth: depth + 1)) }
                return .array(a)
            case 7:
                var o: OrderedDictionary<String, JSONValue> = [:]
                for _ in 0..<(try r.count("json object")) {
                    let key = try r.string("json key")
                    o[key] = try json(&r, depth: depth + 1)
                }
                return .object(o)
            case let tag: throw DecodeError("json: tag \(tag)")
            }
        }

        mutating func pattern(_ r: inout WireReader) throws(DecodeError) -> SchemaPattern {
            let source = try r.string("pattern")
            if let known = patterns[source] { return known }
            guard let p = SchemaPattern(source) else { throw DecodeError("pattern \(source)") }
            patterns[source] = p
            return p
        }

        mutating func check(_ r: inout WireReader) throws(DecodeError) -> SchemaCheck {
            let raw = try r.uint("check")
            guard raw < UInt64(CheckKind.allCases.count), let kind = CheckKind(rawValue: UInt8(raw)) else {
                throw DecodeError("check kind \(raw)")
            }
            switch kind {
            case .never: return .never
            case .type: return .type(SchemaTypes(rawValue: try types(&r)))
            case .enumeration:
                guard case let .array(values) = try json(&r) else { throw DecodeError("enum is not a list") }
                return .enumeration(values)
            case .constant: return .constant(try json(&r))
            case .object:
                let o = ObjectCheck()
                for _ in 0..<(try r.count("properties")) {
                    let name = try r.string("property")
                    o.properties[name] = try node(&r)
                    o.propertyOrder.append(name)
                }
                for _ in 0..<(try r.count("patterns")) { o.patterns.append((try pattern(&r), try node(&r))) }
                o.additional = try optionalNode(&r)
                o.additionalIsFalse = try r.bool("additionalIsFalse")
                return .object(o)
            case .propertyNames: return .propertyNames(try node(&r))
            case .required: return .required(try strings(&r))
            case .minProperties: return .minProperties(try number(&r, "minProperties"))
            case .maxProperties: return .maxProperties(try number(&r, "maxProperties"))
            case .dependentRequired:
                var deps: [(String, [String])] = []
                for _ in 0..<(try r.count("dependentRequired")) { deps.append((try r.string("key"), try strings(&r))) }
                return .dependentRequired(deps)
            case .dependentSchemas:
                var deps: [(String, Int)] = []
                for _ in 0..<(try r.count("dependentSchemas")) { deps.append((try r.string("key"), try node(&r))) }
                return .dependentSchemas(deps)
            case .items: return .items(prefix: try nodes(&r), rest: try optionalNode(&r))
            case .contains:
                let index = try node(&r)
                let minimum = try number(&r, "minContains")
                return .contains(index, min: minimum, max: try r.bool("maxContains?") ? try number(&r, "maxContains") : nil)
            case .minItems: return .minItems(try number(&r, "minItems"))
            case .maxItems: return .maxItems(try number(&r, "maxItems"))
            case .uniqueItems: return .uniqueItems
            case .minLength: return .minLength(try number(&r, "minLength"))
            case .maxLength: return .maxLength(try number(&r, "maxLength"))
            case .pattern: return .pattern(try pattern(&r))
            case .minimum: return .minimum(try json(&r))
            case .maximum: return .maximum(try json(&r))
            case .exclusiveMinimum: return .exclusiveMinimum(try json(&r))
            case .exclusiveMaximum: return .exclusiveMaximum(try json(&r))
            case .multipleOf: return .multipleOf(try json(&r))
            case .allOf: return .allOf(try nodes(&r))
            case .anyOf: return .anyOf(try nodes(&r))
            case .oneOf: return .oneOf(try nodes(&r))
            case .not: return .not(try node(&r))
            case .conditional: return .conditional(if: try node(&r), then: try optionalNode(&r), else: try optionalNode(&r))
            case .ref: return .ref(try node(&r))
            }
        }
    }
}
