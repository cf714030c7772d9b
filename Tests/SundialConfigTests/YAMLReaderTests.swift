import SundialCore
import SundialTesting
import Testing

@testable import SundialConfig

@Suite("YAML reader: positions, typing, limits", .offPool)
struct YAMLReaderTests {
    let reader = YAMLReader()

    func read(_ text: String) -> (YAMLNode?, [Diagnostic]) {
        let r = reader.read(bytes: Array(text.utf8), file: "t.yaml")
        return (r.node, r.diagnostics)
    }

    func onlyError(_ text: String) -> Diagnostic? {
        let (node, diags) = read(text)
        #expect(node == nil)
        #expect(diags.count == 1)
        return diags.first
    }

    @Test func keepsPositionsOfValues() throws {
        let (node, diags) = read("version: 1\njobs:\n  a:\n    every: 5m\n")
        #expect(diags.isEmpty)
        let every = try #require(node?.node(at: ["jobs", "a", "every"]))
        #expect(every.scalarText == "5m")
        #expect(every.location == SourceLocation(file: "t.yaml", line: 4, column: 12))
    }

    @Test func yaml12CoreSchemaTyping() {
        #expect(YAMLNode.resolvePlain("on") == .string("on"))
        #expect(YAMLNode.resolvePlain("yes") == .string("yes"))
        #expect(YAMLNode.resolvePlain("true") == .bool(true))
        #expect(YAMLNode.resolvePlain("~") == .null)
        #expect(YAMLNode.resolvePlain("42") == .int(42))
        #expect(YAMLNode.resolvePlain("-7") == .int(-7))
        #expect(YAMLNode.resolvePlain("0o17") == .int(15))
        #expect(YAMLNode.resolvePlain("0x1F") == .int(31))
        #expect(YAMLNode.resolvePlain("1.5") == .double(1.5))
        #expect(YAMLNode.resolvePlain("1e3") == .double(1000))
        #expect(YAMLNode.resolvePlain("5m") == .string("5m"))
        #expect(YAMLNode.resolvePlain("0022") == .int(22))
        #expect(YAMLNode.resolvePlain("1.2.3") == .string("1.2.3"))
        #expect(YAMLNode.resolvePlain("99999999999999999999") == .double(1e20))
    }

