import SundialCore

/// One way an instance fails a ``JSONSchema``.
///
/// `message` is written for someone who has never heard of JSON Schema ("expected a string,
/// found an integer"); `kind` carries the same facts as data, so that a caller can phrase its
/// own message or add a hint ("did you mean `timeout`?" from ``Kind/unknownProperty(name:allowed:)``).
///
/// Type names in messages use the vocabulary of YAML job files: a JSON array is "a list" and
/// an object "a map" (``Kind/typeMismatch(expected:actual:)`` keeps JSON Schema's names).
public struct SchemaViolation: Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, as data.
    public enum Kind: Sendable, Hashable {
        /// The instance's type is not among `expected` (JSON Schema type names: `null`,
        /// `boolean`, `integer`, `number`, `string`, `array`, `object`).
        case typeMismatch(expected: [String], actual: String)
        /// A key that `additionalProperties: false` forbids; `allowed` lists the names the
        /// same schema's `properties` declares, in schema order. `instancePath` ends with `name`,
        /// so it designates the offending key itself.
        case unknownProperty(name: String, allowed: [String])
        /// A key that `required` (or `dependentRequired`) demands is absent; `instancePath` is
        /// the object's.
        case missingProperty(name: String)
        /// The value is not one of `enum`'s values (or not `const`'s single value).
        case notInEnum(allowed: [JSONValue])
        /// A string does not match `pattern`.
        case patternMismatch(pattern: String)
        /// `oneOf` matched several branches (0-based indices into the `oneOf` array).
        case matchesSeveral(branches: [Int])
        /// Any other keyword: see `keyword` and `message`.
        case other
    }

    /// JSON pointer tokens from the instance root to the offending value (unescaped; array
    /// indices as decimal strings). Empty for the root.
    public var instancePath: [String]
    /// JSON pointer tokens from the schema document's root to the failing keyword, after
    /// following `$ref`s (so it names where the rule is written, e.g. `["$defs", "job",
    /// "additionalProperties"]`). ``JSONSchema/subschema(at:)`` on `schemaPath.dropLast()`
    /// returns the schema object holding the keyword (for its `description`).
    public var schemaPath: [String]
    /// The failing keyword, e.g. `type`, `required`, `additionalProperties`.
    public var keyword: String
    /// A one-line, human message, without the location.
    public var message: String
    public var kind: Kind
    /// The value's schema says `writeOnly: true` (it may hold a secret): nothing built from the
    /// violation may quote the value.
    public var writeOnly: Bool

    public init(instancePath: [String], schemaPath: [String], keyword: String, message: String, kind: Kind, writeOnly: Bool = false) {
        self.instancePath = instancePath
        self.schemaPath = schemaPath
        self.keyword = keyword
        self.message = message
        self.kind = kind
        self.writeOnly = writeOnly
    }

    /// The instance location as an RFC 6901 JSON pointer (`""` for the root).
    public var instancePointer: String { JSONSchema.pointer(instancePath) }

    /// `pointer: message`, with `(root)` for the document itself.
    public var description: String {
        "\(instancePath.isEmpty ? "(root)" : instancePointer): \(message)"
    }
}

/// Why a schema could not be compiled.
public struct JSONSchemaError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// A keyword's value has the wrong shape (`"type": 1`, a negative `minLength`, a bad regex).
        case invalidSchema
        /// A `$ref` that does not resolve inside this document (remote references are not
        /// fetched, by design: the agent must not touch the network to read its config).
        case unresolvedReference
        /// A draft 2020-12 keyword this validator deliberately does not implement
        /// (`$dynamicRef`, `unevaluatedProperties`, …): rejected rather than silently ignored,
        /// because ignoring an assertion would accept invalid input.
        case unsupportedKeyword
        /// `$ref`s (or in-place applicators) that loop without descending into the instance.
        case referenceCycle
    }

    public var code: Code
    /// JSON pointer tokens of the offending place in the schema.
    public var schemaPath: [String]
    public var message: String

    public init(_ code: Code, at schemaPath: [String], _ message: String) {
        self.code = code
        self.schemaPath = schemaPath
        self.message = message
    }

    public var description: String { "schema \(JSONSchema.pointer(schemaPath).isEmpty ? "(root)" : JSONSchema.pointer(schemaPath)): \(message)" }
}
