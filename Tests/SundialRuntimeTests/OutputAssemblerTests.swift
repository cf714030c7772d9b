import SundialTesting
import Testing

@testable import SundialRuntime

@Suite(.offPool) struct OutputAssemblerTests {
    private func split(_ chunks: [String], max: Int) -> [(String, Bool)] {
        var a = OutputAssembler(maxLineBytes: max)
        var out: [(String, Bool)] = []
        for c in chunks {
            Array(c.utf8).withUnsafeBytes { buf in
                a.feed(buf) { out.append((String(decoding: $0, as: UTF8.self), $1)) }
            }
        }
        a.finish { out.append((String(decoding: $0, as: UTF8.self), $1)) }
        return out
    }

    @Test func linesAcrossChunks() {
        let r = split(["ab", "c\nde", "f\n\ng"], max: 100)
        #expect(r.map(\.0) == ["abc", "def", "", "g"])
        #expect(r.allSatisfy { !$0.1 })
    }

    @Test func longLineIsCutAndRestSkipped() {
        let r = split(["abcdefghijklmnop\nshort\n"], max: 10)
        #expect(r.map(\.0) == ["abcdefghij", "short"])
        #expect(r.map(\.1) == [true, false])
    }

    @Test func longLineAcrossChunksIsCutOnce() {
        let r = split(["abcdef", "ghijkl", "mnop", "qrs\nnext\n"], max: 8)
        #expect(r.map(\.0) == ["abcdefgh", "next"])
        #expect(r.map(\.1) == [true, false])
    }

    @Test func lineOfExactlyTheLimitIsWhole() {
        let r = split(["12345678\n"], max: 8)
        #expect(r.map(\.0) == ["12345678"])
        #expect(r.map(\.1) == [false])
    }

    @Test func cutRespectsUTF8Boundaries() {
        // "aé€x": a(1) é(2) €(3); a cut at 4 bytes would split "€", so it cuts at 3.
        let r = split(["aé€x\n"], max: 4)
        #expect(r.map(\.0) == ["aé"])
        #expect(r.map(\.1) == [true])
    }

    @Test func cutPendingMarksThePartialLine() {
        var a = OutputAssembler(maxLineBytes: 100)
        var out: [(String, Bool)] = []
        Array("one\ntw".utf8).withUnsafeBytes { a.feed($0) { out.append((String(decoding: $0, as: UTF8.self), $1)) } }
        a.cutPending { out.append((String(decoding: $0, as: UTF8.self), $1)) }
        Array("o\nthree\n".utf8).withUnsafeBytes { a.feed($0) { out.append((String(decoding: $0, as: UTF8.self), $1)) } }
        #expect(out.map(\.0) == ["one", "tw", "three"])
        #expect(out.map(\.1) == [false, true, false])
    }
}
