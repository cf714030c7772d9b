import OrderedCollections
import SundialCore

/// Runs a ``SchemaProgram`` over one instance.
///
/// Each check runs in one of two modes: *collecting* (record every violation, used for the
/// result) or *deciding* (stop at the first failure, record nothing: used where only a yes/no
/// matters, inside `not`, `if`, `contains`, and to try `anyOf`/`oneOf` branches). A failed
/// `anyOf`/`oneOf` is re-run collecting, per branch, to pick the errors worth showing.
struct SchemaEvaluator {
    /// Nested evaluations allowed before giving up on an instance: bounds stack use on
    /// pathological input (the config loader bounds nesting long before this).
    static let maximumDepth = 1000

    enum PathToken {
        case key(String)
        case index(Int)
        var string: String {
            switch self {
            case let .key(k): k
            case let .index(i): String(i)
            }
        }
    }

    /// The program's nodes, borrowed for one validation (see ``JSONSchema/validate(_:)``):
    /// reading through a buffer pointer spares a retain/release per node visit.
    let nodes: UnsafeBufferPointer<SchemaNode>
    var path: [PathToken] = []
    var errors: [SchemaViolation] = []
    var depth = 0

    init(nodes: UnsafeBufferPointer<SchemaNode>) { self.nodes = nodes }

    // MARK: - Evaluation

    /// Whether `value` satisfies node `n`; when `collect`, every violation is appended to `errors`.
    mutating func evaluate(_ n: Int, _ value: JSONValue, collect: Bool) -> Bool {
        depth += 1
        defer { depth -= 1 }
        if depth > Self.maximumDepth {
            if collect { report(n, "$ref", "is nested too deeply to validate (more than \(Self.maximumDepth) levels)", .other) }
            return false
        }
        var valid = true
        for check in nodes[n].checks {
            if !apply(check, node: n, value, collect: collect) {
                valid = false
                if !collect { return false }
            }
        }
        return valid
    }

    private mutating func evaluate(_ n: Int, _ value: JSONValue, at token: PathToken, collect: Bool) -> Bool {
        path.append(token)
        defer { path.removeLast() }
        return evaluate(n, value, collect: collect)
    }

    /// Dispatches one check. Checks that recurse get a function each and all assertions share
    /// `applyAssertion`, so that the frames on the recursion path stay small (a debug build
    /// would otherwise reserve stack for every case's locals at every level).
    private mutating func apply(_ check: SchemaCheck, node n: Int, _ v: JSONValue, collect: Bool) -> Bool {
        switch check {
        case let .ref(target): return evaluate(target, v, collect: collect)
        case let .object(oc): return applyObject(oc, node: n, v, collect: collect)
        case let .propertyNames(s): return applyPropertyNames(s, node: n, v, collect: collect)
        case let .dependentSchemas(deps): return applyDependentSchemas(deps, node: n, v, collect: collect)
        case let .items(prefix, rest): return applyItems(prefix: prefix, rest: rest, node: n, v, collect: collect)
        case let .contains(s, minimum, maximum): return applyContains(s, minimum: minimum, maximum: maximum, node: n, v, collect: collect)
        case let .allOf(branches): return applyAllOf(branches, node: n, v, collect: collect)
        case let .anyOf(branches): return applyAnyOf(branches, node: n, v, collect: collect)
        case let .oneOf(branches): return applyOneOf(branches, node: n, v, collect: collect)
        case let .not(s): return applyNot(s, node: n, v, collect: collect)
        case let .conditional(condition, then, otherwise): return applyConditional(condition, then: then, otherwise: otherwise, node: n, v, collect: collect)
        default: return applyAssertion(check, node: n, v, collect: collect)
        }
    }

