import SundialCore
import SundialTesting
import Testing

@testable import SundialRuntime

@Suite("OutputTail", .offPool)
struct OutputTailTests {
    func line(_ text: String) -> OutputLine { OutputLine(runID: rid(1), stream: .stdout, text: text) }

    @Test func keepsTheLastWholeLinesWithinTheLimit() throws {
        let tail = OutputTail(limit: 10)
        #expect(tail.record(runID: rid(1), attempt: 1) == nil)
        for t in ["aaa", "bbb", "ccc", "ddd"] { tail.append(line(t)) }  // 4 bytes each
        let r = try #require(tail.record(runID: rid(1), attempt: 2))
        #expect(r.text == "ccc\nddd\n")
        #expect(r.droppedBytes == 8)
        #expect(r.attempt == 2)
    }

    @Test func aLineLongerThanTheLimitDropsEverything() throws {
        let tail = OutputTail(limit: 10)
        tail.append(line("ok"))
        tail.append(line(String(repeating: "x", count: 20)))
        let r = try #require(tail.record(runID: rid(1), attempt: 1))
        #expect(r.text == "")
        #expect(r.droppedBytes == 3 + 21)
        tail.append(line("after"))
        #expect(tail.record(runID: rid(1), attempt: 1)?.text == "after\n")
    }

    /// A chatty job: a million lines keep the tail exact and the memory bounded (the front is
    /// compacted, not shifted per line).
    @Test func aMillionLinesStayBounded() throws {
        let tail = OutputTail(limit: 64 * 1024)
        for i in 0..<1_000_000 { tail.append(line("line \(i)")) }
        let r = try #require(tail.record(runID: rid(1), attempt: 1))
        #expect(r.text.utf8.count <= 64 * 1024)
        #expect(r.text.hasSuffix("line 999999\n"))
        #expect(r.text.utf8.count + r.droppedBytes == (0..<1_000_000).reduce(0) { $0 + "line \($1)\n".utf8.count })
    }
}
