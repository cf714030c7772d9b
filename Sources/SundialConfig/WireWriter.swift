#if canImport(Glibc)
import Glibc
#endif

/// Writes the loader child's binary answer (``LoaderWire``): variable-length integers and a
/// string table, nothing else.
///
/// Why binary, and why by hand: the answer was JSON, and reading 10,000 jobs of it was 80 % of
/// the agent's start-up instructions (a `JSONValue` tree built, walked and freed: about 1.5 G
/// instructions). Both ends are the same build (the agent runs `/proc/self/exe`), so the format
/// needs no field names and no schema evolution; the version in the header refuses anything
/// else. No package in the mirror does this without Foundation or a code generator
/// (swift-protobuf would bring both and more code than this file and ``WireReader``).
///
/// The encoding:
/// - unsigned integers: LEB128 (7 bits a byte, high bit set on all but the last);
/// - signed integers: zigzag, then LEB128;
/// - one of a fixed set of names (an enumeration's case): its index among all the cases;
/// - strings: a reference into the table of strings written so far (`n ≥ 1` is entry `n - 1`),
///   or `0` followed by a new string (its UTF-8 length, then its bytes), which becomes the
///   next entry. So each distinct string crosses the pipe once, and the reader gives every job
///   that uses it the same storage: one file name for 1,000 jobs, not 1,000 copies.
///
/// The table is keyed by the exact UTF-8 bytes: Swift's `==` on strings is canonical
/// equivalence, and a precomposed "é" must not become "e" + U+0301 on the other side.
struct WireWriter {
    private(set) var bytes: [UInt8] = []
    private var table: [ExactString: Int] = [:]

    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    mutating func uint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(truncatingIfNeeded: v))
    }

    mutating func count(_ n: Int) { uint(UInt64(n)) }

    mutating func int(_ value: Int64) { uint(UInt64(bitPattern: (value << 1) ^ (value >> 63))) }

    mutating func int(_ value: Int) { int(Int64(value)) }

    mutating func bool(_ value: Bool) { bytes.append(value ? 1 : 0) }

    /// A presence flag, then the value if present.
    mutating func int(_ value: Int64?) {
        bool(value != nil)
        if let value { int(value) }
    }

    /// One of a fixed set of names (a policy, a condition) as its place among all of them:
    /// a string would cost a table lookup for each of the dozen a job has.
    mutating func choice<E: CaseIterable & Equatable>(_ value: E) {
        var i: UInt64 = 0
        for c in E.allCases {
            if c == value { break }
            i += 1
        }
        uint(i)
    }

    mutating func string(_ s: String) {
        let key = ExactString(s)
        if let known = table[key] {
            uint(UInt64(known) + 1)
            return
        }
        table[key] = table.count
        bytes.append(0)
        var copy = s
        copy.withUTF8 { utf8 in
            count(utf8.count)
            bytes.append(contentsOf: utf8)
        }
    }

    mutating func string(_ s: String?) {
        bool(s != nil)
        if let s { string(s) }
    }
}

/// A string as a dictionary key equal only to the very same UTF-8 bytes (see ``WireWriter``).
struct ExactString: Hashable {
    let value: String
    init(_ value: String) { self.value = value }

    static func == (a: ExactString, b: ExactString) -> Bool {
        // `memcmp` of the two buffers: `utf8.elementsEqual` went byte by byte, and was a tenth
        // of the child's answer.
        var (x, y) = (a.value, b.value)
        return x.withUTF8 { p in
            y.withUTF8 { q in p.count == q.count && (p.count == 0 || memcmp(p.baseAddress!, q.baseAddress!, p.count) == 0) }
        }
    }

    func hash(into h: inout Hasher) {
        var copy = value
        copy.withUTF8 { h.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}
