/// Reads what ``WireWriter`` wrote, treating every byte as untrusted.
///
/// A crashed or compromised loader child can send anything, so each read is bounds-checked and
/// each failure is a ``JobWire/DecodeError`` naming the field, never a trap: an integer longer
/// than ten bytes or past 64 bits, a count larger than the bytes left (so no hostile count can
/// make the agent reserve memory), a string reference to an entry not yet written, bytes that
/// are not UTF-8, and more string bytes in all than ``stringBudget``.
///
/// The budget, because of the string table: a reference of one or two bytes stands for a
/// string of any length, and the decoder does work in proportion to the string each time (a
/// webhook URL parsed, an `env` name hashed). Without it, a 1 MB answer referring 2,000 times
/// to one 1 MiB URL kept a debug build decoding for two minutes. With it, the work is bounded
/// by what the JSON answer could make the agent do: every string byte was then in the answer,
/// so a budget of the answer limit refuses nothing that format carried.
struct WireReader {
    typealias DecodeError = JobWire.DecodeError

    private let bytes: [UInt8]
    private(set) var offset: Int
    /// Every string read so far, in order: the targets of later references.
    private var table: [String] = []
    /// UTF-8 bytes of strings still to be returned, references included.
    private(set) var stringBudget: Int

    init(_ bytes: [UInt8], from offset: Int = 0, stringBudget: Int = Int.max) {
        self.bytes = bytes
        self.offset = offset
        self.stringBudget = stringBudget
    }

    var isAtEnd: Bool { offset == bytes.count }
    var remaining: Int { bytes.count - offset }

    /// The bytes read since `start` (an earlier `offset`).
    func bytes(from start: Int) -> ArraySlice<UInt8> { bytes[start..<offset] }

    mutating func uint(_ what: String) throws(DecodeError) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < bytes.count else { throw DecodeError("\(what): the answer ends inside a number") }
            let byte = bytes[offset]
            offset += 1
            guard shift < 64, shift < 63 || byte <= 1 else { throw DecodeError("\(what): a number past 64 bits") }
            value |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return value }
            shift += 7
        }
    }

    mutating func int(_ what: String) throws(DecodeError) -> Int64 {
        let z = try uint(what)
        return Int64(bitPattern: (z >> 1) ^ (0 &- (z & 1)))
    }

    mutating func optionalInt(_ what: String) throws(DecodeError) -> Int64? {
        try bool(what) ? try int(what) : nil
    }

    /// An `Int` that is also a sane size or count (no negative sizes or attempts).
    mutating func smallInt(_ what: String) throws(DecodeError) -> Int {
        let i = try int(what)
        guard i >= 0, i <= Int64(Int32.max) else { throw DecodeError("\(what): \(i) is out of range") }
        return Int(i)
    }

    mutating func int32(_ what: String) throws(DecodeError) -> Int32 {
        let i = try int(what)
        guard let small = Int32(exactly: i) else { throw DecodeError("\(what): \(i) is out of range") }
        return small
    }

    /// The number of elements that follow; each takes at least one byte, so a count larger
    /// than what is left is a lie, refused before anything is reserved for it.
    mutating func count(_ what: String) throws(DecodeError) -> Int {
        let n = try uint(what)
        guard n <= UInt64(remaining) else { throw DecodeError("\(what): \(n) elements in \(remaining) bytes") }
        return Int(n)
    }

    mutating func bool(_ what: String) throws(DecodeError) -> Bool {
        guard offset < bytes.count else { throw DecodeError("\(what): the answer ends early") }
        let byte = bytes[offset]
        offset += 1
        switch byte {
        case 0: return false
        case 1: return true
        default: throw DecodeError("\(what): expected a boolean, found \(byte)")
        }
    }

    mutating func string(_ what: String) throws(DecodeError) -> String { try indexedString(what).string }

    mutating func optionalString(_ what: String) throws(DecodeError) -> String? {
        try bool(what) ? try string(what) : nil
    }

    /// A string and its index in the table: equal indexes are equal bytes, which lets the
    /// decoder share values built from strings (an `env`) by comparing integers.
    mutating func indexedString(_ what: String) throws(DecodeError) -> (string: String, index: Int) {
        let tag = try uint(what)
        if tag > 0 {
            guard tag <= UInt64(table.count) else { throw DecodeError("\(what): a reference to string \(tag) of \(table.count)") }
            let i = Int(tag - 1)
            try spend(table[i].utf8.count, what)
            return (table[i], i)
        }
        let n = try count(what)
        try spend(n, what)
        let range = offset..<(offset + n)
        offset += n
        let s = try bytes.withUnsafeBufferPointer { all throws(DecodeError) -> String in
            let utf8 = UnsafeBufferPointer(rebasing: all[range])
            // Almost every string is ASCII, which is valid UTF-8 as it is.
            if utf8.allSatisfy({ $0 < 0x80 }) { return String(decoding: utf8, as: UTF8.self) }
            guard let s = String(validating: utf8, as: UTF8.self) else { throw DecodeError("\(what): not UTF-8") }
            return s
        }
        table.append(s)
        return (s, table.count - 1)
    }

    private mutating func spend(_ n: Int, _ what: String) throws(DecodeError) {
        guard n <= stringBudget else { throw DecodeError("\(what): more string bytes than the answer may carry") }
        stringBudget -= n
    }

    mutating func enumValue<E: RawRepresentable>(_ what: String) throws(DecodeError) -> E where E.RawValue == String {
        let s = try string(what)
        guard let e = E(rawValue: s) else { throw DecodeError("\(what): unknown value `\(s)`") }
        return e
    }

    /// What ``WireWriter/choice(_:)`` wrote.
    mutating func choice<E: CaseIterable>(_ what: String) throws(DecodeError) -> E {
        let i = try uint(what)
        let all = E.allCases
        guard i < UInt64(all.count) else { throw DecodeError("\(what): unknown value \(i)") }
        return all[all.index(all.startIndex, offsetBy: Int(i))]
    }
}
