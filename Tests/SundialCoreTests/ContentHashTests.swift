import SundialCore
import SundialTesting
import Testing

/// Revisions are compared across agent restarts and shown to people, so the hash's value must
/// not depend on how the bytes are handed over (the contiguous fast path versus the loop).
@Suite("ContentHash: FNV-1a whatever the byte sequence's shape", .offPool)
struct ContentHashTests {
    @Test func contiguousAndElementwiseBytesHashAlike() {
        let bytes: [UInt8] = Array("version: 1\njobs:\n  a: { command: [/bin/true] }\n".utf8) + [0, 0xFF, 0x80]
        var contiguous = ContentHash()
        contiguous.combine(bytes)
        contiguous.combine("jobs/a.yaml")
        var elementwise = ContentHash()
        elementwise.combine(bytes.lazy.map { $0 })  // not contiguous: the element loop
        elementwise.combine(Array("jobs/a.yaml".utf8).lazy.map { $0 })
        elementwise.combine(CollectionOfOne(UInt8(0)).lazy.map { $0 })
        #expect(contiguous.hex == elementwise.hex)
    }

    @Test func knownValue() {
        // FNV-1a 64 of "a" is af63dc4c8601ec8c (the published test vector).
        var h = ContentHash()
        h.combine(Array("a".utf8))
        #expect(h.hex == "af63dc4c8601ec8c")
        #expect(ContentHash().hex == "cbf29ce484222325")
    }
}
