import SundialTesting
import Testing

@testable import SundialRuntime

/// ``SecretStreamMasker`` against a whole-stream reference, under every chunking; and the line
/// splitter with secrets (multi-line secrets, cuts inside a secret at every offset).
@Suite(.offPool) struct SecretStreamMaskerTests {
    // MARK: - The reference

    /// What the masked stream must be, computed on the whole stream at once: every byte of any
    /// occurrence of any secret is hidden; a tail that is a proper beginning of a secret (cut
    /// before its end) is hidden too; each line's run of hidden bytes prints `***` once,
    /// newlines stay.
    static func reference(_ stream: [UInt8], _ secrets: [[UInt8]]) -> [UInt8] {
        let usable = secrets.filter { $0.contains { $0 != 0x0A } }
        var hidden = [Bool](repeating: false, count: stream.count)
        for s in 0..<stream.count {
            for secret in usable where s + secret.count <= stream.count && Array(stream[s..<(s + secret.count)]) == secret {
                for i in s..<(s + secret.count) { hidden[i] = true }
            }
        }
        // The held-back tail at the cut: the first start whose rest is a proper prefix of a secret.
        if let tail = (0..<stream.count).first(where: { s in
            usable.contains { $0.count > stream.count - s && Array($0.prefix(stream.count - s)) == Array(stream[s...]) }
        }) {
            for i in tail..<stream.count { hidden[i] = true }
        }
        var out: [UInt8] = []
        var masking = false
        for (i, b) in stream.enumerated() {
            if !hidden[i] {
                out.append(b)
                masking = false
            } else if b == 0x0A {
                out.append(b)
                masking = false
            } else if !masking {
                out += Array("***".utf8)
                masking = true
            }
        }
        return out
    }

    /// Feeds `stream` to a masker cut at `cuts` (ascending offsets), then flushes.
    static func masked(_ stream: [UInt8], _ secrets: [String], cuts: [Int], maxHeld: inout Int) -> [UInt8] {
        guard var m = SecretStreamMasker(secrets: secrets) else { return stream }
        var out: [UInt8] = []
        var from = 0
        for cut in cuts + [stream.count] {
            stream[from..<cut].withUnsafeBytes { m.feed($0) { out += $0 } }
            maxHeld = max(maxHeld, m.heldCount)
            from = cut
        }
        m.flush { out += $0 }
        #expect(m.heldCount == 0)
        return out
    }

    static func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

