/// Reads the binary TZif format (RFC 8536): header, transitions, local time types, footer.
///
/// Hand-written: the format is small and fixed, and the core may not use Foundation's
/// `TimeZone` (which on Linux reads ICU's compiled-in data, not the system's tz database).
/// Every read is bounds-checked, so a truncated or hostile file is an error, never a trap.
enum TZifParser {
    struct Failure: Error {
        var message: String
    }

    struct Result {
        /// (unix seconds, offset east in seconds after the transition), sorted.
        var transitions: [(Int64, Int32)]
        /// The offset before the first transition.
        var initialOffset: Int32
        /// The POSIX TZ string of a version 2+ file (may be empty).
        var footer: String?
    }

    /// Times beyond this (about ±300,000 years) are clamped away: zic writes -2^59 as a
    /// "big bang" transition, and milliseconds of such times would overflow `Int64`.
    static let timeLimit: Int64 = 10_000_000_000_000

    struct Reader {
        let b: [UInt8]
        var i: Int

        mutating func need(_ n: Int) throws(Failure) {
            guard n >= 0, i <= b.count, b.count - i >= n else { throw Failure(message: "truncated at byte \(i)") }
        }

        mutating func u8() throws(Failure) -> UInt8 {
            try need(1)
            defer { i += 1 }
            return b[i]
        }

        mutating func be32() throws(Failure) -> Int32 {
            try need(4)
            var v: UInt32 = 0
            for k in 0..<4 { v = v << 8 | UInt32(b[i + k]) }
            i += 4
            return Int32(bitPattern: v)
        }

        mutating func be64() throws(Failure) -> Int64 {
            try need(8)
            var v: UInt64 = 0
            for k in 0..<8 { v = v << 8 | UInt64(b[i + k]) }
            i += 8
            return Int64(bitPattern: v)
        }

        mutating func skip(_ n: Int) throws(Failure) {
            try need(n)
            i += n
        }
    }

    struct Header {
        var version: UInt8
        var isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt: Int
    }

    static func header(_ r: inout Reader) throws(Failure) -> Header {
        try r.need(44)
        guard r.b[r.i] == 0x54, r.b[r.i + 1] == 0x5A, r.b[r.i + 2] == 0x69, r.b[r.i + 3] == 0x66 else {
            throw Failure(message: "missing 'TZif' magic")
        }
        r.i += 4
        let version = try r.u8()
        try r.skip(15)
        var counts: [Int] = []
        for _ in 0..<6 {
            let c = try r.be32()
            guard c >= 0, c < 1_000_000 else { throw Failure(message: "implausible count \(c)") }
            counts.append(Int(c))
        }
        let h = Header(
            version: version, isutcnt: counts[0], isstdcnt: counts[1], leapcnt: counts[2],
            timecnt: counts[3], typecnt: counts[4], charcnt: counts[5])
        guard h.typecnt >= 1 else { throw Failure(message: "no local time types") }
        return h
    }

    static func parse(_ bytes: [UInt8]) throws(Failure) -> Result {
        var r = Reader(b: bytes, i: 0)
        var h = try header(&r)
        var timeSize = 4
        if h.version >= 0x32 {  // '2', '3', '4': skip the 32-bit block, read the 64-bit one
            try r.skip(h.timecnt * 4 + h.timecnt + h.typecnt * 6 + h.charcnt + h.leapcnt * 8 + h.isstdcnt + h.isutcnt)
            h = try header(&r)
            timeSize = 8
        }
        if h.leapcnt > 0 {
            // "right/" zones count leap seconds in their time scale; Sundial's instants are
            // POSIX time, so such a file would shift every fire by ~27 s.
            throw Failure(message: "zones with leap seconds (the 'right/' tree) are not supported")
        }
        var rawTimes: [Int64] = []
        rawTimes.reserveCapacity(h.timecnt)
        for _ in 0..<h.timecnt { rawTimes.append(timeSize == 8 ? try r.be64() : Int64(try r.be32())) }
        var typeIndex: [Int] = []
        for _ in 0..<h.timecnt { typeIndex.append(Int(try r.u8())) }
        var utoffs: [Int32] = []
        for _ in 0..<h.typecnt {
            let off = try r.be32()
            _ = try r.u8()  // isdst: the offset is all the schedule needs
            _ = try r.u8()  // abbreviation index
            guard off > -25 * 3600, off < 26 * 3600 else { throw Failure(message: "UTC offset \(off) out of range") }
            utoffs.append(off)
        }
        try r.skip(h.charcnt + h.leapcnt * (timeSize + 4) + h.isstdcnt + h.isutcnt)
        var footer: String?
        if h.version >= 0x32 {
            guard let nl = try? r.u8(), nl == 0x0A else { throw Failure(message: "missing footer") }
            let start = r.i
            while r.i < bytes.count, bytes[r.i] != 0x0A { r.i += 1 }
            guard r.i < bytes.count else { throw Failure(message: "unterminated footer") }
            footer = String(decoding: bytes[start..<r.i], as: UTF8.self)
        }
        var initial = utoffs[0]
        var transitions: [(Int64, Int32)] = []
        transitions.reserveCapacity(rawTimes.count)
        var previous = Int64.min
        for (t, ti) in zip(rawTimes, typeIndex) {
            guard ti < utoffs.count else { throw Failure(message: "transition type \(ti) out of range") }
            guard t > previous else { throw Failure(message: "transition times not ascending") }
            previous = t
            if t < -timeLimit {
                initial = utoffs[ti]
                continue
            }
            if t > timeLimit { break }
            transitions.append((t, utoffs[ti]))
        }
        return Result(transitions: transitions, initialOffset: initial, footer: footer)
    }
}