    private mutating func applyAssertion(_ check: SchemaCheck, node n: Int, _ v: JSONValue, collect: Bool) -> Bool {
        switch check {
        case .never:
            if collect { report(n, "false", notAllowedMessage(), .other) }
            return false

        case let .type(types):
            if types.admits(v) { return true }
            if collect {
                let expected = types.names
                report(n, "type", Self.typeMessage(expected: expected, actual: v), .typeMismatch(expected: expected, actual: Self.typeName(v)))
            }
            return false

        case let .enumeration(allowed):
            if allowed.contains(where: { $0.isJSONEqual(to: v) }) { return true }
            if collect {
                let list = allowed.map(Self.display).joined(separator: ", ")
                report(n, "enum", allowed.count == 1 ? "must be \(list)" : "must be one of: \(list)", .notInEnum(allowed: allowed))
            }
            return false

        case let .constant(c):
            if c.isJSONEqual(to: v) { return true }
            if collect { report(n, "const", "must be \(Self.quoted(c))", .notInEnum(allowed: [c])) }
            return false

        case let .required(names):
            guard case let .object(members) = v else { return true }
            var valid = true
            for name in names where members[name] == nil {
                valid = false
                guard collect else { return false }
                report(n, "required", "missing required key `\(name)`", .missingProperty(name: name))
            }
            return valid

        case let .minProperties(m):
            guard case let .object(members) = v, members.count < m else { return true }
            if collect { report(n, "minProperties", "must have at least \(Self.plural(m, "key")) (found \(members.count))", .other) }
            return false

        case let .maxProperties(m):
            guard case let .object(members) = v, members.count > m else { return true }
            if collect { report(n, "maxProperties", "must have at most \(Self.plural(m, "key")) (found \(members.count))", .other) }
            return false

        case let .dependentRequired(deps):
            guard case let .object(members) = v else { return true }
            var valid = true
            for (key, needed) in deps where members[key] != nil {
                for name in needed where members[name] == nil {
                    valid = false
                    guard collect else { return false }
                    report(n, "dependentRequired", "key `\(name)` is required when `\(key)` is present", .missingProperty(name: name))
                }
            }
            return valid

        case let .minItems(m):
            guard case let .array(items) = v, items.count < m else { return true }
            if collect { report(n, "minItems", "must have at least \(Self.plural(m, "item")) (found \(items.count))", .other) }
            return false

        case let .maxItems(m):
            guard case let .array(items) = v, items.count > m else { return true }
            if collect { report(n, "maxItems", "must have at most \(Self.plural(m, "item")) (found \(items.count))", .other) }
            return false

        case .uniqueItems:
            guard case let .array(items) = v else { return true }
            let duplicates = Self.duplicateIndices(items, all: collect)
            for i in duplicates {
                path.append(.index(i))
                report(n, "uniqueItems", "repeats an earlier item (items must be unique)", .other)
                path.removeLast()
            }
            return duplicates.isEmpty

        case let .minLength(m):
            guard case let .string(s) = v else { return true }
            // utf8.count is O(1) and bounds the scalar count from above.
            if s.utf8.count >= m && (m <= s.utf8.count / 4 || s.unicodeScalars.count >= m) { return true }
            if collect { report(n, "minLength", m == 1 ? "must not be empty" : "must be at least \(Self.plural(m, "character")) long", .other) }
            return false

        case let .maxLength(m):
            guard case let .string(s) = v else { return true }
            if s.utf8.count <= m { return true }
            let length = s.unicodeScalars.count
            if length <= m { return true }
            if collect { report(n, "maxLength", "must be at most \(Self.plural(m, "character")) long (found \(length))", .other) }
            return false

        case let .pattern(p):
            guard case let .string(s) = v, !p.matches(s) else { return true }
            if collect {
                let shown = nodes[n].writeOnly ? "the value (not shown: it may hold a secret)" : Self.quoted(v)
                report(n, "pattern", "\(shown) does not match the pattern `\(p.source)`", .patternMismatch(pattern: p.source))
            }
            return false

        case let .minimum(limit):
            return bound(v, limit, ok: { $0 >= 0 }, node: n, "minimum", "must be at least", collect)
        case let .maximum(limit):
            return bound(v, limit, ok: { $0 <= 0 }, node: n, "maximum", "must be at most", collect)
        case let .exclusiveMinimum(limit):
            return bound(v, limit, ok: { $0 > 0 }, node: n, "exclusiveMinimum", "must be greater than", collect)
        case let .exclusiveMaximum(limit):
            return bound(v, limit, ok: { $0 < 0 }, node: n, "exclusiveMaximum", "must be less than", collect)

        case let .multipleOf(m):
            guard JSONNumber.double(v) != nil, !JSONNumber.isMultiple(v, of: m) else { return true }
            if collect { report(n, "multipleOf", "must be a multiple of \(m.jsonText)", .other) }
            return false

        default:
            return true  // recursive checks are dispatched by `apply`
        }
    }

