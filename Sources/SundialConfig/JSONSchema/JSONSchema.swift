import OrderedCollections
import SundialCore
import Synchronization

/// A compiled JSON Schema (draft 2020-12), ready to validate any number of instances.
///
/// Compile once, validate many: `init` checks the schema, resolves every `$ref` and compiles
/// every regex up front, so ``validate(_:)`` does no parsing or lookups by name.
///
/// Supported: `type enum const properties required additionalProperties patternProperties
/// propertyNames items prefixItems contains minContains maxContains minItems maxItems
/// uniqueItems minLength maxLength pattern minimum maximum exclusiveMinimum exclusiveMaximum
/// multipleOf minProperties maxProperties dependentRequired dependentSchemas allOf anyOf oneOf
/// not if then else $ref $defs $id $anchor`, boolean schemas, and references inside the
/// document (`#`, `#/$defs/x` with RFC 6901 escapes and percent-encoding, `#anchor`, URIs
/// relative to an `$id`). Annotations (`title`, `description`, `default`, `examples`,
/// `$comment`, `format`, `deprecated`, `content*`) are accepted and never asserted.
///
/// Not supported, and rejected with ``JSONSchemaError/Code/unsupportedKeyword`` rather than
/// ignored: `$dynamicRef`, `unevaluatedProperties`, `unevaluatedItems`, and dialects other than
/// 2020-12. References to other documents are never fetched (``JSONSchemaError/Code/unresolvedReference``).
/// Unknown keywords are ignored, as the spec requires, but listed in ``unknownKeywords`` so a
/// test can keep a hand-written schema free of typos.
///
/// Semantics worth knowing: string lengths count Unicode code points; `1.0` is an integer;
/// `enum`, `const` and `uniqueItems` compare with ``JSONValue/isJSONEqual(to:)``; patterns are
/// Swift `Regex`es configured like ECMA-262's `u` mode (see `SchemaPattern` for the differences).
public struct JSONSchema: Sendable {
    /// The schema document as given (for a schema that came compiled, parsed from its text on
    /// first use: only some diagnostics read it).
    public var document: JSONValue { source.value }
    /// JSON pointers (RFC 6901) of keywords this validator does not know and therefore ignored.
    public let unknownKeywords: [String]
    let program: SchemaProgram
    private let source: DocumentSource

    /// Compiles `schema`.
    /// - Throws: ``JSONSchemaError`` for a malformed keyword, an unresolvable `$ref`, an
    ///   unsupported keyword or dialect, or a `$ref` loop that would never terminate.
    public init(_ schema: JSONValue) throws(JSONSchemaError) {
        let (program, unknown) = try SchemaCompiler.compile(schema)
        self.source = DocumentSource(value: schema)
        self.program = program
        self.unknownKeywords = unknown.map(JSONSchema.pointer)
    }

    /// A schema that was compiled ahead of time (``SchemaProgram/decode(_:)``) from `text`.
    init(program: SchemaProgram, unknownKeywords: [[String]], text: String) {
        self.source = DocumentSource(text: text)
        self.program = program
        self.unknownKeywords = unknownKeywords.map(JSONSchema.pointer)
    }

    /// Every violation of the schema by `instance`, in document order of the instance as far as
    /// the schema allows; empty when the instance is valid. For a failed `anyOf`/`oneOf` only the
    /// most relevant branch's violations are reported (see ``SchemaViolation``). Never throws and
    /// never traps; an instance nested more than about 1000 levels deep is reported as a violation.
    public func validate(_ instance: JSONValue) -> [SchemaViolation] {
        let errors = program.nodes.withUnsafeBufferPointer { nodes in
            var e = SchemaEvaluator(nodes: nodes)
            _ = e.evaluate(program.root, instance, collect: true)
            return e.errors
        }
        guard errors.count > 1 else { return errors }
        // The same rule reached twice (e.g. through two `$ref`s) is reported once.
        var seen = Set<SchemaViolation>()
        return errors.filter { seen.insert($0).inserted }
    }

    /// Whether `instance` is valid: faster than `validate(_:).isEmpty`, as it stops at the
    /// first failure and builds no messages.
    public func isValid(_ instance: JSONValue) -> Bool {
        program.nodes.withUnsafeBufferPointer { nodes in
            var e = SchemaEvaluator(nodes: nodes)
            return e.evaluate(program.root, instance, collect: false)
        }
    }

    /// The raw schema value at a JSON pointer into the schema document (as tokens), e.g.
    /// `["$defs", "job", "properties", "timeout"]`, to show its `description`; `nil` if absent.
    /// With ``SchemaViolation/schemaPath`` `.dropLast()` it gives the schema a violation comes from.
    public func subschema(at pointer: some Collection<String>) -> JSONValue? {
        var v = document
        for token in pointer {
            switch v {
            case let .object(o):
                guard let next = o[token] else { return nil }
                v = next
            case let .array(a):
                guard let i = Int(token), a.indices.contains(i) else { return nil }
                v = a[i]
            default:
                return nil
            }
        }
        return v
    }

    /// RFC 6901 text for pointer tokens: `["a/b", "c"]` → `/a~1b/c`; `[]` → `""`.
    public static func pointer(_ tokens: [String]) -> String {
        var s = ""
        for t in tokens {
            s += "/"
            s += t.contains(where: { $0 == "~" || $0 == "/" }) ? t.replacing("~", with: "~0").replacing("/", with: "~1") : t
        }
        return s
    }
}

/// The schema document, held as given or as text parsed on first use.
private final class DocumentSource: Sendable {
    private let text: String?
    private let parsed: Mutex<JSONValue?>

    init(value: JSONValue) {
        text = nil
        parsed = Mutex(value)
    }

    init(text: String) {
        self.text = text
        parsed = Mutex(nil)
    }

    var value: JSONValue {
        parsed.withLock { parsed in
            if let parsed { return parsed }
            // The text is the one the program was compiled from, so it parses.
            let value = (try? JSONParser.parse(text ?? "null")) ?? .null
            parsed = value
            return value
        }
    }
}
