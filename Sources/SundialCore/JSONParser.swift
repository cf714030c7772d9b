import OrderedCollections

/// A strict RFC 8259 JSON parser producing ``JSONValue``.
///
/// Written by hand (not `JSONSerialization`/`JSONDecoder`) because `SundialCore` stays free of
/// Foundation, and because Sundial wants exact positions in its errors and `Int64` integers
/// kept apart from doubles (JSON Schema's `integer`, `const` and `multipleOf` care).
///
/// Choices beyond the RFC's "MAY"s, all chosen to fail loudly rather than guess:
/// - integers (no fraction, no exponent) that fit `Int64` become `.int`; every other number
///   becomes `.double`; a number whose magnitude overflows `Double` is an error;
/// - duplicate object keys are an error (the RFC leaves their meaning undefined);
/// - nesting deeper than ``maximumDepth`` is an error, so hostile input cannot exhaust the stack;
/// - a leading UTF-8 byte-order mark is skipped (RFC 8259 §8.1 allows ignoring it);
/// - invalid UTF-8 and unpaired `\u` surrogates are errors.
///
/// Never traps on any input: every failure is a ``JSONParseError`` with a 1-based line and column.
public struct JSONParser {
    /// Nesting levels (arrays and objects) accepted before the input is rejected.
    public static let maximumDepth = 512

