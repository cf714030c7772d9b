import SundialCore

/// Reads one YAML document into a positioned ``YAMLNode`` tree, within hard limits.
///
/// Every failure is a ``Diagnostic`` with a position; nothing here traps or hangs on hostile
/// input: binary junk, invalid UTF-8 and huge files are refused before parsing; alias bombs and
/// absurd nesting while parsing. Parsing is Debian's libyaml (event API, `YAMLEventParser`);
/// the tree is built by `YAMLComposer` with an explicit stack, so its depth never costs the
/// thread's stack.
public struct YAMLReader: Sendable {
    /// Limits that keep a hostile file from costing the agent memory or stack.
    public struct Limits: Sendable {
        /// Largest file accepted, in bytes.
        public var maxBytes: Int = 4 * 1024 * 1024
        /// Deepest nesting accepted (job files need about 6).
        public var maxDepth: Int = 64
        /// Most nodes after alias expansion (defeats "billion laughs").
        public var maxNodes: Int = 1_000_000
        /// Most scalar bytes after alias expansion: four times the largest file. Aliases of a
        /// long scalar are few nodes but many bytes, which every later stage reads.
        public var maxExpandedBytes: Int = 16 * 1024 * 1024
        public init() {}
    }

    public var limits: Limits

    public init(limits: Limits = Limits()) { self.limits = limits }

    /// Parses `bytes` (the file's content) from `file`. Returns `nil` and diagnostics on failure.
    public func read(bytes: [UInt8], file: String) -> (node: YAMLNode?, diagnostics: [Diagnostic]) {
        let r = readCounting(bytes: bytes, file: file)
        return (r.node, r.diagnostics)
    }

    /// ``read(bytes:file:)`` and the document's scalar bytes after alias expansion (what the
    /// loader counts over all files against ``ConfigLoader/maxExpandedBytes``).
    public func readCounting(bytes: [UInt8], file: String) -> (node: YAMLNode?, diagnostics: [Diagnostic], expandedBytes: Int) {
        let r = read(bytes: bytes, file: file, allowance: nil)
        return (r.node, r.diagnostics, r.expandedBytes)
    }

    /// A document read within what the load's other files leave it.
    struct Reading {
        var node: YAMLNode?
        var diagnostics: [Diagnostic] = []
        /// Scalar bytes after alias expansion, as far as the document was read.
        var expandedBytes = 0
        /// Why the document was not read to its end for the load's total, if it was not.
        var stop: Stop?

        enum Stop: Equatable {
            /// The load's total is crossed at this node (``ExpansionGrant/stop(exact:)``).
            case crossed(SourceLocation, exact: Bool)
            /// An earlier file crossed it.
            case abandoned
        }
    }

    /// ``readCounting(bytes:file:)``, counting the expanded bytes against `allowance` too
    /// (``ExpansionBudget``).
    func read(bytes: [UInt8], file: String, allowance: ((Int) -> ExpansionGrant)?) -> Reading {
        func fail(_ line: Int, _ column: Int, _ message: String, hint: String? = nil) -> Reading {
            Reading(diagnostics: [Diagnostic(at: SourceLocation(file: file, line: line, column: column), message, hint: hint)])
        }
        // A UTF-8 byte order mark, which YAML allows and some Windows editors write: libyaml
        // skips one only when it detects the encoding itself, and it is told UTF-8 here (so
        // that nothing else is ever guessed), so the mark goes first. It has no width: columns
        // on the first line are the same with it or without.
        // Sizes and offsets in messages are the file's own, mark included.
        guard bytes.count <= limits.maxBytes else {
            return fail(
                1, 1, "file is \(bytes.count) bytes, larger than the limit of \(limits.maxBytes) bytes",
                hint: "split the jobs over several files")
        }
        let mark = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        let bytes = mark > 0 ? Array(bytes.dropFirst(mark)) : bytes
        if let nul = bytes.firstIndex(of: 0) {
            let (l, c) = Self.lineColumn(of: nul, in: bytes)
            return fail(l, c, "file contains a NUL byte: this looks like a binary file, not YAML")
        }
        guard String(validating: bytes, as: UTF8.self) != nil else {
            let bad = Self.firstInvalidUTF8Offset(bytes)
            let (l, c) = Self.lineColumn(of: bad, in: bytes)
            return fail(
                l, c, "file is not valid UTF-8 (byte 0x\(String(bytes[bad], radix: 16)) at offset \(bad + mark))",
                hint: "save the file as UTF-8")
        }
        var composer = YAMLComposer(file: file, limits: limits, allowance: allowance)
        let root: YAMLNode?
        do throws(YAMLComposer.Failure) {
            root = try YAMLEventParser.withParser(bytes: bytes) { parser throws(YAMLComposer.Failure) in
                try composer.compose(parser)
            }
        } catch {
            var r = Reading(expandedBytes: composer.expandedBytes)
            switch error {
            case let .syntax(e): r.diagnostics = [Self.diagnostic(for: e, bytes: bytes, file: file)]
            case let .diagnostic(d): r.diagnostics = [d]
            case let .overBudget(m, exact):
                r.stop = .crossed(SourceLocation(file: file, line: m.line, column: m.column), exact: exact)
            case .abandoned: r.stop = .abandoned
            }
            return r
        }
        guard let root else {
            return fail(
                1, 1, "file is empty (or holds only comments)",
                hint: "a job file needs at least `version: 1` and `jobs:`")
        }
        return Reading(node: root, expandedBytes: composer.expandedBytes)
    }

