import SundialCore
import Yams

/// Reads one YAML document into a positioned ``YAMLNode`` tree, within hard limits.
///
/// Every failure is a ``Diagnostic`` with a position; nothing here traps or hangs on hostile
/// input: binary junk, invalid UTF-8, huge files, alias bombs and absurd nesting are refused
/// before or while parsing.
public struct YAMLReader: Sendable {
    /// Limits that keep a hostile file from costing the agent memory or stack.
    public struct Limits: Sendable {
        /// Largest file accepted, in bytes.
        public var maxBytes: Int = 4 * 1024 * 1024
        /// Deepest nesting accepted (job files need about 6).
        public var maxDepth: Int = 64
        /// Most nodes after alias expansion (defeats "billion laughs").
        public var maxNodes: Int = 1_000_000
        public init() {}
    }

    public var limits: Limits

    public init(limits: Limits = Limits()) { self.limits = limits }

    /// Parses `bytes` (the file's content) from `file`. Returns `nil` and diagnostics on failure.
    public func read(bytes: [UInt8], file: String) -> (node: YAMLNode?, diagnostics: [Diagnostic]) {
        func fail(_ line: Int, _ column: Int, _ message: String, hint: String? = nil) -> (YAMLNode?, [Diagnostic]) {
            (nil, [Diagnostic(at: SourceLocation(file: file, line: line, column: column), message, hint: hint)])
        }
        guard bytes.count <= limits.maxBytes else {
            return fail(1, 1, "file is \(bytes.count) bytes, larger than the limit of \(limits.maxBytes) bytes",
                        hint: "split the jobs over several files")
        }
        if let nul = bytes.firstIndex(of: 0) {
            let (l, c) = Self.lineColumn(of: nul, in: bytes)
            return fail(l, c, "file contains a NUL byte: this looks like a binary file, not YAML")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            let bad = Self.firstInvalidUTF8Offset(bytes)
            let (l, c) = Self.lineColumn(of: bad, in: bytes)
            return fail(l, c, "file is not valid UTF-8 (byte 0x\(String(bytes[bad], radix: 16)) at offset \(bad))",
                        hint: "save the file as UTF-8")
        }
        if let problem = Self.nestingProblem(bytes, maxDepth: limits.maxDepth) {
            return fail(problem.line, problem.column, "nesting is deeper than the limit of \(limits.maxDepth) levels")
        }
        let root: Yams.Node?
        do {
            // `.basic`: no implicit typing by Yams (see `YAMLNode.resolvePlain` for why).
            let parser = try Yams.Parser(yaml: text, resolver: .basic, constructor: .default, encoding: .utf8)
            root = try parser.singleRoot()
        } catch let error as YamlError {
            return (nil, [Self.diagnostic(for: error, file: file)])
        } catch {
            return fail(1, 1, "cannot parse YAML: \(error)")
        }
        guard let root else {
            return fail(1, 1, "file is empty (or holds only comments)",
                        hint: "a job file needs at least `version: 1` and `jobs:`")
        }
        var budget = limits.maxNodes
        var overflow: SourceLocation?
        let node = convert(root, file: file, depth: 0, budget: &budget, overflow: &overflow)
        if let overflow {
            return (nil, [Diagnostic(at: overflow, "the document expands to more than \(limits.maxNodes) nodes (aliases expanding exponentially?)",
                                     hint: "remove the repeated aliases")])
        }
        return (node, [])
    }