    /// Parses one JSON text.
    public static func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        var text = text
        // `withUTF8` rethrows untyped errors, so carry the typed one out in a `Result`.
        let result = text.withUTF8 { buf in Result { () throws(JSONParseError) in try parse(bytes: buf) } }
        return try result.get()
    }

    /// Parses one JSON text given as UTF-8 bytes.
    public static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        let result = bytes.withUnsafeBufferPointer { buf in Result { () throws(JSONParseError) in try parse(bytes: buf) } }
        return try result.get()
    }

    private static func parse(bytes: UnsafeBufferPointer<UInt8>) throws(JSONParseError) -> JSONValue {
        var p = JSONParser(bytes: bytes)
        if p.bytes.count >= 3, p.bytes[0] == 0xEF, p.bytes[1] == 0xBB, p.bytes[2] == 0xBF { p.i = 3 }
        p.skipWhitespace()
        let value = try p.parseValue(depth: 0)
        p.skipWhitespace()
        if p.i < p.bytes.count { throw p.error("unexpected \(p.describeByte(at: p.i)) after the JSON value") }
        return value
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private var i = 0

    private init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    // MARK: - Values

    private mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        guard i < bytes.count else { throw error("unexpected end of input; expected a value") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw error("unexpected \(describeByte(at: i)); expected a value")
        }
    }

    private mutating func literal(_ word: StaticString) throws(JSONParseError) {
        let start = i
        let w = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        for c in w {
            guard i < bytes.count, bytes[i] == c else {
                i = start
                throw error("invalid literal; expected `\(word)`")
            }
            i += 1
        }
    }

    private mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= Self.maximumDepth else { throw error("nesting is deeper than \(Self.maximumDepth) levels") }
        i += 1  // {
        var members = OrderedDictionary<String, JSONValue>()
        skipWhitespace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
            i += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard i < bytes.count else { throw error("unexpected end of input; expected a key string") }
            guard bytes[i] == UInt8(ascii: "\"") else {
                if bytes[i] == UInt8(ascii: "}") { throw error("trailing comma before `}`") }
                throw error("unexpected \(describeByte(at: i)); expected a key string")
            }
            let keyStart = i
            let key = try parseString()
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else {
                throw error(i < bytes.count ? "unexpected \(describeByte(at: i)); expected `:`" : "unexpected end of input; expected `:`")
            }
            i += 1
            skipWhitespace()
            let value = try parseValue(depth: depth)
            if members.updateValue(value, forKey: key) != nil {
                throw error("duplicate key \"\(key)\"", at: keyStart)
            }
            skipWhitespace()
            guard i < bytes.count else { throw error("unexpected end of input; expected `,` or `}`") }
            if bytes[i] == UInt8(ascii: ",") {
                i += 1
                continue
            }
            if bytes[i] == UInt8(ascii: "}") {
                i += 1
                return .object(members)
            }
            throw error("unexpected \(describeByte(at: i)); expected `,` or `}`")
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= Self.maximumDepth else { throw error("nesting is deeper than \(Self.maximumDepth) levels") }
        i += 1  // [
        var items: [JSONValue] = []
        skipWhitespace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
            i += 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { throw error("trailing comma before `]`") }
            items.append(try parseValue(depth: depth))
            skipWhitespace()
            guard i < bytes.count else { throw error("unexpected end of input; expected `,` or `]`") }
            if bytes[i] == UInt8(ascii: ",") {
                i += 1
                continue
            }
            if bytes[i] == UInt8(ascii: "]") {
                i += 1
                return .array(items)
            }
            throw error("unexpected \(describeByte(at: i)); expected `,` or `]`")
        }
    }

    // MARK: - Numbers

    private mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = i
        var isInteger = true
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < bytes.count, isDigit(bytes[i]) else { throw error("invalid number: expected a digit after `-`") }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
            if i < bytes.count, isDigit(bytes[i]) { throw error("invalid number: leading zeros are not allowed", at: start) }
        } else {
            while i < bytes.count, isDigit(bytes[i]) { i += 1 }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            isInteger = false
            i += 1
            guard i < bytes.count, isDigit(bytes[i]) else { throw error("invalid number: expected a digit after `.`") }
            while i < bytes.count, isDigit(bytes[i]) { i += 1 }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            isInteger = false
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard i < bytes.count, isDigit(bytes[i]) else { throw error("invalid number: expected a digit in the exponent") }
            while i < bytes.count, isDigit(bytes[i]) { i += 1 }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
        if isInteger, let v = Int64(text) { return .int(v) }
        // The grammar is already checked, so `Double(_:)` (correctly rounded) cannot fail here
        // except by overflowing to infinity.
        guard let d = Double(text), d.isFinite else { throw error("number \(text.prefix(40)) is too large", at: start) }
        return .double(d)
    }

    private func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    // MARK: - Strings

    private mutating func parseString() throws(JSONParseError) -> String {
        let quote = i
        i += 1
        // Fast path: no escapes, so the bytes between the quotes are the string. All-ASCII
        // bytes are valid UTF-8 as they are: they skip `String(validating:)`, whose generic
        // validation was a quarter of the agent's start-up with 10,000 jobs when the loader
        // child's answer was JSON (docs/benchmarks.md, "Configuration path speed").
        var j = i
        var high: UInt8 = 0
        while j < bytes.count {
            let c = bytes[j]
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") || c < 0x20 { break }
            high |= c
            j += 1
        }
        if j < bytes.count, bytes[j] == UInt8(ascii: "\"") {
            let s = high < 0x80 ? String(decoding: UnsafeBufferPointer(rebasing: bytes[i..<j]), as: UTF8.self) : try decodeUTF8(i..<j)
            i = j + 1
            return s
        }
        var out: [UInt8] = Array(UnsafeBufferPointer(rebasing: bytes[i..<j]))
        i = j
        while true {
            guard i < bytes.count else { throw error("unterminated string", at: quote) }
            let c = bytes[i]
            switch c {
            case UInt8(ascii: "\""):
                i += 1
                guard let s = String(validating: out, as: UTF8.self) else {
                    throw error("string is not valid UTF-8", at: quote)
                }
                return s
            case UInt8(ascii: "\\"):
                try parseEscape(into: &out)
            case 0..<0x20:
                throw error(
                    c == 0x0A
                        ? "unterminated string (raw line break inside a string; write \\n)"
                        : "raw control character U+\(hex4(UInt16(c))) inside a string; escape it")
            default:
                out.append(c)
                i += 1
            }
        }
    }

    private func decodeUTF8(_ range: Range<Int>) throws(JSONParseError) -> String {
        guard let s = String(validating: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self) else {
            // Point at the first bad byte.
            var k = range.lowerBound
            var it = UnsafeBufferPointer(rebasing: bytes[range]).makeIterator()
            var decoder = UTF8()
            loop: while true {
                switch decoder.decode(&it) {
                case .scalarValue(let u): k += UTF8.width(u)
                case .emptyInput, .error: break loop
                }
            }
            throw error("invalid UTF-8 in string", at: k)
        }
        return s
    }

    private mutating func parseEscape(into out: inout [UInt8]) throws(JSONParseError) {
        let start = i
        i += 1
        guard i < bytes.count else { throw error("unterminated string") }
        let c = bytes[i]
        i += 1
        switch c {
        case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
        case UInt8(ascii: "/"): out.append(UInt8(ascii: "/"))
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            let unit = try hexQuad(escapeStart: start)
            var scalar: Unicode.Scalar?
            if UTF16.isLeadSurrogate(unit) {
                guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                    throw error("lone surrogate \\u\(hex4(unit)): a high surrogate must be followed by a low one", at: start)
                }
                let second = i
                i += 2
                let low = try hexQuad(escapeStart: second)
                guard UTF16.isTrailSurrogate(low) else {
                    throw error("lone surrogate \\u\(hex4(unit)): followed by \\u\(hex4(low)), not a low surrogate", at: start)
                }
                scalar = Unicode.Scalar(0x10000 + (UInt32(unit - 0xD800) << 10) + UInt32(low - 0xDC00))
            } else if UTF16.isTrailSurrogate(unit) {
                throw error("lone surrogate \\u\(hex4(unit)): a low surrogate without a high one", at: start)
            } else {
                scalar = Unicode.Scalar(unit)
            }
            guard let scalar else { throw error("invalid \\u escape", at: start) }
            out.append(contentsOf: UTF8.encode(scalar)!)
        default:
            i = start
            throw error(
                "invalid escape \\\(c >= 0x20 && c < 0x7F ? String(UnicodeScalar(c)) : "?"); valid escapes are \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX")
        }
    }

    private mutating func hexQuad(escapeStart: Int) throws(JSONParseError) -> UInt16 {
        var v: UInt16 = 0
        for _ in 0..<4 {
            guard i < bytes.count else { throw error("unterminated \\u escape", at: escapeStart) }
            let c = bytes[i]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: throw error("invalid \\u escape: expected 4 hex digits", at: escapeStart)
            }
            v = v << 4 | UInt16(d)
            i += 1
        }
        return v
    }

    private func hex4(_ v: UInt16) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - s.count)) + s
    }

    // MARK: - Helpers

    private mutating func skipWhitespace() {
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    private func describeByte(at k: Int) -> String {
        let c = bytes[k]
        if c >= 0x21 && c < 0x7F { return "`\(Character(UnicodeScalar(c)))`" }
        if c == 0x20 { return "space" }
        if c >= 0x80 {
            // Name the whole character when the bytes here are valid UTF-8.
            var it = UnsafeBufferPointer(rebasing: bytes[k...]).makeIterator()
            var decoder = UTF8()
            if case .scalarValue(let u) = decoder.decode(&it) { return "character `\(Character(u))`" }
            return "byte 0x\(String(c, radix: 16, uppercase: true)) (not valid UTF-8)"
        }
        return "control character U+\(hex4(UInt16(c)))"
    }

    /// An error at byte offset `at` (default: the current position). Line and column are
    /// computed only here, so the happy path never counts lines; the column counts Unicode
    /// scalars (a multi-byte character is one column), with a bad byte counting as one.
    private func error(_ message: String, at offset: Int? = nil) -> JSONParseError {
        let target = min(offset ?? i, bytes.count)
        var line = 1
        var column = 1
        var k = 0
        while k < target {
            let c = bytes[k]
            if c == 0x0A {
                line += 1
                column = 1
            } else if c & 0xC0 != 0x80 {  // not a UTF-8 continuation byte
                column += 1
            }
            k += 1
        }
        return JSONParseError(line: line, column: column, offset: target, message: message)
    }
}

/// Why a JSON text was rejected, and where (1-based line and column; `offset` in bytes).
public struct JSONParseError: Error, Hashable, Sendable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var offset: Int
    public var message: String

    public init(line: Int, column: Int, offset: Int, message: String) {
        self.line = line
        self.column = column
        self.offset = offset
        self.message = message
    }

    /// `line:column: message`.
    public var description: String { "\(line):\(column): \(message)" }
}
