import SundialTesting
import Testing

@testable import SundialRuntime

/// ``SecretStreamMasker`` over its ``SecretAutomaton``: the same output as the whole-stream
/// reference (``SecretStreamMaskerTests/reference(_:_:)``) for secrets that are prefixes,
/// suffixes and overlaps of each other, under random chunkings and cuts; exactly the partial
/// match held back; and work linear in the output whatever the secrets.
@Suite(.offPool) struct SecretAutomatonTests {
    typealias Bytes = [UInt8]

    /// Secrets made of each other: a prefix, a suffix, an overlap (one's end is the next one's
    /// beginning), a repetition, or fresh bytes.
    static func secrets(_ rng: inout SplitMix, _ alphabet: Bytes, maxLength: Int) -> [Bytes] {
        func fresh(_ n: Int, _ rng: inout SplitMix) -> Bytes { (0..<n).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] } }
        var list: [Bytes] = [fresh(Int(rng.next() % UInt64(maxLength)) + 1, &rng)]
        for _ in 0..<Int(rng.next() % 4) {
            let other = list[Int(rng.next() % UInt64(list.count))]
            let cut = Int(rng.next() % UInt64(other.count)) + 1
            let next: Bytes =
                switch rng.next() % 5 {
                case 0: Bytes(other.prefix(cut))
                case 1: Bytes(other.suffix(cut))
                case 2: Bytes(other.suffix(cut)) + fresh(Int(rng.next() % 3) + 1, &rng)
                case 3: Bytes(Array(repeating: other.prefix(cut), count: 2).joined())
                default: fresh(Int(rng.next() % UInt64(maxLength)) + 1, &rng)
                }
            list.append(Bytes(next.prefix(maxLength)))
        }
        return list
    }

    /// A stream that holds the secrets often: whole, cut short, overlapping, among fresh bytes.
    static func stream(_ rng: inout SplitMix, _ alphabet: Bytes, _ secrets: [Bytes], pieces: Int) -> Bytes {
        var s: Bytes = []
        for _ in 0..<Int(rng.next() % UInt64(pieces)) {
            let secret = secrets[Int(rng.next() % UInt64(secrets.count))]
            switch rng.next() % 4 {
            case 0: s += secret
            case 1: s += secret.prefix(Int(rng.next() % UInt64(secret.count)))
            case 2: s += secret.suffix(Int(rng.next() % UInt64(secret.count)) + 1)
            default: s += (0..<Int(rng.next() % 4)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            }
        }
        return s
    }

    /// The longest tail of `segment` that is a proper beginning of a secret: what must be held.
    static func partialMatch(_ segment: ArraySlice<UInt8>, _ secrets: [Bytes]) -> Int {
        let usable = secrets.filter { $0.contains { $0 != 0x0A } }
        for n in stride(from: segment.count, to: 0, by: -1) {
            let tail = segment.suffix(n)
            if usable.contains(where: { $0.count > n && $0.prefix(n).elementsEqual(tail) }) { return n }
        }
        return 0
    }

    /// Feeds `stream` in random chunks (empty ones too) with random cuts (``SecretStreamMasker/flush(_:)``)
    /// and checks the output against the reference of each cut segment, and the held tail after
    /// each chunk.
    static func check(_ rng: inout SplitMix, _ stream: Bytes, _ secrets: [Bytes], maxChunk: Int) -> Bool {
        let strings = secrets.map { String(decoding: $0, as: UTF8.self) }
        guard secrets.allSatisfy({ Array(String(decoding: $0, as: UTF8.self).utf8) == $0 }) else { return true }
        guard var m = SecretStreamMasker(secrets: strings) else { return true }
        var out: Bytes = []
        var expected: Bytes = []
        var segmentStart = 0
        var at = 0
        while at < stream.count {
            let next = min(stream.count, at + Int(rng.next() % UInt64(maxChunk + 1)))
            stream[at..<next].withUnsafeBytes { m.feed($0) { out += $0 } }
            at = next
            let hold = partialMatch(stream[segmentStart..<at], secrets)
            #expect(m.heldCount == hold, "held \(m.heldCount), partial match \(hold): \(stream[segmentStart..<at]) \(secrets)")
            if m.heldCount != hold { return false }
            if rng.next() % 8 == 0 {
                m.flush { out += $0 }
                expected += SecretStreamMaskerTests.reference(Bytes(stream[segmentStart..<at]), secrets)
                segmentStart = at
            }
        }
        m.flush { out += $0 }
        expected += SecretStreamMaskerTests.reference(Bytes(stream[segmentStart...]), secrets)
        #expect(out == expected, "stream \(stream) secrets \(secrets)")
        return out == expected
    }

    @Test func smallAlphabetsPrefixesSuffixesAndOverlaps() {
        var rng = SplitMix(seed: 0xA40C_0EA5)
        let alphabets: [Bytes] = [Array("a".utf8), Array("ab".utf8), Array("ab\n".utf8), Array("abc".utf8)]
        for _ in 0..<4000 {
            let alphabet = alphabets[Int(rng.next() % UInt64(alphabets.count))]
            let secrets = Self.secrets(&rng, alphabet, maxLength: 6)
            let stream = Self.stream(&rng, alphabet, secrets, pieces: 16)
            if !Self.check(&rng, stream, secrets, maxChunk: 7) { return }
        }
    }

    /// Longer repetitive secrets (`abab…`, `aaa…b`) against long near misses, in larger chunks.
    @Test func repetitiveSecretsAndLongNearMisses() {
        var rng = SplitMix(seed: 0x5EC2_E7AA)
        for _ in 0..<300 {
            let alphabet = Array((rng.next() % 2 == 0 ? "ab" : "abc").utf8)
            let unit = Self.secrets(&rng, alphabet, maxLength: 3)[0]
            let long = Bytes(Array(repeating: unit, count: Int(rng.next() % 20) + 2).joined()) + [alphabet.last!]
            var secrets = [long]
            if rng.next() % 2 == 0 { secrets.append(Bytes(long.prefix(Int(rng.next() % UInt64(long.count)) + 1))) }
            if rng.next() % 2 == 0 { secrets.append(Bytes(long.suffix(Int(rng.next() % UInt64(long.count)) + 1))) }
            let stream = Self.stream(&rng, alphabet, secrets + [Bytes(long.dropLast())], pieces: 24)
            if !Self.check(&rng, stream, secrets, maxChunk: 40) { return }
        }
    }

    /// A 100 KB repetitive secret against 10 MB of output that matches it almost, and wholly
    /// once per block, in 64 KiB reads: at most two transitions per byte, each byte copied into
    /// the held tail at most twice. (Comparing the secret at every position that begins it, as
    /// the masker did, is secret length × output length: the first reads exceed the bound.)
    @Test(arguments: [("a", "b"), ("ab", "ac")])
    func workIsLinearInTheOutput(filler: String, tail: String) {
        let unit = Array(filler.utf8)
        let secret = Bytes(Array(repeating: unit, count: 100_000 / unit.count).joined()) + Array(tail.utf8)
        let block = Bytes(Array(repeating: unit, count: 150_000 / unit.count).joined()) + Array(tail.utf8)
        let blocks = 10_000_000 / block.count + 1
        guard var m = SecretStreamMasker(secrets: [String(decoding: secret, as: UTF8.self)]) else {
            Issue.record("no masker")
            return
        }
        var out: Bytes = []
        var fed = 0
        var pending: Bytes = []
        var over = false
        for _ in 0..<blocks {
            pending += block
            while pending.count >= 65536 || (fed + pending.count == blocks * block.count && !pending.isEmpty) {
                let n = min(65536, pending.count)
                pending.withUnsafeBytes { m.feed(UnsafeRawBufferPointer(rebasing: $0[..<n])) { out += $0 } }
                pending.removeSubrange(..<n)
                fed += n
                if m.steps > 2 * fed || m.copiedBytes > 2 * fed + 2 * secret.count {
                    Issue.record("after \(fed) bytes: \(m.steps) steps, \(m.copiedBytes) bytes copied")
                    over = true
                    break
                }
            }
            if over { break }
        }
        m.flush { out += $0 }
        guard !over else { return }
        #expect(fed > 10_000_000)
        let visible = Bytes(Array(repeating: unit, count: (150_000 - 100_000) / unit.count).joined())
        #expect(out == Bytes(Array(repeating: visible + Array("***".utf8), count: blocks).joined()))
    }
}