    // MARK: - Pre-checks

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
        var line = 1
        var col = 1
        for i in 0..<min(offset, b.count) {
            if b[i] == 0x0A {
                line += 1
                col = 1
            } else if b[i] & 0xC0 != 0x80 {
                col += 1
            }
        }
        return (line, col)
    }

    // MARK: - libyaml errors

    /// Formats libyaml's error as Yams did: `invalid YAML: <problem> (<context> at line L,
    /// column C)` at the problem's position, with a hint for the two usual mistakes.
    static func diagnostic(for error: YAMLSyntaxError, bytes: [UInt8], file: String) -> Diagnostic {
        func at(_ m: YAMLMark) -> SourceLocation { SourceLocation(file: file, line: max(1, m.line), column: max(1, m.column)) }
        switch error.kind {
        case .scanner, .parser:
            var message = error.problem
            if let context = error.context {
                message += " (\(context) at line \(error.contextMark.line), column \(error.contextMark.column))"
            }
            var hint: String?
            if error.problem.contains("tab") || indentationHasTab(line: error.problemMark.line, in: bytes) {
                hint = "indent with spaces; YAML does not allow tabs for indentation"
            }
            if error.problem.contains("undefined alias") { hint = "define the anchor (&name) before using *name" }
            return Diagnostic(at: at(error.problemMark), "invalid YAML: " + message, hint: hint)
        case .reader:
            // Invalid UTF-8 and NUL were refused above; what is left is a control character.
            let offset = min(max(0, error.offset), bytes.count)
            let (l, c) = lineColumn(of: offset, in: bytes)
            let code = String(error.value, radix: 16, uppercase: true)
            return Diagnostic(
                at: SourceLocation(file: file, line: l, column: c),
                "cannot read the file as text: \(error.problem) (U+\(String(repeating: "0", count: max(0, 4 - code.count)) + code) at offset \(offset))",
                hint: "YAML allows only printable characters, tabs and line breaks")
        case .memory:
            return Diagnostic(at: at(error.problemMark), "cannot parse YAML: out of memory")
        case .other:
            return Diagnostic(at: at(error.problemMark), "cannot parse YAML: \(error.problem)")
        }
    }

    /// Whether the leading whitespace of 1-based `line` (counting `\n` line breaks) holds a tab:
    /// libyaml reports a tab in indentation as "found character that cannot start any token".
    static func indentationHasTab(line: Int, in b: [UInt8]) -> Bool {
        var current = 1
        var i = 0
        while i < b.count, current < line {
            if b[i] == 0x0A { current += 1 }
            i += 1
        }
        guard current == line else { return false }
        while i < b.count, b[i] == 0x20 || b[i] == 0x09 {
            if b[i] == 0x09 { return true }
            i += 1
        }
        return false
    }
}