    private mutating func applyPropertyNames(_ s: Int, node n: Int, _ v: JSONValue, collect: Bool) -> Bool {
        guard case let .object(members) = v else { return true }
        var valid = true
        for key in members.keys {
            let start = errors.count
            if !evaluate(s, .string(key), at: .key(key), collect: collect) {
                valid = false
                if !collect { return false }
                for i in start..<errors.count { errors[i].message = "key name " + errors[i].message }
            }
        }
        return valid
    }

    private mutating func applyDependentSchemas(_ deps: [(String, Int)], node n: Int, _ v: JSONValue, collect: Bool) -> Bool {
        guard case let .object(members) = v else { return true }
        var valid = true
        for (key, s) in deps where members[key] != nil {
            if !evaluate(s, v, collect: collect) {
                valid = false
                if !collect { return false }
            }
        }
        return valid
    }

    private mutating func applyItems(prefix: [Int], rest: Int?, node n: Int, _ v: JSONValue, collect: Bool) -> Bool {
        guard case let .array(items) = v else { return true }
        var valid = true
        for (i, item) in items.enumerated() {
            let s: Int
            if i < prefix.count { s = prefix[i] } else if let rest { s = rest } else { break }
            if !evaluate(s, item, at: .index(i), collect: collect) {
                valid = false
                if !collect { return false }
            }
        }
        return valid
    }

    private mutating func applyContains(_ s: Int, minimum: Int, maximum: Int?, node n: Int, _ v: JSONValue, collect: Bool) -> Bool {
        guard case let .array(items) = v else { return true }
        if minimum == 0 && maximum == nil { return true }
        var matches = 0
        for (i, item) in items.enumerated() where evaluate(s, item, at: .index(i), collect: false) {
            matches += 1
            if maximum == nil && matches >= minimum { return true }
        }
        if matches < minimum {
            if collect {
                report(n, "contains", "must contain at least \(Self.plural(minimum, "item")) of the required form (found \(matches))", .other)
            }
            return false
        }
        if let maximum, matches > maximum {
            if collect { report(n, "maxContains", "must contain at most \(Self.plural(maximum, "item")) of the given form (found \(matches))", .other) }
            return false
        }
        return true
    }

    private mutating func applyAllOf(_ branches: [Int], node n: Int, _ v: JSONValue, collect: Bool) -> Bool {
        var valid = true
        for b in branches where !evaluate(b, v, collect: collect) {
            valid = false
            if !collect { return false }
        }
        return valid
    }

    private mutating func applyAnyOf(_ branches: [Int], node n: Int, _ v: JSONValue, collect: Bool) -> Bool {
        for b in branches where evaluate(b, v, collect: false) { return true }
        if collect { reportBestBranch(branches, node: n, keyword: "anyOf", v) }
        return false
    }

    private mutating func applyOneOf(_ branches: [Int], node n: Int, _ v: JSONValue, collect: Bool) -> Bool {
        var matched: [Int] = []
        for (i, b) in branches.enumerated() where evaluate(b, v, collect: false) {
            matched.append(i)
            if matched.count > 1 && !collect { return false }
        }
        if matched.count == 1 { return true }
        if collect {
            if matched.isEmpty {
                reportBestBranch(branches, node: n, keyword: "oneOf", v)
            } else {
                report(n, "oneOf", severalMessage(matched.map { branches[$0] }), .matchesSeveral(branches: matched))
            }
        }
        return false
    }

