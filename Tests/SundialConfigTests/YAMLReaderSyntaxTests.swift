import SundialCore
import SundialTesting
import Testing

@testable import SundialConfig

/// What the reader keeps from libyaml: error messages in the `invalid YAML: problem (context at
/// line L, column C)` form, one document only, duplicate keys refused, aliases copied with the
/// anchor's positions, and explicit `!!str` tags.
@Suite("YAML reader: libyaml errors, documents, aliases, tags", .offPool)
struct YAMLReaderSyntaxTests {
    func read(_ text: String) -> (node: YAMLNode?, diagnostics: [Diagnostic]) {
        YAMLReader().read(bytes: Array(text.utf8), file: "t.yaml")
    }

    func onlyError(_ text: String) -> Diagnostic? {
        let r = read(text)
        #expect(r.node == nil)
        #expect(r.diagnostics.count == 1)
        return r.diagnostics.first
    }

    @Test func libyamlErrorWithContext() {
        let d = onlyError("a: [1, 2\nb: 3\n")
        #expect(d?.message == "invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at line 1, column 4)")
        #expect(d?.location == SourceLocation(file: "t.yaml", line: 2, column: 2))
    }

    @Test func tabIndentationGetsTheTabHint() {
        let d = onlyError("jobs:\n\ta: 1\n")
        #expect(d?.location.line == 2)
        #expect(d?.hint == "indent with spaces; YAML does not allow tabs for indentation")
    }

    @Test func secondDocumentIsRefused() {
        let d = onlyError("a: 1\n---\nb: 2\n")
        #expect(d?.message == "invalid YAML: but found another document (expected a single document in the stream at line 1, column 1)")
        #expect(d?.location == SourceLocation(file: "t.yaml", line: 2, column: 1))
    }

    @Test func explicitEmptyDocumentIsAnEmptyScalarNotAnEmptyFile() throws {
        let r = read("---\n")
        #expect(r.diagnostics.isEmpty)
        #expect(try #require(r.node).jsonValue() == .null)
    }

    @Test func duplicateKeysAreListedAtTheFirstCopyOfTheFirst() {
        let d = onlyError("b: 1\na: 1\nb: 2\na: 2\n")
        #expect(d?.message == "duplicate key `a`, `b` in the same mapping")
        #expect(d?.location == SourceLocation(file: "t.yaml", line: 2, column: 1))
        #expect(onlyError("x: {k: 1, 'k': 2}\n")?.message == "duplicate key `k` in the same mapping")
        #expect(onlyError("? [1, 2]\n: a\n? [1, 2]\n: b\n")?.message == "duplicate key `[\"1\", \"2\"]` in the same mapping")
    }

    @Test func sameKeyInDifferentMappingsIsFine() {
        #expect(read("a: {k: 1}\nb: {k: 2}\n").diagnostics.isEmpty)
    }

    @Test func undefinedAliasNamesTheAlias() {
        let d = onlyError("a: 1\nb: *nope\n")
        #expect(d?.message == "invalid YAML: found undefined alias `*nope`")
        #expect(d?.location == SourceLocation(file: "t.yaml", line: 2, column: 4))
        #expect(d?.hint == "define the anchor (&name) before using *name")
        // An anchor is defined once its node is complete, so a node cannot contain itself.
        #expect(onlyError("a: &x [1, *x]\n")?.message.contains("undefined alias") == true)
    }

    @Test func aliasCopiesTheAnchoredValueWithItsPositions() throws {
        let r = read("a: &x {k: 1, l: [2]}\nb: *x\nc: &s 'quoted'\nd: *s\n")
        #expect(r.diagnostics.isEmpty)
        let n = try #require(r.node)
        #expect(n["b"]?.jsonValue() == n["a"]?.jsonValue())
        #expect(n["b"]?["k"]?.location == SourceLocation(file: "t.yaml", line: 1, column: 11))
        #expect(n["d"]?.jsonValue() == .string("quoted"))
    }

    @Test func mergeKeyStaysAnOrdinaryKey() throws {
        // Refused later, with a hint, by the job schema (`JobSchemaTests`).
        let r = read("base: &b {x: 1}\njob:\n  <<: *b\n")
        #expect(r.diagnostics.isEmpty)
        #expect(r.node?["job"]?["<<"]?["x"]?.jsonValue() == .int(1))
    }

    @Test func explicitStrTagKeepsAScalarAString() throws {
        let n = try #require(read("a: !!str 5\nb: ! true\nc: 5\nd: !!str\n").node)
        #expect(n["a"]?.jsonValue() == .string("5"))
        #expect(n["b"]?.jsonValue() == .string("true"))
        #expect(n["c"]?.jsonValue() == .int(5))
        #expect(n["d"]?.jsonValue() == .string(""))
    }

    @Test func positionsCountCharactersNotBytes() throws {
        let n = try #require(read("é: [ü, x]\n").node)
        #expect(n["é"]?.location == SourceLocation(file: "t.yaml", line: 1, column: 4))
        guard case let .sequence(items)? = n["é"]?.kind else {
            Issue.record("not a list")
            return
        }
        #expect(items[1].location == SourceLocation(file: "t.yaml", line: 1, column: 8))
    }

    @Test func controlCharacterIsReportedWhereItIs() {
        let d = onlyError("a: 1\nb: x\u{1}\n")
        #expect(d?.message == "cannot read the file as text: control characters are not allowed (U+0001 at offset 9)")
        #expect(d?.location == SourceLocation(file: "t.yaml", line: 2, column: 5))
    }

    @Test func manyFailingParsesDoNotLeak() {
        // Not a leak detector, but exercises every error path repeatedly; run under valgrind or
        // ASan (`swift test --sanitize=address`) to see that events and parsers are freed.
        for _ in 0..<200 {
            #expect(onlyError("a: [1, 2\n") != nil)
            #expect(onlyError("a: *x\n") != nil)
            #expect(onlyError("a: 1\n---\nb\n") != nil)
            #expect(onlyError("a: 1\na: 2\n") != nil)
        }
    }
}
