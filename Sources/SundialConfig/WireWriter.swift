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
    /// The string table, by hand rather than a `[String: Int]`: a dictionary keyed by the
    /// exact bytes cost about 1,700 instructions a string (a wrapper's `==` and `hash`, a
    /// second hash to insert, the rehashes as it grew), and the agent writes one for every
    /// job of its memo on each reload (5 M instructions for 1,000 jobs, a third of the
    /// agent's part of a reload). Open addressing over `slots` (0 empty, else an entry's
    /// index + 1, which is also the string's reference on the wire); each entry points at the
    /// string's bytes where they were written into `bytes`, so nothing is copied twice.
    /// The hash is the standard library's seeded SipHash, so a file's ids cannot be chosen
    /// to collide.
    private var slots: [Int32] = []
    private var entries: [Entry] = []

    private struct Entry {
        var hash: Int
        var start: Int
        var count: Int
    }

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
        var copy = s
        copy.withUTF8 { string(utf8: $0) }
    }

    private mutating func string(utf8: UnsafeBufferPointer<UInt8>) {
        var hasher = Hasher()
        hasher.combine(bytes: UnsafeRawBufferPointer(utf8))
        let hash = hasher.finalize()
        if slots.isEmpty { slots = [Int32](repeating: 0, count: 256) }
        let mask = slots.count - 1
        var i = hash & mask
        while slots[i] != 0 {
            let reference = Int(slots[i])
            if matches(entries[reference - 1], hash: hash, utf8) {
                uint(UInt64(reference))
                return
            }
            i = (i + 1) & mask
        }
        bytes.append(0)
        count(utf8.count)
        entries.append(Entry(hash: hash, start: bytes.count, count: utf8.count))
        bytes.append(contentsOf: utf8)
        slots[i] = Int32(truncatingIfNeeded: entries.count)
        if entries.count * 2 > slots.count { rehash(capacity: slots.count * 2) }
    }

    private func matches(_ e: Entry, hash: Int, _ utf8: UnsafeBufferPointer<UInt8>) -> Bool {
        guard e.hash == hash, e.count == utf8.count else { return false }
        if e.count == 0 { return true }
        return bytes.withUnsafeBufferPointer { memcmp($0.baseAddress! + e.start, utf8.baseAddress!, e.count) == 0 }
    }

    private mutating func rehash(capacity: Int) {
        slots = [Int32](repeating: 0, count: capacity)
        let mask = capacity - 1
        for (index, e) in entries.enumerated() {
            var i = e.hash & mask
            while slots[i] != 0 { i = (i + 1) & mask }
            slots[i] = Int32(truncatingIfNeeded: index + 1)
        }
    }

    mutating func string(_ s: String?) {
        bool(s != nil)
        if let s { string(s) }
    }
}
