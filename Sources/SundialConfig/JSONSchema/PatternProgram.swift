/// A small regular-expression matcher for the ECMA-262 subset that config schemas use.
///
/// Why by hand: Swift's `Regex` costs about a microsecond per match on short strings (most of it
/// fixed overhead and building `AnyRegexOutput`), which was half of validating a large job set.
/// This compiles a pattern once into a tiny backtracking program over UTF-8 bytes that answers
/// only "is there a match?", in tens of nanoseconds for typical ids and durations.
///
/// Supported (ECMA-262 `u`-mode semantics): literals, `.`, `^`, `$`, `\b`, `\B`, classes `[…]`
/// with ranges and negation, `\d \D \w \W \s \S`, escapes `\t \n \v \f \r \0 \xHH \uHHHH \u{…}`
/// and escaped syntax characters, groups `(…)`/`(?:…)`, alternation, and the quantifiers
/// `* + ? {n} {n,} {n,m}` (greedy or lazy: for a yes/no answer they are the same).
/// Anything else (look-around, back-references, `\p{…}`, named groups, a loop whose body can
/// match the empty string) makes ``init(_:)`` return nil, and ``SchemaPattern`` uses Swift's
/// `Regex` instead. Matching remembers failed (instruction, position) pairs, so it is
/// polynomial (instructions × length) even for patterns like `(a|a)*b`.
struct PatternProgram: Sendable {
    private enum Instruction: Sendable {
        case scalar(UInt32)
        case set(ScalarSet)
        case any  // anything but a line terminator
        case split(Int, Int)  // try the first, then the second
        case jump(Int)
        case assertStart
        case assertEnd
        case wordBoundary(Bool)  // true: \b, false: \B
        case match
    }

    private let code: [Instruction]
    private let anchoredAtStart: Bool

    /// Programs larger than this (e.g. from `x{1000}`) are left to Swift's `Regex`.
    private static let maximumSize = 4096

    init?(_ pattern: String) {
        var parser = Parser(Array(pattern.unicodeScalars))
        guard let ast = parser.parseAlternation(), parser.atEnd else { return nil }
        var code: [Instruction] = []
        guard Self.emit(ast, into: &code) else { return nil }
        code.append(.match)
        guard code.count <= Self.maximumSize else { return nil }
        self.code = code
        if case .assertStart = code[0] { anchoredAtStart = true } else { anchoredAtStart = false }
    }

    // MARK: - Matching

    /// The largest (instructions × input length) this matcher takes on; beyond it (a very long
    /// string) ``matches(_:)`` returns nil rather than allocate a large table.
    private static let maximumStates = 1 << 24