    private func convert(_ n: Yams.Node, file: String, depth: Int, budget: inout Int, overflow: inout SourceLocation?) -> YAMLNode {
        let mark = n.mark
        let loc = SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1)
        budget -= 1
        guard budget >= 0, depth <= limits.maxDepth else {
            if overflow == nil { overflow = loc }
            return YAMLNode(.scalar("", plain: false), at: loc)
        }
        switch n {
        case let .scalar(s):
            // Quoted scalars are strings; plain ones are typed by the YAML 1.2 core schema.
            // (Yams' `.basic` resolver tags everything `str`, so an explicit `!!str 5` is not
            // distinguishable here and still reads as 5: quote it instead.)
            let plain = s.style == .plain
            return YAMLNode(.scalar(s.string, plain: plain), at: loc)
        case let .sequence(seq):
            var items: [YAMLNode] = []
            items.reserveCapacity(seq.count)
            for item in seq {
                items.append(convert(item, file: file, depth: depth + 1, budget: &budget, overflow: &overflow))
                if overflow != nil { break }
            }
            return YAMLNode(.sequence(items), at: loc)
        case let .mapping(map):
            var pairs: [(key: YAMLNode, value: YAMLNode)] = []
            pairs.reserveCapacity(map.count)
            for (k, v) in map {
                let key = convert(k, file: file, depth: depth + 1, budget: &budget, overflow: &overflow)
                let value = convert(v, file: file, depth: depth + 1, budget: &budget, overflow: &overflow)
                pairs.append((key, value))
                if overflow != nil { break }
            }
            return YAMLNode(.mapping(pairs), at: loc)
        case .alias:
            return YAMLNode(.scalar("", plain: false), at: loc)
        }
    }

    // MARK: - Pre-checks

    /// Finds where nesting exceeds `maxDepth`, before the (recursive) YAML composer sees it.
    ///
    /// An estimate that errs towards depth: flow brackets outside quotes and comments, plus
    /// block indentation (in steps of two columns) and chained `- ` sequence entries on a line.
    /// A job file needs about six levels; the limit is ten times that, so only pathological
    /// input (10,000 `[`, or `- - - - …`) is refused here.
    static func nestingProblem(_ b: [UInt8], maxDepth: Int) -> (line: Int, column: Int)? {
        var line = 1, col = 0
        var flow = 0
        var inSingle = false, inDouble = false, inComment = false
        var atLineStart = true
        var indent = 0
        var dashes = 0
        var i = 0
        while i < b.count {
            let c = b[i]
            col += 1
            if c == 0x0A {
                line += 1; col = 0; inComment = false; atLineStart = true; indent = 0; dashes = 0
                if flow == 0 { inSingle = false; inDouble = false }
                i += 1
                continue
            }
            if inComment { i += 1; continue }
            if atLineStart {
                if c == 0x20 { indent += 1; i += 1; continue }
                if c == UInt8(ascii: "-"), i + 1 < b.count, b[i + 1] == 0x20 || b[i + 1] == 0x0A {
                    dashes += 1
                    if indent / 2 + dashes > maxDepth { return (line, col) }
                    i += 1
                    continue
                }
                atLineStart = false
                if indent / 2 + dashes > maxDepth { return (line, col) }
            }
            if inDouble {
                if c == UInt8(ascii: "\\") { i += 2; col += 1; continue }
                if c == UInt8(ascii: "\"") { inDouble = false }
            } else if inSingle {
                if c == UInt8(ascii: "'") { inSingle = false }
            } else {
                switch c {
                case UInt8(ascii: "\""): if col == 1 || b[i - 1] == 0x20 || b[i - 1] == UInt8(ascii: "[") || b[i - 1] == UInt8(ascii: "{") || b[i - 1] == UInt8(ascii: ",") { inDouble = true }
                case UInt8(ascii: "'"): if col == 1 || b[i - 1] == 0x20 || b[i - 1] == UInt8(ascii: "[") || b[i - 1] == UInt8(ascii: "{") || b[i - 1] == UInt8(ascii: ",") { inSingle = true }
                case UInt8(ascii: "#"): if col == 1 || b[i - 1] == 0x20 || b[i - 1] == 0x09 { inComment = true }
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    flow += 1
                    if flow + indent / 2 > maxDepth { return (line, col) }
                case UInt8(ascii: "]"), UInt8(ascii: "}"): flow = max(0, flow - 1)
                default: break
                }
            }
            i += 1
        }
        return nil
    }

    static func firstInvalidUTF8Offset(_ b: [UInt8]) -> Int {
        var i = 0
        while i < b.count {
            let c = b[i]
            let len = c < 0x80 ? 1 : c >= 0xF0 && c < 0xF5 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0
            guard len > 0, i + len <= b.count else { return i }
            for j in 1..<len where b[i + j] & 0xC0 != 0x80 { return i }
            if len > 1, String(validating: b[i..<(i + len)], as: UTF8.self) == nil { return i }
            i += len
        }
        return max(0, b.count - 1)
    }

    static func lineColumn(of offset: Int, in b: [UInt8]) -> (Int, Int) {
        var line = 1, col = 1
        for i in 0..<min(offset, b.count) {
            if b[i] == 0x0A { line += 1; col = 1 } else if b[i] & 0xC0 != 0x80 { col += 1 }
        }
        return (line, col)
    }

    // MARK: - Yams errors

    static func diagnostic(for error: YamlError, file: String) -> Diagnostic {
        func at(_ m: Mark) -> SourceLocation { SourceLocation(file: file, line: max(1, m.line), column: max(1, m.column)) }
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            var message = problem
            if let context { message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))" }
            var hint: String?
            if problem.contains("tab") { hint = "indent with spaces; YAML does not allow tabs for indentation" }
            if problem.contains("undefined alias") { hint = "define the anchor (&name) before using *name" }
            return Diagnostic(at: at(mark), "invalid YAML: " + message, hint: hint)
        case let .duplicatedKeysInMapping(duplicates, context):
            let keys = duplicates.map { "`\($0)`" }.joined(separator: ", ")
            return Diagnostic(at: at(context.mark), "duplicate key \(keys) in the same mapping",
                              hint: "YAML parsers disagree on which copy wins; keep one")
        case let .reader(problem, offset, value, _):
            return Diagnostic(at: SourceLocation(file: file, line: 1, column: 1),
                              "cannot read the file as text: \(problem) (value \(value)\(offset.map { " at offset \($0)" } ?? ""))")
        default:
            return Diagnostic(at: SourceLocation(file: file, line: 1, column: 1), "cannot parse YAML: \(error)")
        }
    }
}
