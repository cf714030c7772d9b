import SundialCore

/// A YAML node with its source position: the tree every later stage reads.
///
/// Why our own tree instead of `Yams.Node`: Sundial needs every value's `file:line:column`
/// after alias expansion and with YAML 1.2 core-schema typing (`on`, `yes` and `no` stay
/// strings), and it must bound the size of the expanded tree (an alias bomb must fail fast).
public struct YAMLNode: Sendable {
    public enum Kind: Sendable {
        /// A scalar and whether it was written plain (unquoted, so it may be a number, bool or null).
        case scalar(String, plain: Bool)
        case sequence([YAMLNode])
        case mapping([(key: YAMLNode, value: YAMLNode)])
    }

    public var kind: Kind
    public var location: SourceLocation
    /// Where the node ends, as libyaml marks it (1-based): just past the last character of a
    /// plain or quoted scalar and of a flow collection, but where the next token starts (after
    /// that line's indentation, or at the end of the file) for a block scalar (`|`, `>`) and a
    /// block collection. So the node's last line is `endLine`, or the line before it when
    /// nothing but blanks precedes `endColumn` on it (``ConfigLoader`` reads the file's bytes
    /// for that, only for the nodes that need it). Kept so that every line of a multi-line
    /// secret is known, not only its first.
    public var endLine: Int
    public var endColumn: Int

    public init(_ kind: Kind, at location: SourceLocation) {
        self.kind = kind
        self.location = location
        self.endLine = location.line
        self.endColumn = location.column
    }

    init(_ kind: Kind, at location: SourceLocation, end: YAMLMark) {
        self.kind = kind
        self.location = location
        self.endLine = end.line
        self.endColumn = end.column
    }

    /// Whether `text` holds a NUL byte, read from the string's bytes in place.
    static func containsNUL(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { $0.contains(0) }
    }

    /// The scalar's text, if this is a scalar.
    public var scalarText: String? {
        if case let .scalar(s, _) = kind { return s }
        return nil
    }

    /// The value for `key` in a mapping.
    public subscript(key: String) -> YAMLNode? {
        guard case let .mapping(pairs) = kind else { return nil }
        return pairs.first { $0.key.scalarText == key }?.value
    }

    /// The key node for `key` in a mapping (to point at a misspelt key rather than its value).
    public func keyNode(_ key: String) -> YAMLNode? {
        guard case let .mapping(pairs) = kind else { return nil }
        return pairs.first { $0.key.scalarText == key }?.key
    }

    /// Mapping entries keyed by their scalar text, in file order.
    public var entries: [(key: String, keyNode: YAMLNode, value: YAMLNode)] {
        guard case let .mapping(pairs) = kind else { return [] }
        return pairs.map { ($0.key.scalarText ?? "", $0.key, $0.value) }
    }

    /// The node at a JSON pointer (as token list), or the deepest existing ancestor.
    public func node(at pointer: [String]) -> YAMLNode {
        var current = self
        for token in pointer {
            switch current.kind {
            case .mapping:
                guard let next = current[token] else { return current }
                current = next
            case let .sequence(items):
                guard let i = Int(token), items.indices.contains(i) else { return current }
                current = items[i]
            case .scalar:
                return current
            }
        }
        return current
    }

    /// A short description of the node's type for messages ("a string", "a list").
    public var typeDescription: String {
        switch kind {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case let .scalar(s, plain):
            switch plain ? YAMLNode.resolvePlain(s) : .string(s) {
            case .null: return "nothing (null)"
            case .bool: return "a boolean"
            case .int: return "an integer"
            case .double: return "a number"
            default: return "a string"
            }
        }
    }
}

// MARK: - YAML 1.2 core schema

