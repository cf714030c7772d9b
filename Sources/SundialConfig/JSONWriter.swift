import SundialCore

/// Writes compact JSON straight into bytes, without building a ``JSONValue`` tree first.
///
/// Why: the loader child's answer (``LoaderWire``) for 1,000 jobs is about 800 KB of JSON, and
/// building it as nested `JSONValue`s (an ordered dictionary per job and per nested object)
/// and then encoding the tree cost a fifth of the child's instructions. The output is the
/// same bytes ``JSONValue/encode(into:)`` writes for the same values and key order (a test
/// pins that), so the reader is unchanged.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []
    /// No comma before the next key or value: at the start of a container, or after a key.
    private var first = true

    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    mutating func beginObject() { open(UInt8(ascii: "{")) }
    mutating func endObject() { close(UInt8(ascii: "}")) }
    mutating func beginArray() { open(UInt8(ascii: "[")) }
    mutating func endArray() { close(UInt8(ascii: "]")) }

    /// A key of the current object; the next call writes its value. Keys here are the wire's
    /// own ASCII names, which need no escaping.
    mutating func key(_ k: StaticString) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        k.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
        first = true
    }

    mutating func string(_ s: String) {
        separate()
        JSONValue.encodeString(s, into: &bytes)
        first = false
    }

    mutating func string(_ s: String?) {
        if let s { string(s) } else { null() }
    }

    mutating func int(_ i: Int64) {
        separate()
        if i >= 0 && i < 10 {
            bytes.append(UInt8(ascii: "0") + UInt8(i))
        } else {
            bytes.append(contentsOf: String(i).utf8)
        }
        first = false
    }

    mutating func int(_ i: Int64?) {
        if let i { int(i) } else { null() }
    }

    mutating func bool(_ b: Bool) {
        separate()
        bytes.append(contentsOf: (b ? "true" : "false").utf8)
        first = false
    }

    /// A value given as a tree (for the few parts not worth writing field by field).
    mutating func value(_ v: JSONValue) {
        separate()
        v.encode(into: &bytes)
        first = false
    }

    mutating func null() {
        separate()
        bytes.append(contentsOf: "null".utf8)
        first = false
    }

    private mutating func open(_ c: UInt8) {
        separate()
        bytes.append(c)
        first = true
    }

    private mutating func close(_ c: UInt8) {
        bytes.append(c)
        first = false
    }

    private mutating func separate() {
        if !first { bytes.append(UInt8(ascii: ",")) }
    }
}