    private mutating func applyNot(_ s: Int, node n: Int, _ v: JSONValue, collect: Bool) -> Bool {
        guard evaluate(s, v, collect: false) else { return true }
        if collect { report(n, "not", notMessage(s), .other) }
        return false
    }

    private mutating func applyConditional(_ condition: Int, then: Int?, otherwise: Int?, node n: Int, _ v: JSONValue, collect: Bool) -> Bool {
        let branch = evaluate(condition, v, collect: false) ? then : otherwise
        guard let branch else { return true }
        return evaluate(branch, v, collect: collect)
    }

    private mutating func applyObject(_ oc: ObjectCheck, node n: Int, _ v: JSONValue, collect: Bool) -> Bool {
        guard case let .object(members) = v else { return true }
        var valid = true
        for (key, value) in members {
            var matched = false
            if let s = oc.properties[key] {
                matched = true
                if !evaluate(s, value, at: .key(key), collect: collect) {
                    valid = false
                    if !collect { return false }
                }
            }
            for (pattern, s) in oc.patterns where pattern.matches(key) {
                matched = true
                if !evaluate(s, value, at: .key(key), collect: collect) {
                    valid = false
                    if !collect { return false }
                }
            }
            guard !matched, let additional = oc.additional else { continue }
            if oc.additionalIsFalse {
                valid = false
                guard collect else { return false }
                path.append(.key(key))
                report(n, "additionalProperties", "unknown key `\(key)`", .unknownProperty(name: key, allowed: oc.propertyOrder))
                path.removeLast()
            } else if !evaluate(additional, value, at: .key(key), collect: collect) {
                valid = false
                if !collect { return false }
            }
        }
        return valid
    }

    private mutating func bound(_ v: JSONValue, _ limit: JSONValue, ok: (Int) -> Bool, node n: Int, _ keyword: String, _ phrase: String, _ collect: Bool)
        -> Bool
    {
        // YAML has `.nan`, which JSON lacks and no bound admits (it compares with nothing: a
        // `jitter: .nan` passed `minimum` and `maximum` both).
        if case let .double(d) = v, d.isNaN {
            if collect { report(n, keyword, "\(phrase) \(limit.jsonText) (found .nan)", .other) }
            return false
        }
        guard let c = JSONNumber.compare(v, limit), !ok(c) else { return true }
        if collect { report(n, keyword, "\(phrase) \(limit.jsonText) (found \(Self.numberText(v)))", .other) }
        return false
    }

    /// A number as the file may write it: JSON has no infinity (`1e400` reads as one), so it
    /// is shown as YAML's `.inf`, not as JSON's `null`.
    static func numberText(_ v: JSONValue) -> String {
        if case let .double(d) = v, d.isInfinite { return d > 0 ? ".inf" : "-.inf" }
        return v.jsonText
    }

    // MARK: - Reporting

    private var pathStrings: [String] { path.map(\.string) }

    private mutating func report(_ n: Int, _ keyword: String, _ message: String, _ kind: SchemaViolation.Kind) {
        let location = nodes[n].location
        errors.append(
            SchemaViolation(
                instancePath: pathStrings,
                schemaPath: keyword == "false" ? location : location + [keyword],
                keyword: keyword, message: message, kind: kind, writeOnly: nodes[n].writeOnly))
    }

    private func notAllowedMessage() -> String {
        switch path.last {
        case let .key(k)?: "key `\(k)` is not allowed here"
        case let .index(i)?: "item \(i) is not allowed here"
        case nil: "no value is allowed here"
        }
    }