/// Runs with the same secrets share one automaton while any of them lives (about 21 bytes a
/// secret byte each: a job under `concurrency: allow` with a large `env_file` would otherwise
/// hold one per run).
@Suite(.offPool) struct SharedSecretAutomatonTests {
    @Test func runsWithTheSameSecretsShareOneAutomatonWhileAlive() async throws {
        let runner = try ProcessRunner()
        let secret = "hunter2-" + String(repeating: "s", count: 64)
        @Sendable func spec() -> LaunchSpec {
            var s = LaunchSpec(
                job: "j", runID: nextRunID(), executable: "/bin/sh",
                arguments: ["sh", "-c", "echo \"$TOKEN\"; exec sleep 5"],
                environment: ["TOKEN": secret, "PATH": "/usr/bin:/bin"], timeoutMs: 20_000)
            s.secretValues = [secret]
            return s
        }
        let lines = Lines()
        let (a, b, shared) = try await withDeadline(15) {
            let a = await runner.start(spec(), onOutput: lines.handler)
            let b = await runner.start(spec(), onOutput: lines.handler)
            return (a, b, runner.engine.sharedAutomataCount)
        }
        #expect(a.pid != nil && b.pid != nil)
        #expect(shared == 1)
        #expect(await eventuallyAsync(10) { lines.stdout.count == 2 })
        runner.engine.post(.terminate(nil, graceMs: 0))
        _ = try await withDeadline(15) {
            _ = await a.completion()
            return await b.completion()
        }
        #expect(lines.stdout.count == 2 && lines.stdout.allSatisfy { !$0.contains("hunter2") })
        // Weak: once the runs are gone, so is their automaton.
        #expect(runner.engine.sharedAutomataCount == 0)
        await runner.shutdown()
    }
}