extension YAMLNode {
    /// Resolves a plain scalar per the YAML 1.2 core schema: `null ~`, `true false`, decimal,
    /// octal (`0o`) and hex (`0x`) integers, floats, `.inf`, `.nan`; anything else is a string.
    ///
    /// Hand-written because Yams' resolver follows YAML 1.1 (where `on`, `yes` and `no` are
    /// booleans, a trap for keys like `on:`) and matches each scalar against seven
    /// `NSRegularExpression`s, which dominated the cost of validating 10,000 jobs.
    public static func resolvePlain(_ s: String) -> JSONValue {
        // Most plain scalars in job files are ids, paths and words: a first byte that no null,
        // bool or number starts with settles them without the string comparisons below.
        guard let f = s.utf8.first else { return .null }
        if !Self.mayStartNonString[Int(f)] { return .string(s) }
        // The literals below are at most five bytes and none starts with a digit: durations
        // (`30s`), numbers and longer words skip the comparisons, one per literal.
        let mayBeLiteral = (f < UInt8(ascii: "0") || f > UInt8(ascii: "9")) && s.utf8.count <= 5
        if mayBeLiteral {
            switch s {
            case "~", "null", "Null", "NULL": return .null
            case "true", "True", "TRUE": return .bool(true)
            case "false", "False", "FALSE": return .bool(false)
            case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .double(.infinity)
            case "-.inf", "-.Inf", "-.INF": return .double(-.infinity)
            case ".nan", ".NaN", ".NAN": return .double(.nan)
            default: break
            }
        }
        // The bytes in place (no copy into an array: this runs for every duration and number).
        var text = s
        return text.withUTF8 { u in resolveNumber(s, u) }
    }

    private static func resolveNumber(_ s: String, _ u: UnsafeBufferPointer<UInt8>) -> JSONValue {
        guard let f = u.first, f == UInt8(ascii: "-") || f == UInt8(ascii: "+") || f == UInt8(ascii: ".") || (f >= 48 && f <= 57) else {
            return .string(s)
        }
        if u.count > 2, u[0] == 48, u[1] == UInt8(ascii: "o") {
            if let v = Int64(String(decoding: UnsafeBufferPointer(rebasing: u[2...]), as: UTF8.self), radix: 8) { return .int(v) }
            return .string(s)
        }
        if u.count > 2, u[0] == 48, u[1] == UInt8(ascii: "x") {
            if let v = Int64(String(decoding: UnsafeBufferPointer(rebasing: u[2...]), as: UTF8.self), radix: 16) { return .int(v) }
            return .string(s)
        }
        var i = 0
        if u[i] == UInt8(ascii: "-") || u[i] == UInt8(ascii: "+") { i += 1 }
        let digitsStart = i
        while i < u.count, u[i] >= 48, u[i] <= 57 { i += 1 }
        if i == u.count, i > digitsStart {
            if let v = Int64(s) { return .int(v) }
            return Double(s).map { .double($0) } ?? .string(s)
        }
        // Float: [-+]? ( . [0-9]+ | [0-9]+ ( . [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
        var sawDigits = i > digitsStart
        if i < u.count, u[i] == UInt8(ascii: ".") {
            i += 1
            let fracStart = i
            while i < u.count, u[i] >= 48, u[i] <= 57 { i += 1 }
            sawDigits = sawDigits || i > fracStart
        }
        guard sawDigits else { return .string(s) }
        if i < u.count, u[i] == UInt8(ascii: "e") || u[i] == UInt8(ascii: "E") {
            i += 1
            if i < u.count, u[i] == UInt8(ascii: "-") || u[i] == UInt8(ascii: "+") { i += 1 }
            let expStart = i
            while i < u.count, u[i] >= 48, u[i] <= 57 { i += 1 }
            guard i > expStart else { return .string(s) }
        }
        guard i == u.count, let d = Double(s) else { return .string(s) }
        return .double(d)
    }

    /// First bytes of the plain scalars that may resolve to something other than a string:
    /// `~`, `n`/`N` (null), `t`/`T`/`f`/`F` (bools), `.`, `+`, `-` and digits (numbers, `.inf`).
    private static let mayStartNonString: [Bool] = (0..<256).map { b in
        "~nNtTfF.+-0123456789".utf8.contains(UInt8(b))
    }

    /// The node as a JSON value (for schema validation). Mapping keys are always strings.
    public func jsonValue() -> JSONValue {
        switch kind {
        case let .scalar(s, plain): return plain ? YAMLNode.resolvePlain(s) : .string(s)
        case let .sequence(items): return .array(items.map { $0.jsonValue() })
        case let .mapping(pairs):
            var o = OrderedDictionaryBuilder(capacity: pairs.count)
            for (k, v) in pairs { o.set(k.scalarText ?? k.jsonValue().jsonText, v.jsonValue()) }
            return .object(o.dictionary)
        }
    }
}