    /// Every literal of the core schema, and words that only look like one: the resolver skips
    /// its literal comparisons for scalars that start with a digit or are over five bytes, so
    /// each literal and each near miss is pinned here.
    @Test func everyCoreSchemaLiteralAndItsNearMisses() {
        for s in ["", "~", "null", "Null", "NULL"] { #expect(YAMLNode.resolvePlain(s) == .null, "\(s)") }
        for s in ["true", "True", "TRUE"] { #expect(YAMLNode.resolvePlain(s) == .bool(true), "\(s)") }
        for s in ["false", "False", "FALSE"] { #expect(YAMLNode.resolvePlain(s) == .bool(false), "\(s)") }
        for s in [".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"] { #expect(YAMLNode.resolvePlain(s) == .double(.infinity), "\(s)") }
        for s in ["-.inf", "-.Inf", "-.INF"] { #expect(YAMLNode.resolvePlain(s) == .double(-.infinity), "\(s)") }
        for s in [".nan", ".NaN", ".NAN"] {
            guard case let .double(d) = YAMLNode.resolvePlain(s) else {
                Issue.record("\(s) is not a number")
                continue
            }
            #expect(d.isNaN, "\(s)")
        }
        for s in ["nulls", "NuLL", "truex", "TrUe", "falsey", "+.infinity", "-.nan", ".NAn", "~~", "0true", "nothing", "trueish"] {
            #expect(YAMLNode.resolvePlain(s) == .string(s), "\(s)")
        }
        #expect(YAMLNode.resolvePlain("123456") == .int(123_456))
        #expect(YAMLNode.resolvePlain("-123456") == .int(-123_456))
        #expect(YAMLNode.resolvePlain("+1.5e10") == .double(1.5e10))
        #expect(YAMLNode.resolvePlain("30s") == .string("30s"))
    }

    @Test func quotedScalarsStayStrings() throws {
        let (node, _) = read("a: \"42\"\nb: '1.5'\nc: 42\n")
        let n = try #require(node)
        #expect(n["a"]?.jsonValue() == .string("42"))
        #expect(n["b"]?.jsonValue() == .string("1.5"))
        #expect(n["c"]?.jsonValue() == .int(42))
    }

    @Test func emptyFileAndOnlyComments() {
        for text in ["", "# just a comment\n# another\n", "\n\n   \n"] {
            let d = onlyError(text)
            #expect(d?.message.contains("empty") == true)
        }
    }

    @Test func tabsForIndentation() {
        let d = onlyError("jobs:\n\ta: 1\n")
        #expect(d?.location.line == 2)
        #expect(d?.message.contains("invalid YAML") == true)
    }

    @Test func unterminatedQuote() {
        let d = onlyError("version: 1\njobs:\n  a:\n    shell: \"echo hi\n")
        #expect(d?.message.contains("invalid YAML") == true)
        #expect((d?.location.line ?? 0) >= 4)
    }

    @Test func duplicateKeysAreRefused() {
        let d = onlyError("version: 1\njobs:\n  a:\n    timeout: 5m\n    timeout: 10m\n    shell: x\n")
        #expect(d?.message.contains("duplicate key `timeout`") == true)
        #expect(d?.location.line == 4)
    }

    @Test func binaryJunk() {
        let bytes: [UInt8] = [0x7F, 0x45, 0x4C, 0x46, 0x02, 0x01, 0x01, 0x00, 0x00, 0x00]
        let r = reader.read(bytes: bytes, file: "bin.yaml")
        #expect(r.node == nil)
        #expect(r.diagnostics.first?.message.contains("binary") == true)
    }

    @Test func invalidUTF8() {
        var bytes = Array("version: 1\njobs:\n  a:\n    shell: caf".utf8)
        bytes += [0xC3, 0x28, 0x0A]
        let r = reader.read(bytes: bytes, file: "u.yaml")
        #expect(r.node == nil)
        #expect(r.diagnostics.first?.message.contains("UTF-8") == true)
        #expect(r.diagnostics.first?.location.line == 4)
        #expect(r.diagnostics.first?.location.column == 15)
    }

    @Test func hugeFileIsRefusedBeforeParsing() {
        let bytes = [UInt8](repeating: UInt8(ascii: "a"), count: 100 * 1024 * 1024)
        let clock = ContinuousClock()
        let start = clock.now
        let r = reader.read(bytes: bytes, file: "big.yaml")
        #expect(r.node == nil)
        #expect(r.diagnostics.first?.message.contains("larger than the limit") == true)
        #expect(clock.now - start < .seconds(1))
    }

    @Test func aliasBombIsRefused() {
        var text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        var prev = "a"
        for name in ["b", "c", "d", "e", "f", "g", "h", "i"] {
            text += "\(name): &\(name) [" + Array(repeating: "*\(prev)", count: 10).joined(separator: ", ") + "]\n"
            prev = name
        }
        let clock = ContinuousClock()
        let start = clock.now
        let d = onlyError(text)
        #expect(d?.message.contains("expands to more than") == true)
        #expect(clock.now - start < .seconds(20))  // a hang guard; the node budget is what bounds it
    }

    @Test func deepFlowNestingIsRefused() {
        let text = "a: " + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "\n"
        let d = onlyError(text)
        #expect(d?.message.contains("nesting is deeper") == true)
        #expect(d?.location.line == 1)
    }

    @Test func deepBlockNestingIsRefused() {
        var text = ""
        for i in 0..<1_000 { text += String(repeating: " ", count: i * 2) + "k:\n" }  // 1 MB
        let d = onlyError(text)
        #expect(d?.message.contains("nesting is deeper") == true)
        let dashes = "a:\n" + String(repeating: "- ", count: 10_000) + "x\n"
        #expect(onlyError(dashes)?.message.contains("nesting is deeper") == true)
    }

    @Test func ordinaryNestingAndBracketsInStringsAreFine() {
        let (node, diags) = read(
            """
            version: 1
            jobs:
              a:
                shell: 'echo "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["'
                env: { A: "{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{" }
                needs: [b]  # [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[
            """)
        #expect(diags.isEmpty)
        #expect(node != nil)
    }
}
