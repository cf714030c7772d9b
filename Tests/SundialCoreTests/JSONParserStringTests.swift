import SundialCore
import SundialTesting
import Testing

/// `JSONParser` takes all-ASCII strings without UTF-8 validation (a fast path for the loader
/// child's large answers): ASCII, non-ASCII and invalid strings must come out as before.
@Suite("JSONParser: strings on the ASCII fast path and off it", .offPool)
struct JSONParserStringTests {
    @Test func asciiAndNonASCIIStringsDecodeAlike() throws {
        let text = #"{"a":"plain ascii /bin/true","b":"Zürich – ünïcode","c":"esc\"aped\n","d":""}"#
        let v = try JSONParser.parse(Array(text.utf8))
        #expect(v == ["a": "plain ascii /bin/true", "b": "Zürich – ünïcode", "c": "esc\"aped\n", "d": ""])
    }

    @Test func invalidUTF8IsStillRefusedAtItsByte() {
        let bytes: [UInt8] = Array(#"["ok","ab"#.utf8) + [0xC3, 0x28] + Array(#""]"#.utf8)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(bytes) }
        do {
            _ = try JSONParser.parse(bytes)
        } catch {
            #expect(error.message.contains("UTF-8"))
        }
    }
}