    /// Every split into two and three chunks, and one byte at a time, equals the reference;
    /// nothing more than the longest secret − 1 is ever held.
    static func checkEveryChunking(_ s: String, _ secrets: [String]) {
        let stream = Array(s.utf8)
        let expected = reference(stream, secrets.map { Array($0.utf8) })
        let longest = secrets.map(\.utf8.count).max() ?? 0
        var maxHeld = 0
        var splits: [[Int]] = [Array(0...stream.count).dropFirst().dropLast().map { $0 }]  // single bytes
        for i in 0...stream.count {
            splits.append([i])
            if stream.count <= 40 { for j in i...stream.count { splits.append([i, j]) } }
        }
        for cuts in splits {
            let got = masked(stream, secrets, cuts: cuts, maxHeld: &maxHeld)
            #expect(
                got == expected,
                "stream \(s.debugDescription) secrets \(secrets) cuts \(cuts): \(text(got).debugDescription) != \(text(expected).debugDescription)")
            if got != expected { return }
        }
        #expect(maxHeld <= max(0, longest - 1))
    }

    // MARK: - Stream masking

    @Test func aSecretSplitAcrossReadsAtEveryOffset() {
        Self.checkEveryChunking("token=tok-9f8e7d and again tok-9f8e7d.\n", ["tok-9f8e7d"])
        Self.checkEveryChunking("tok-9f8e7dtok-9f8e7d", ["tok-9f8e7d"])
        Self.checkEveryChunking("tok-9f8e7 tok-9f8e7d tok-", ["tok-9f8e7d"])  // near misses, a cut beginning
    }

    @Test func expectedTextsOfTheCommonCases() {
        var held = 0
        func m(_ s: String, _ secrets: [String]) -> String {
            Self.text(Self.masked(Array(s.utf8), secrets, cuts: [], maxHeld: &held))
        }
        #expect(m("token is tok-123\n", ["tok-123"]) == "token is ***\n")
        // A multi-line secret: every line it spans shows `***`, the line structure stays.
        #expect(m("key: BEGIN\nmiddle\nEND done\n", ["BEGIN\nmiddle\nEND"]) == "key: ***\n***\n*** done\n")
        // Overlapping and adjacent occurrences hide their union, with one mask per line.
        #expect(m("xabcdefx", ["abcd", "cdef"]) == "x***x")
        #expect(m("aaa", ["aa"]) == "***")
        #expect(m("secsec!", ["sec"]) == "***!")
        #expect(m("xxabcdefyy abc", ["abc", "abcdef"]) == "xx***yy ***")
        // The beginning of a secret at a cut is hidden; a near miss that ended is not.
        #expect(m("done: tok-1", ["tok-123"]) == "done: ***")
        #expect(m("done: tok-1x", ["tok-123"]) == "done: tok-1x")
        // Non-ASCII values are matched as bytes.
        #expect(m("é pässwörd ü", ["pässwörd"]) == "é *** ü")
    }

    @Test func multiLineAndOverlappingSecretsUnderEveryChunking() {
        Self.checkEveryChunking("key: BEGIN\nmiddle\nEND done\nBEGIN\nmid\n", ["BEGIN\nmiddle\nEND"])
        Self.checkEveryChunking("a\n\nb\nab\n\n", ["b\n\na", "\nab\n"])
        Self.checkEveryChunking("xabcdefx abcd cdef abcdef", ["abcd", "cdef", "bcde"])
        Self.checkEveryChunking("line\n", ["line\n"])
        Self.checkEveryChunking("x\nline", ["\nline\nmore"])  // ends inside a multi-line secret
    }

    @Test func valuesPolicy() {
        // Empty values and values of newlines only mask nothing: no masker at all.
        #expect(SecretStreamMasker(secrets: []) == nil)
        #expect(SecretStreamMasker(secrets: ["", "\n", "\n\n"]) == nil)
        // Any other value is masked however short, as the event log's masker does.
        var held = 0
        #expect(Self.text(Self.masked(Array("banana\n".utf8), ["a", ""], cuts: [], maxHeld: &held)) == "b***n***n***\n")
        // Duplicates are one secret.
        #expect(SecretStreamMasker(secrets: ["abc", "abc"])?.longest == 3)
    }

    /// Random streams over a tiny alphabet (so secrets occur, overlap and straddle often),
    /// random secrets and random chunkings, against the reference.
    @Test func randomStreamsAgainstTheReference() {
        var rng = SplitMix(seed: 0x5EC2E7)
        let alphabet: [UInt8] = Array("ab\n".utf8)
        for _ in 0..<3000 {
            let secrets: [String] = (0..<Int(rng.next() % 3 + 1)).map { _ in
                Self.text((0..<Int(rng.next() % 5 + 1)).map { _ in alphabet[Int(rng.next() % 3)] })
            }
            let stream = (0..<Int(rng.next() % 40)).map { _ in alphabet[Int(rng.next() % 3)] }
            var cuts: [Int] = []
            var at = 0
            while at < stream.count {
                at += Int(rng.next() % 6)
                if at < stream.count { cuts.append(at) }
            }
            var held = 0
            let got = Self.masked(stream, secrets, cuts: cuts, maxHeld: &held)
            let expected = Self.reference(stream, secrets.map { Array($0.utf8) })
            #expect(got == expected, "\(Self.text(stream).debugDescription) \(secrets) \(cuts)")
            #expect(held <= max(0, (secrets.map(\.utf8.count).max() ?? 1) - 1))
            if got != expected { return }
        }
    }

    // MARK: - Lines: masking before cutting

    static func lines(
        _ chunks: [[UInt8]], max: Int, secrets: [String], cutAfter: Bool = false,
        maxHeld: inout Int
    ) -> [(String, Bool)] {
        var a = OutputAssembler(maxLineBytes: max, secrets: secrets)
        var out: [(String, Bool)] = []
        for c in chunks {
            c.withUnsafeBytes { a.feed($0) { out.append((String(decoding: $0, as: UTF8.self), $1)) } }
            maxHeld = Swift.max(maxHeld, a.heldBytes)
        }
        if cutAfter { a.cutPending { out.append((String(decoding: $0, as: UTF8.self), $1)) } }
        a.finish { out.append((String(decoding: $0, as: UTF8.self), $1)) }
        return out
    }

    /// A line cut at `max_line_bytes` anywhere in (or around) a secret, the stream read in two
    /// chunks split anywhere: the line is masked first, then cut; no byte of the secret shows.
    @Test func aLineCutInsideASecretAtEveryOffsetNeverShowsIt() {
        let secret = "S3CR3T-V4LU3"
        let line = Array("prefix-\(secret)-suffix\nnext\n".utf8)
        let masked = "prefix-***-suffix"
        for limit in 1...(masked.utf8.count + 2) {
            let cutLine = Array(masked.utf8.prefix(limit))
            let expectedFirst = (Self.text(cutLine), masked.utf8.count > limit)
            for split in 0...line.count {
                var held = 0
                let got = Self.lines([Array(line[..<split]), Array(line[split...])], max: limit, secrets: [secret], maxHeld: &held)
                #expect(got.map(\.0) == [expectedFirst.0, String("next".prefix(limit))], "limit \(limit) split \(split)")
                #expect(got.first?.1 == expectedFirst.1, "limit \(limit) split \(split)")
                #expect(got.allSatisfy { !$0.0.contains("S") && !$0.0.contains("3") }, "limit \(limit) split \(split): \(got)")
                #expect(held <= limit + secret.utf8.count, "limit \(limit) split \(split): held \(held)")
            }
        }
    }

    @Test func aMultiLineSecretIsMaskedInEveryLineItSpans() {
        let secret = "first-line\nsecond-line\nthird"
        let stream = Array("key: first-line\nsecond-line\nthird end\nplain\n".utf8)
        for split in 0...stream.count {
            var held = 0
            let got = Self.lines([Array(stream[..<split]), Array(stream[split...])], max: 100, secrets: [secret], maxHeld: &held)
            #expect(got.map(\.0) == ["key: ***", "***", "*** end", "plain"], "split \(split)")
            #expect(got.allSatisfy { !$0.1 })
        }
        // Cut at 3 bytes: each line of the secret is still only stars.
        var held = 0
        let cut = Self.lines([stream], max: 3, secrets: [secret], maxHeld: &held)
        #expect(cut.map(\.0) == ["key", "***", "***", "pla"])
    }

    @Test func theOutputBudgetCutInsideASecretHidesItsBeginning() {
        for keep in 0..<8 {
            var held = 0
            let got = Self.lines([Array("one\nsay tok-1234".utf8.prefix(8 + keep))], max: 100, secrets: ["tok-1234"], cutAfter: true, maxHeld: &held)
            // Nothing of the secret arrived (keep 0): the partial line is cut as it is.
            #expect(got.map(\.0) == ["one", keep == 0 ? "say " : "say ***"], "keep \(keep)")
            #expect(got.map(\.1) == [false, true], "keep \(keep)")
        }
    }

    @Test func memoryStaysBoundedWhateverTheJobWrites() {
        let secret = String(repeating: "a", count: 63) + "b"
        var a = OutputAssembler(maxLineBytes: 100, secrets: [secret])
        var lines = 0
        var maxHeld = 0
        // A long run of near misses with no newline, then the secret, in reads of odd sizes.
        let chunk = Array(repeating: UInt8(ascii: "a"), count: 997)
        for _ in 0..<200 {
            chunk.withUnsafeBytes { a.feed($0) { _, _ in lines += 1 } }
            maxHeld = max(maxHeld, a.heldBytes)
        }
        Array("b\n".utf8).withUnsafeBytes { a.feed($0) { _, _ in lines += 1 } }
        #expect(lines == 1)
        #expect(maxHeld <= 100 + 1 + 63)
    }
}

/// A small deterministic generator (tests must not depend on the system's randomness).
struct SplitMix {
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