    /// Whether the pattern matches somewhere in `s` (a search, not anchored); nil when the input
    /// is too long for the failure table.
    func matches(_ s: String) -> Bool? {
        var s = s
        return s.withUTF8 { bytes -> Bool? in
            let stride = bytes.count + 1
            let (states, overflow) = code.count.multipliedReportingOverflow(by: stride)
            guard !overflow, states <= Self.maximumStates else { return nil }
            return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: (states + 63) / 64) { visited in
                visited.initialize(repeating: 0)
                // Room for the usual few pending threads at once, not a regrowth per split.
                var stack: [Int] = []
                stack.reserveCapacity(16)
                let lastStart = anchoredAtStart ? 0 : bytes.count
                var start = 0
                while start <= lastStart {
                    stack.append(start)  // (pc 0, pos start), packed as pc * stride + pos
                    if run(bytes, stack: &stack, visited: visited) { return true }
                    if start == bytes.count { break }
                    start += Self.width(bytes[start])
                }
                return false
            }
        }
    }

    /// Runs threads from `stack` until one reaches `.match` (true) or all fail (false). A thread
    /// is an (instruction, byte position) state; each state runs at most once per search,
    /// because reaching it again can only fail again.
    private func run(_ b: UnsafeBufferPointer<UInt8>, stack: inout [Int], visited: UnsafeMutableBufferPointer<UInt64>) -> Bool {
        let stride = b.count + 1
        while let packed = stack.popLast() {
            var pc = packed / stride
            var pos = packed % stride
            while true {
                let state = pc * stride + pos
                let (w, bit) = (state >> 6, UInt64(1) << UInt64(state & 63))
                if visited[w] & bit != 0 { break }  // tried from here before, and failed
                visited[w] |= bit
                switch code[pc] {
                case let .scalar(c):
                    guard pos < b.count else { break }
                    let (u, n) = Self.decode(b, pos)
                    guard u == c else { break }
                    pos += n
                    pc += 1
                    continue
                case let .set(set):
                    guard pos < b.count else { break }
                    let (u, n) = Self.decode(b, pos)
                    guard set.contains(u) else { break }
                    pos += n
                    pc += 1
                    continue
                case .any:
                    guard pos < b.count else { break }
                    let (u, n) = Self.decode(b, pos)
                    guard !ScalarSet.isLineTerminator(u) else { break }
                    pos += n
                    pc += 1
                    continue
                case let .split(first, second):
                    stack.append(second * stride + pos)
                    pc = first
                    continue
                case let .jump(target):
                    pc = target
                    continue
                case .assertStart:
                    guard pos == 0 else { break }
                    pc += 1
                    continue
                case .assertEnd:
                    guard pos == b.count else { break }
                    pc += 1
                    continue
                case let .wordBoundary(wanted):
                    let before = pos > 0 && ScalarSet.isWordByte(b[pos - 1])
                    let after = pos < b.count && ScalarSet.isWordByte(b[pos])
                    guard (before != after) == wanted else { break }
                    pc += 1
                    continue
                case .match:
                    stack.removeAll(keepingCapacity: true)
                    return true
                }
                break  // this thread failed; backtrack
            }
        }
        return false
    }

    private static func width(_ lead: UInt8) -> Int {
        lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
    }

    /// The scalar at `i` (Swift strings are valid UTF-8, so no checks are needed).
    @inline(__always)
    private static func decode(_ b: UnsafeBufferPointer<UInt8>, _ i: Int) -> (UInt32, Int) {
        let c0 = UInt32(b[i])
        if c0 < 0x80 { return (c0, 1) }
        if c0 < 0xE0 { return ((c0 & 0x1F) << 6 | UInt32(b[i + 1] & 0x3F), 2) }
        if c0 < 0xF0 { return ((c0 & 0x0F) << 12 | UInt32(b[i + 1] & 0x3F) << 6 | UInt32(b[i + 2] & 0x3F), 3) }
        return ((c0 & 0x07) << 18 | UInt32(b[i + 1] & 0x3F) << 12 | UInt32(b[i + 2] & 0x3F) << 6 | UInt32(b[i + 3] & 0x3F), 4)
    }

    // MARK: - Compiling

    private indirect enum Node {
        case empty
        case scalar(UInt32)
        case set(ScalarSet)
        case any
        case start, end
        case wordBoundary(Bool)
        case sequence([Node])
        case alternation([Node])
        case repetition(Node, min: Int, max: Int?)

        /// Whether the node can match without consuming input (a loop over such a body needs
        /// ECMA-262's empty-iteration rule, which this matcher does not implement).
        var canBeEmpty: Bool {
            switch self {
            case .empty, .start, .end, .wordBoundary: true
            case .scalar, .set, .any: false
            case let .sequence(items): items.allSatisfy(\.canBeEmpty)
            case let .alternation(items): items.contains(where: \.canBeEmpty)
            case let .repetition(body, min, _): min == 0 || body.canBeEmpty
            }
        }
    }

    private static func emit(_ node: Node, into code: inout [Instruction]) -> Bool {
        guard code.count <= maximumSize else { return false }
        switch node {
        case .empty: return true
        case let .scalar(c): code.append(.scalar(c))
        case let .set(s): code.append(.set(s))
        case .any: code.append(.any)
        case .start: code.append(.assertStart)
        case .end: code.append(.assertEnd)
        case let .wordBoundary(b): code.append(.wordBoundary(b))
        case let .sequence(items):
            for item in items where !emit(item, into: &code) { return false }
        case let .alternation(items):
            var jumps: [Int] = []
            for (i, item) in items.enumerated() {
                if i < items.count - 1 {
                    let split = code.count
                    code.append(.split(split + 1, -1))
                    guard emit(item, into: &code) else { return false }
                    jumps.append(code.count)
                    code.append(.jump(-1))
                    code[split] = .split(split + 1, code.count)
                } else {
                    guard emit(item, into: &code) else { return false }
                }
            }
            for j in jumps { code[j] = .jump(code.count) }
        case let .repetition(body, min, max):
            if body.canBeEmpty && max != min { return false }
            for _ in 0..<min where !emit(body, into: &code) { return false }
            if let max {
                // Each optional copy may be skipped, which ends the repetition.
                var splits: [Int] = []
                for _ in min..<max {
                    splits.append(code.count)
                    code.append(.split(code.count + 1, -1))
                    guard emit(body, into: &code) else { return false }
                }
                for s in splits { code[s] = .split(s + 1, code.count) }
            } else {
                let loop = code.count
                code.append(.split(loop + 1, -1))
                guard emit(body, into: &code) else { return false }
                code.append(.jump(loop))
                code[loop] = .split(loop + 1, code.count)
            }
        }
        return code.count <= maximumSize
    }

    // MARK: - Parsing

    private struct Parser {
        let s: [Unicode.Scalar]
        var i = 0
        init(_ s: [Unicode.Scalar]) { self.s = s }
        var atEnd: Bool { i == s.count }
        func peek(_ k: Int = 0) -> Unicode.Scalar? { i + k < s.count ? s[i + k] : nil }

        mutating func parseAlternation() -> Node? {
            var branches: [Node] = []
            while true {
                guard let seq = parseSequence() else { return nil }
                branches.append(seq)
                if peek() == "|" { i += 1 } else { break }
            }
            return branches.count == 1 ? branches[0] : .alternation(branches)
        }

        mutating func parseSequence() -> Node? {
            var items: [Node] = []
            while let c = peek(), c != "|", c != ")" {
                guard let atom = parseAtom() else { return nil }
                guard let quantified = parseQuantifier(atom) else { return nil }
                items.append(quantified)
            }
            return items.count == 1 ? items[0] : (items.isEmpty ? .empty : .sequence(items))
        }

        mutating func parseAtom() -> Node? {
            guard let c = peek() else { return nil }
            i += 1
            switch c {
            case "^": return .start
            case "$": return .end
            case ".": return .any
            case "(":
                if peek() == "?" {
                    guard peek(1) == ":" else { return nil }  // look-around, named groups
                    i += 2
                }
                guard let inner = parseAlternation(), peek() == ")" else { return nil }
                i += 1
                return inner
            case "[": return parseClass()
            case "\\": return parseEscape(inClass: false)
            case "*", "+", "?", "{", "}", "]", ")": return nil  // a quantifier with nothing to repeat, or u-mode's lone brackets
            default: return .scalar(c.value)
            }
        }

        mutating func parseQuantifier(_ atom: Node) -> Node? {
            var min = 0
            var max: Int?
            switch peek() {
            case "*": i += 1
            case "+":
                i += 1
                min = 1
            case "?":
                i += 1
                max = 1
            case "{":
                i += 1
                guard let n = parseInt() else { return nil }
                min = n
                max = n
                if peek() == "," {
                    i += 1
                    max = peek() == "}" ? nil : parseInt()
                    if max == nil && peek() != "}" { return nil }
                }
                guard peek() == "}", max.map({ $0 >= min }) ?? true, min <= 1000 else { return nil }
                i += 1
            default:
                return atom
            }
            switch atom {
            case .start, .end, .wordBoundary: return nil  // quantified assertions: leave to Regex
            default: break
            }
            if peek() == "?" { i += 1 }  // lazy: same answer for a yes/no match
            if let c = peek(), "*+?{".unicodeScalars.contains(c) { return nil }
            return .repetition(atom, min: min, max: max)
        }

        mutating func parseInt() -> Int? {
            var v = 0
            let start = i
            while let c = peek(), ("0"..."9").contains(c) {
                v = v * 10 + Int(c.value - 48)
                if v > 100_000 { return nil }
                i += 1
            }
            return i > start ? v : nil
        }

        mutating func parseClass() -> Node? {
            var set = ScalarSet()
            if peek() == "^" {
                set.negated = true
                i += 1
            }
            var first = true
            while true {
                guard let c = peek() else { return nil }
                if c == "]" && !first {
                    i += 1
                    break
                }
                if c == "]" && first {
                    i += 1
                    return .set(set)
                }  // `[]` matches nothing, `[^]` anything
                first = false
                guard let low = parseClassAtom() else { return nil }
                if peek() == "-", let next = peek(1), next != "]" {
                    i += 1
                    guard case let .single(lo) = low, let high = parseClassAtom(), case let .single(hi) = high, lo <= hi else { return nil }
                    set.add(lo...hi)
                } else {
                    switch low {
                    case let .single(u): set.add(u...u)
                    case let .set(other): set.add(other)
                    }
                }
            }
            return .set(set)
        }

        enum ClassAtom {
            case single(UInt32)
            case set(ScalarSet)
        }

        mutating func parseClassAtom() -> ClassAtom? {
            guard let c = peek() else { return nil }
            i += 1
            if c == "\\" {
                if peek() == "b" {
                    i += 1
                    return .single(8)
                }  // backspace inside a class
                if peek() == "-" {
                    i += 1
                    return .single(0x2D)
                }
                switch parseEscape(inClass: true) {
                case let .scalar(u)?: return .single(u)
                case let .set(s)?: return .set(s)
                default: return nil
                }
            }
            if c == "[" { return nil }  // u-mode forbids a raw `[` in a class only in v-mode; keep it simple
            return .single(c.value)
        }

        mutating func parseEscape(inClass: Bool) -> Node? {
            guard let c = peek() else { return nil }
            i += 1
            switch c {
            case "d": return .set(.digits)
            case "D": return .set(ScalarSet.digits.inverted)
            case "w": return .set(.word)
            case "W": return .set(ScalarSet.word.inverted)
            case "s": return .set(.space)
            case "S": return .set(ScalarSet.space.inverted)
            case "b": return inClass ? nil : .wordBoundary(true)
            case "B": return inClass ? nil : .wordBoundary(false)
            case "t": return .scalar(9)
            case "n": return .scalar(10)
            case "v": return .scalar(11)
            case "f": return .scalar(12)
            case "r": return .scalar(13)
            case "0":
                if let d = peek(), ("0"..."9").contains(d) { return nil }
                return .scalar(0)
            case "x":
                guard let v = hex(count: 2) else { return nil }
                return .scalar(v)
            case "u":
                if peek() == "{" {
                    i += 1
                    var v: UInt32 = 0
                    var digits = 0
                    while let d = peek(), let h = Self.hexValue(d) {
                        v = v * 16 + h
                        digits += 1
                        i += 1
                        if v > 0x10FFFF { return nil }
                    }
                    guard digits > 0, peek() == "}" else { return nil }
                    i += 1
                    return .scalar(v)
                }
                guard let v = hex(count: 4) else { return nil }
                if (0xD800...0xDFFF).contains(v) { return nil }  // surrogate pairs: leave to Regex
                return .scalar(v)
            default:
                // u-mode allows identity escapes of syntax characters and `/` only.
                guard "^$\\.*+?()[]{}|/".unicodeScalars.contains(c) else { return nil }
                return .scalar(c.value)
            }
        }

        mutating func hex(count: Int) -> UInt32? {
            var v: UInt32 = 0
            for _ in 0..<count {
                guard let d = peek(), let h = Self.hexValue(d) else { return nil }
                v = v * 16 + h
                i += 1
            }
            return v
        }

        static func hexValue(_ c: Unicode.Scalar) -> UInt32? {
            switch c {
            case "0"..."9": c.value - 48
            case "a"..."f": c.value - 87
            case "A"..."F": c.value - 55
            default: nil
            }
        }
    }
}

