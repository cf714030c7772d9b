import SundialCore

/// The compiled form of a schema: a flat array of nodes that refer to each other by index, so
/// `$ref` cycles (recursive schemas) need no reference counting and the whole program is a
/// plain `Sendable` value.
struct SchemaProgram: Sendable {
    var nodes: [SchemaNode]
    var root: Int
}

/// The JSON Schema primitive types, as a bit set.
struct SchemaTypes: OptionSet, Sendable, Hashable {
    let rawValue: UInt8
    static let null = SchemaTypes(rawValue: 1)
    static let boolean = SchemaTypes(rawValue: 2)
    static let object = SchemaTypes(rawValue: 4)
    static let array = SchemaTypes(rawValue: 8)
    static let number = SchemaTypes(rawValue: 16)
    static let string = SchemaTypes(rawValue: 32)
    static let integer = SchemaTypes(rawValue: 64)

    /// In the order messages list them.
    static let named: [(String, SchemaTypes)] = [
        ("string", .string), ("integer", .integer), ("number", .number), ("boolean", .boolean),
        ("array", .array), ("object", .object), ("null", .null),
    ]

    init(rawValue: UInt8) { self.rawValue = rawValue }

    init?(name: String) {
        guard let t = Self.named.first(where: { $0.0 == name }) else { return nil }
        self = t.1
    }

    var names: [String] { Self.named.filter { contains($0.1) }.map(\.0) }

    /// Whether `v` has one of these types (`1.0` is an integer; every integer is a number).
    func admits(_ v: JSONValue) -> Bool {
        switch v {
        case .null: return contains(.null)
        case .bool: return contains(.boolean)
        case .string: return contains(.string)
        case .array: return contains(.array)
        case .object: return contains(.object)
        case .int: return !isDisjoint(with: [.integer, .number])
        case let .double(d): return contains(.number) || (contains(.integer) && d.isFinite && d == d.rounded(.towardZero))
        }
    }
}

/// One compiled (sub)schema.
struct SchemaNode: Sendable {
    /// Where the schema sits in the document (JSON pointer tokens).
    var location: [String]
    var checks: [SchemaCheck] = []
    /// `type`, when the schema declares one: lets `anyOf`/`oneOf` pick the branch meant for
    /// the instance's type when reporting.
    var declaredTypes: SchemaTypes?
    /// `title`, used to name `oneOf` branches in messages.
    var title: String?
    /// `writeOnly: true`: the value may hold a secret (a webhook URL's token, a header's
    /// credentials), so messages about it never quote it; its location names it.
    var writeOnly = false

    init(location: [String]) { self.location = location }
}

/// `properties`, `patternProperties` and `additionalProperties` together, since which keys
/// are "additional" depends on the other two.
///
/// A class so that a ``SchemaCheck`` holding it copies with one retain: the evaluator copies
/// checks out of the program constantly.
final class ObjectCheck: @unchecked Sendable {
    // @unchecked: mutated only while the compiler builds it, immutable once in a program.
    var properties: [String: Int] = [:]
    /// `properties`' names in schema order, for "did you mean" lists.
    var propertyOrder: [String] = []
    var patterns: [(SchemaPattern, Int)] = []
    var additional: Int?
    /// `additionalProperties: false`, reported as an unknown key.
    var additionalIsFalse = false
}

enum SchemaCheck: Sendable {
    case never  // the `false` schema
    case type(SchemaTypes)
    case enumeration([JSONValue])
    case constant(JSONValue)
    case object(ObjectCheck)
    case propertyNames(Int)
    case required([String])
    case minProperties(Int)
    case maxProperties(Int)
    case dependentRequired([(String, [String])])
    case dependentSchemas([(String, Int)])
    case items(prefix: [Int], rest: Int?)
    case contains(Int, min: Int, max: Int?)
    case minItems(Int)
    case maxItems(Int)
    case uniqueItems
    case minLength(Int)
    case maxLength(Int)
    case pattern(SchemaPattern)
    case minimum(JSONValue)
    case maximum(JSONValue)
    case exclusiveMinimum(JSONValue)
    case exclusiveMaximum(JSONValue)
    case multipleOf(JSONValue)
    case allOf([Int])
    case anyOf([Int])
    case oneOf([Int])
    case not(Int)
    case conditional(if: Int, then: Int?, else: Int?)
    case ref(Int)