    /// For a failed `anyOf`/`oneOf`, reports the errors of the branch the user most likely
    /// meant, like Python jsonschema's `best_match`, instead of every branch's complaints:
    /// 1. if every branch rejects the value's type, one message listing the accepted types;
    /// 2. else, only branches that accept the value's type are candidates; with one, report it;
    /// 3. if each candidate only misses one key, one message naming the alternatives;
    /// 4. else the candidate whose deepest error is deepest (it got furthest into the value),
    ///    then the one with fewest errors, then the first.
    private mutating func reportBestBranch(_ branches: [Int], node n: Int, keyword: String, _ v: JSONValue) {
        let here = pathStrings
        var perBranch: [[SchemaViolation]] = []
        for b in branches {
            let start = errors.count
            _ = evaluate(b, v, collect: true)
            perBranch.append(Array(errors[start...]))
            errors.removeSubrange(start...)
        }
        func isTypeErrorHere(_ e: SchemaViolation) -> Bool {
            if case .typeMismatch = e.kind { return e.instancePath == here }
            return false
        }
        let candidates = perBranch.indices.filter { !perBranch[$0].contains(where: isTypeErrorHere) }
        if candidates.isEmpty {
            var expected: [String] = []
            for errs in perBranch {
                for e in errs {
                    if case let .typeMismatch(types, _) = e.kind, e.instancePath == here {
                        for t in types where !expected.contains(t) { expected.append(t) }
                    }
                }
            }
            report(n, keyword, Self.typeMessage(expected: expected, actual: v), .typeMismatch(expected: expected, actual: Self.typeName(v)))
            return
        }
        if candidates.count == 1 {
            errors.append(contentsOf: perBranch[candidates[0]])
            return
        }
        let missing = candidates.compactMap { i -> String? in
            let errs = perBranch[i]
            guard errs.count == 1, errs[0].instancePath == here, case let .missingProperty(name) = errs[0].kind else { return nil }
            return name
        }
        if missing.count == candidates.count {
            var names: [String] = []
            for m in missing where !names.contains(m) { names.append(m) }
            report(n, keyword, "missing required key \(names.map { "`\($0)`" }.joined(separator: " or "))", .missingProperty(name: names[0]))
            return
        }
        let best = candidates.min { a, b in
            let da = perBranch[a].map(\.instancePath.count).max() ?? 0
            let db = perBranch[b].map(\.instancePath.count).max() ?? 0
            if da != db { return da > db }
            if perBranch[a].count != perBranch[b].count { return perBranch[a].count < perBranch[b].count }
            return a < b
        }!
        errors.append(contentsOf: perBranch[best])
    }

    /// The single key a branch requires, when that is all the branch says (`{required: [x]}`).
    private func soleRequiredKeys(_ s: Int) -> [String]? {
        let checks = nodes[s].checks
        guard checks.count == 1 else { return nil }
        switch checks[0] {
        case let .required(names): return names
        case let .ref(t) where t != s: return soleRequiredKeys(t)
        default: return nil
        }
    }

    private func branchName(_ s: Int) -> String? {
        if let t = nodes[s].title { return t }
        if nodes[s].checks.count == 1, case let .ref(t) = nodes[s].checks[0] { return nodes[t].title }
        return nil
    }

    private func severalMessage(_ matched: [Int]) -> String {
        let keys = matched.compactMap(soleRequiredKeys)
        if keys.count == matched.count, keys.allSatisfy({ $0.count == 1 }) {
            return "use only one of \(keys.map { "`\($0[0])`" }.joined(separator: ", "))"
        }
        let names = matched.enumerated().map { i, s in branchName(s).map { "`\($0)`" } ?? "alternative \(i + 1)" }
        return "matches more than one alternative (\(names.joined(separator: ", "))); it must match exactly one"
    }

    private func notMessage(_ s: Int) -> String {
        if let keys = soleRequiredKeys(s) {
            if keys.count == 1 { return "key `\(keys[0])` is not allowed here" }
            return "keys \(keys.map { "`\($0)`" }.joined(separator: " and ")) cannot be used together"
        }
        if let title = branchName(s) { return "must not be \(title)" }
        return "is not allowed here (it matches an excluded form)"
    }