/// A set of Unicode scalars: an ASCII bitmap plus ranges above ASCII, possibly negated.
struct ScalarSet: Sendable {
    var low: UInt64 = 0  // scalars 0..<64
    var high: UInt64 = 0  // scalars 64..<128
    var ranges: [ClosedRange<UInt32>] = []
    var negated = false

    init(negated: Bool = false) { self.negated = negated }

    mutating func add(_ r: ClosedRange<UInt32>) {
        var lo = r.lowerBound
        while lo <= r.upperBound && lo < 128 {
            if lo < 64 { low |= 1 << UInt64(lo) } else { high |= 1 << UInt64(lo - 64) }
            lo += 1
        }
        if lo <= r.upperBound { ranges.append(lo...r.upperBound) }
    }

    /// Adds every member of `other` (which may itself be negated, like `\D` inside `[…]`).
    mutating func add(_ other: ScalarSet) {
        if !other.negated {
            low |= other.low
            high |= other.high
            ranges += other.ranges
            return
        }
        // Complement of `other`: ASCII by bitmap, the rest as gaps between its ranges.
        low |= ~other.low
        high |= ~other.high
        var next: UInt32 = 128
        for r in other.ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if r.lowerBound > next { ranges.append(next...(r.lowerBound - 1)) }
            next = max(next, r.upperBound + 1)
        }
        if next <= 0x10FFFF { ranges.append(next...0x10FFFF) }
    }

    var inverted: ScalarSet {
        var s = self
        s.negated.toggle()
        return s
    }

    @inline(__always)
    func contains(_ u: UInt32) -> Bool {
        let member: Bool
        if u < 64 {
            member = low & (1 << UInt64(u)) != 0
        } else if u < 128 {
            member = high & (1 << UInt64(u - 64)) != 0
        } else {
            member = ranges.contains { $0.contains(u) }
        }
        return member != negated
    }

    static let digits: ScalarSet = {
        var s = ScalarSet()
        s.add(48...57)
        return s
    }()
    static let word: ScalarSet = {
        var s = ScalarSet()
        s.add(48...57)
        s.add(65...90)
        s.add(97...122)
        s.add(95...95)
        return s
    }()
    /// ECMA-262 WhiteSpace and LineTerminator.
    static let space: ScalarSet = {
        var s = ScalarSet()
        for r: ClosedRange<UInt32> in [
            9...13, 32...32, 0xA0...0xA0, 0x1680...0x1680, 0x2000...0x200A,
            0x2028...0x2029, 0x202F...0x202F, 0x205F...0x205F, 0x3000...0x3000, 0xFEFF...0xFEFF,
        ] {
            s.add(r)
        }
        return s
    }()

    static func isLineTerminator(_ u: UInt32) -> Bool { u == 10 || u == 13 || u == 0x2028 || u == 0x2029 }
    static func isWordByte(_ b: UInt8) -> Bool { b < 128 && word.contains(UInt32(b)) }
}
