import OrderedCollections
import SundialCore
import SundialTesting
import Testing

@Suite(.offPool) struct JSONParserTests {
    // MARK: - Accepted input

    @Test func parsesEveryKindOfValue() throws {
        let v = try JSONParser.parse(#" { "a": [1, -2.5, true, false, null, "x"], "b": {} , "c": [] } "#)
        #expect(v == ["a": [1, -2.5, true, false, nil, "x"], "b": [:], "c": []])
    }

    @Test func keepsKeyOrder() throws {
        let v = try JSONParser.parse(#"{"z":1,"a":2,"m":3}"#)
        guard case let .object(o) = v else {
            Issue.record("not an object")
            return
        }
        #expect(Array(o.keys) == ["z", "a", "m"])
    }

    @Test(arguments: [
        ("0", JSONValue.int(0)),
        ("-0", .int(0)),
        ("42", .int(42)),
        ("9223372036854775807", .int(Int64.max)),
        ("-9223372036854775808", .int(Int64.min)),
        ("9223372036854775808", .double(9_223_372_036_854_775_808.0)),  // one past Int64.max
        ("1.0", .double(1.0)),
        ("1e2", .double(100)),
        ("1E+2", .double(100)),
        ("-1.5e-3", .double(-0.0015)),
        ("1e-400", .double(0)),
        ("123456789012345678901234567890", .double(1.2345678901234568e29)),
    ])
    func numbers(text: String, expected: JSONValue) throws {
        #expect(try JSONParser.parse(text) == expected)
    }

    @Test func stringEscapes() throws {
        let v = try JSONParser.parse(#""a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\u20AC\ud83d\ude00\u0000""#)
        #expect(v == .string("a\"b\\c/d\u{8}\u{c}\n\r\tAé€😀\u{0}"))
    }

    @Test func rawUnicodeInStrings() throws {
        #expect(try JSONParser.parse("\"π – 😀\"") == "π – 😀")
    }

    @Test func skipsByteOrderMark() throws {
        #expect(try JSONParser.parse([0xEF, 0xBB, 0xBF] + Array("[1]".utf8)) == [1])
    }

    @Test func acceptsMaximumDepth() throws {
        let depth = JSONParser.maximumDepth
        let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        _ = try JSONParser.parse(text)
    }

    // MARK: - Rejected input

    /// (input, line, column, a fragment of the message)
    @Test(arguments: [
        ("", 1, 1, "unexpected end of input"),
        ("   \n  ", 2, 3, "unexpected end of input"),
        ("[1, 2,]", 1, 7, "trailing comma"),
        ("{\"a\": 1,}", 1, 9, "trailing comma"),
        ("{\"a\" 1}", 1, 6, "expected `:`"),
        ("{a: 1}", 1, 2, "expected a key string"),
        ("[1 2]", 1, 4, "expected `,` or `]`"),
        ("[1,\n 2,\n x]", 3, 2, "unexpected `x`"),
        ("\"abc", 1, 1, "unterminated string"),
        ("\"a\nb\"", 1, 3, "raw line break"),
        ("\"a\u{1}b\"", 1, 3, "control character U+0001"),
        (#""\x""#, 1, 2, "invalid escape \\x"),
        (#""\u12""#, 1, 2, "4 hex digits"),
        (#""\ud800""#, 1, 2, "lone surrogate \\uD800"),
        (#""\ud800\u0041""#, 1, 2, "not a low surrogate"),
        (#""\udc00""#, 1, 2, "low surrogate without a high one"),
        ("01", 1, 1, "leading zeros"),
        ("-", 1, 2, "expected a digit after `-`"),
        ("1.", 1, 3, "expected a digit after `.`"),
        (".5", 1, 1, "unexpected `.`"),
        ("+1", 1, 1, "unexpected `+`"),
        ("1e", 1, 3, "exponent"),
        ("1e400", 1, 1, "too large"),
        ("-1e400", 1, 1, "too large"),
        ("NaN", 1, 1, "unexpected `N`"),
        ("Infinity", 1, 1, "unexpected `I`"),
        ("tru", 1, 1, "expected `true`"),
        ("nul", 1, 1, "expected `null`"),
        ("'a'", 1, 1, "unexpected `'`"),
        ("[1] [2]", 1, 5, "after the JSON value"),
        ("{} // comment", 1, 4, "after the JSON value"),
        ("{\"a\": 1, \"a\": 2}", 1, 10, "duplicate key \"a\""),
        ("[\"é\", x]", 1, 7, "unexpected `x`"),  // columns count characters, not bytes
    ])
    func rejects(text: String, line: Int, column: Int, fragment: String) {
        #expect {
            _ = try JSONParser.parse(text)
        } throws: { error in
            guard let e = error as? JSONParseError else { return false }
            let ok = e.line == line && e.column == column && e.message.contains(fragment)
            if !ok { Issue.record("got \(e) for \(text.debugDescription)") }
            return ok
        }
    }

    @Test func rejectsNestingBeyondTheLimit() {
        let depth = JSONParser.maximumDepth + 1
        let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(text) }
    }

    @Test func hugeNestingFailsFastWithoutCrashing() throws {
        let text = String(repeating: "{\"a\":", count: 100_000)
        do {
            _ = try JSONParser.parse(text)
            Issue.record("accepted")
        } catch {
            #expect(error.message.contains("deeper than 512"))
            #expect(error.line == 1)
        }
    }

    @Test func rejectsInvalidUTF8() {
        for bytes: [UInt8] in [[0x22, 0xFF, 0x22], [0x22, 0x61, 0xC3, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0xFF]] {
            #expect(throws: JSONParseError.self) { try JSONParser.parse(bytes) }
        }
        do {
            _ = try JSONParser.parse([0x22, 0x61, 0xFF, 0x22])
        } catch {
            #expect(error.column == 3)
            #expect(error.message.contains("UTF-8"))
        }
    }

    @Test func binaryJunkNeverCrashes() {
        var rng = SplitMix(seed: 42)
        for _ in 0..<2000 {
            let n = Int(rng.next() % 40)
            let alphabet = Array("{}[],:\"\\-0123456789.eEtrufalsn \n\u{7f}".utf8) + [0x00, 0xC3, 0xA9, 0xFF]
            let bytes = (0..<n).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            do { _ = try JSONParser.parse(bytes) } catch { #expect(error.line >= 1 && error.column >= 1) }
        }
    }

    @Test func errorDescriptionIsLineColumnMessage() {
        #expect(JSONParseError(line: 3, column: 7, offset: 20, message: "boom").description == "3:7: boom")
    }
}

/// A tiny deterministic generator for the fuzz-style test above.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