    // MARK: - Wording

    static func typeName(_ v: JSONValue) -> String {
        switch v {
        case .null: "null"
        case .bool: "boolean"
        case .int: "integer"
        case .double: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    /// "a string", "an integer", "a list", "a map": the YAML user's words.
    static func article(forTypeName t: String) -> String {
        switch t {
        case "null": "null"
        case "boolean": "a boolean (true or false)"
        case "integer": "an integer"
        case "number": "a number"
        case "string": "a string"
        case "array": "a list"
        case "object": "a map"
        default: t
        }
    }

    static func article(for v: JSONValue) -> String {
        switch v {
        case .bool: "a boolean"
        case .double(let d) where d == d.rounded(.towardZero): "a number"
        default: article(forTypeName: typeName(v))
        }
    }

    static func typeMessage(expected: [String], actual v: JSONValue) -> String {
        // "integer or number" says no more than "number".
        let shown = expected.contains("number") ? expected.filter { $0 != "integer" } : expected
        let words = shown.map(article(forTypeName:))
        let list: String
        switch words.count {
        case 0: list = "nothing"
        case 1: list = words[0]
        default: list = words.dropLast().joined(separator: ", ") + " or " + words.last!
        }
        return "expected \(list), found \(article(for: v))"
    }

    /// Enum values as a reader types them: strings bare, everything else as JSON.
    static func display(_ v: JSONValue) -> String {
        if case let .string(s) = v { return s }
        return v.jsonText
    }

    /// A value in backquotes, shortened if long.
    static func quoted(_ v: JSONValue) -> String {
        var text = display(v)
        if text.count > 60 { text = String(text.prefix(57)) + "..." }
        return "`\(text)`"
    }

    static func plural(_ n: Int, _ noun: String) -> String { n == 1 ? "1 \(noun)" : "\(n) \(noun)s" }

    // MARK: - uniqueItems

    /// Indices of items equal (in the JSON sense) to an earlier item; only the first when `!all`.
    /// Buckets by a hash consistent with ``JSONValue/isJSONEqual(to:)`` so long arrays are not
    /// compared pairwise.
    static func duplicateIndices(_ items: [JSONValue], all: Bool) -> [Int] {
        var out: [Int] = []
        if items.count <= 16 {
            for j in items.indices.dropFirst() where items[..<j].contains(where: { $0.isJSONEqual(to: items[j]) }) {
                out.append(j)
                if !all { break }
            }
            return out
        }
        var buckets: [Int: [Int]] = [:]
        for (j, item) in items.enumerated() {
            let h = jsonHash(item)
            if let earlier = buckets[h], earlier.contains(where: { items[$0].isJSONEqual(to: item) }) {
                out.append(j)
                if !all { break }
                continue
            }
            buckets[h, default: []].append(j)
        }
        return out
    }

    /// Equal under `isJSONEqual` implies equal hashes: numbers hash as `Double`, objects ignore order.
    static func jsonHash(_ v: JSONValue) -> Int {
        var h = Hasher()
        switch v {
        case .null: h.combine(0)
        case let .bool(b):
            h.combine(1)
            h.combine(b)
        case let .int(i):
            h.combine(2)
            h.combine(Double(i))
        case let .double(d):
            h.combine(2)
            h.combine(d)
        case let .string(s):
            h.combine(3)
            h.combine(s)
        case let .array(a):
            h.combine(4)
            h.combine(a.count)
            for x in a { h.combine(jsonHash(x)) }
        case let .object(o):
            h.combine(5)
            var sum = 0
            for (k, x) in o {
                var e = Hasher()
                e.combine(k)
                e.combine(jsonHash(x))
                sum &+= e.finalize()
            }
            h.combine(sum)
        }
        return h.finalize()
    }
}