    /// The same check with every child node index passed through `f`.
    func mapChildren(_ f: (Int) -> Int) -> SchemaCheck {
        switch self {
        case let .object(oc):
            oc.properties = oc.properties.mapValues(f)
            oc.patterns = oc.patterns.map { ($0.0, f($0.1)) }
            oc.additional = oc.additional.map(f)
            return self
        case let .propertyNames(n): return .propertyNames(f(n))
        case let .dependentSchemas(d): return .dependentSchemas(d.map { ($0.0, f($0.1)) })
        case let .items(prefix, rest): return .items(prefix: prefix.map(f), rest: rest.map(f))
        case let .contains(n, minimum, maximum): return .contains(f(n), min: minimum, max: maximum)
        case let .allOf(n): return .allOf(n.map(f))
        case let .anyOf(n): return .anyOf(n.map(f))
        case let .oneOf(n): return .oneOf(n.map(f))
        case let .not(n): return .not(f(n))
        case let .conditional(i, t, e): return .conditional(if: f(i), then: t.map(f), else: e.map(f))
        case let .ref(n): return .ref(f(n))
        default: return self
        }
    }

    /// Nodes this check applies to the *same* instance (for cycle detection).
    var inPlaceChildren: [Int] {
        switch self {
        case let .allOf(n), let .anyOf(n), let .oneOf(n): return n
        case let .not(n), let .ref(n): return [n]
        case let .conditional(i, t, e): return [i] + [t, e].compactMap { $0 }
        case let .dependentSchemas(d): return d.map(\.1)
        default: return []
        }
    }
}

// MARK: - Numbers

/// Exact comparison of JSON numbers, `Int64` against `Double` included (a plain conversion
/// would round 2^53 + 1).
enum JSONNumber {
    /// -1, 0 or 1; `nil` when either side is not a number (or is NaN).
    static func compare(_ a: JSONValue, _ b: JSONValue) -> Int? {
        switch (a, b) {
        case let (.int(x), .int(y)): return x < y ? -1 : (x == y ? 0 : 1)
        case let (.double(x), .double(y)):
            if x.isNaN || y.isNaN { return nil }
            return x < y ? -1 : (x == y ? 0 : 1)
        case let (.int(x), .double(y)): return compare(x, y)
        case let (.double(x), .int(y)): return compare(y, x).map { -$0 }
        default: return nil
        }
    }

    private static func compare(_ i: Int64, _ d: Double) -> Int? {
        if d.isNaN { return nil }
        if d >= 9_223_372_036_854_775_808.0 { return -1 }
        if d < -9_223_372_036_854_775_808.0 { return 1 }
        let whole = d.rounded(.down)
        let t = Int64(whole)  // in range: checked above
        if i < t { return -1 }
        if i > t { return 1 }
        return whole == d ? 0 : -1  // i == floor(d) < d when d has a fraction
    }

    static func isMultiple(_ v: JSONValue, of m: JSONValue) -> Bool {
        switch (v, m) {
        case let (.int(x), .int(y)):
            return y == -1 || x % y == 0
        default:
            guard let x = double(v), let y = double(m) else { return true }
            let q = x / y
            // An infinite quotient (1e308 / 0.123) cannot be a whole multiple we can check:
            // treat it as not a multiple rather than trapping or guessing.
            guard q.isFinite else { return false }
            return q == q.rounded(.towardZero)
        }
    }

    static func double(_ v: JSONValue) -> Double? {
        switch v {
        case let .int(i): Double(i)
        case let .double(d): d
        default: nil
        }
    }
}
