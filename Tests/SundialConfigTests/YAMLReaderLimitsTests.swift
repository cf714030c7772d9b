import Foundation
import SundialCore
import SundialTesting
import Testing

@testable import SundialConfig

/// Hostile input found by probing, and each limit's own message. The reader must refuse all of
/// it with a positioned error and never crash, whatever the nesting, even on a small stack.
@Suite("YAML reader: nesting, size and alias limits", .offPool)
struct YAMLReaderLimitsTests {
    let reader = YAMLReader()

    func onlyError(_ text: String, reader: YAMLReader = YAMLReader()) -> Diagnostic? {
        let r = reader.read(bytes: Array(text.utf8), file: "t.yaml")
        #expect(r.node == nil)
        #expect(r.diagnostics.count == 1)
        return r.diagnostics.first
    }

    /// The ~3 KB file that crashed the agent (SIGSEGV): the `'` inside the plain scalar `x '`
    /// made the old character heuristic stop counting brackets, and Yams recursed per level.
    static let probeCrashFile = "version: 1\njobs: [x ', " + String(repeating: "[", count: 700) + String(repeating: "]", count: 700) + "]"

    @Test func probeCrashFileGetsTheDepthMessageAtTheBracket() {
        let d = onlyError(Self.probeCrashFile)
        #expect(d?.message == "nesting is deeper than the limit of 64 levels")
        // Root mapping (1), `[` at column 7 (2), then `[` number k at column 12 + k (2 + k):
        // the 63rd, at column 75, is level 65.
        #expect(d?.location == SourceLocation(file: "t.yaml", line: 2, column: 75))
    }

    @Test(arguments: ["[", "{"])
    func hundredThousandOpeningBrackets(open: String) {
        let close = open == "[" ? "]" : "}"
        let text = "a: " + String(repeating: open, count: 100_000) + String(repeating: close, count: 100_000) + "\n"
        let d = onlyError(text)
        #expect(d?.message == "nesting is deeper than the limit of 64 levels")
        #expect(d?.location == SourceLocation(file: "t.yaml", line: 1, column: 67))
    }

    @Test func tenThousandLevelsOfBlockIndentation() {
        // 50 MB, built as bytes (a String built line by line takes seconds in a debug build);
        // the reader stops at level 65, so only the pre-checks see all of it.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(50_030_000)
        for i in 0..<10_000 {
            bytes += [UInt8](repeating: UInt8(ascii: " "), count: i)
            bytes += [UInt8(ascii: "k"), UInt8(ascii: ":"), 0x0A]
        }
        var limits = YAMLReader.Limits()
        limits.maxBytes = 64 * 1024 * 1024
        let r = YAMLReader(limits: limits).read(bytes: bytes, file: "t.yaml")
        #expect(r.node == nil)
        let d = r.diagnostics.first
        #expect(d?.message == "nesting is deeper than the limit of 64 levels")
        #expect(d?.location == SourceLocation(file: "t.yaml", line: 65, column: 65))
    }

    @Test func tenThousandChainedDashes() {
        let text = "a:\n" + String(repeating: "- ", count: 10_000) + "x\n"
        let d = onlyError(text)
        #expect(d?.message == "nesting is deeper than the limit of 64 levels")
        // Root mapping (1), then dash k at column 2k - 1 opens level k + 1.
        #expect(d?.location == SourceLocation(file: "t.yaml", line: 2, column: 127))
    }

    /// 100 levels at one space each: the old heuristic counted two columns a level, let it
    /// through, and the tree builder then blamed aliases.
    @Test func hundredLevelsOfOneSpaceIndentationIsADepthError() {
        var text = ""
        for i in 0..<100 { text += String(repeating: " ", count: i) + "k\(i):\n" }
        let d = onlyError(text)
        #expect(d?.message == "nesting is deeper than the limit of 64 levels")
        #expect(d?.location == SourceLocation(file: "t.yaml", line: 65, column: 65))
    }

    @Test func exactlyTheLimitIsAccepted() {
        var limits = YAMLReader.Limits()
        limits.maxDepth = 5
        let r = YAMLReader(limits: limits)
        #expect(r.read(bytes: Array("[[[[[x]]]]]".utf8), file: "t.yaml").diagnostics.isEmpty)
        #expect(onlyError("[[[[[[x]]]]]]", reader: r)?.location.column == 6)
    }

    /// An alias copies its anchored value, so it adds that value's depth where it is used.
    @Test func aliasOfADeepValueCountsItsDepth() {
        var limits = YAMLReader.Limits()
        limits.maxDepth = 8
        let r = YAMLReader(limits: limits)
        let ok = "a: &a [[[[[1]]]]]\nb: [[*a]]\n"  // 1 + 2 + 5 = 8 levels
        #expect(r.read(bytes: Array(ok.utf8), file: "t.yaml").diagnostics.isEmpty)
        let d = onlyError("a: &a [[[[[1]]]]]\nb: [[[*a]]]\n", reader: r)  // 9 levels
        #expect(d?.message == "nesting is deeper than the limit of 8 levels")
        #expect(d?.location == SourceLocation(file: "t.yaml", line: 2, column: 7))
    }

    @Test func billionLaughsGetsTheAliasMessage() {
        var text = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        var prev = "a"
        for name in ["b", "c", "d", "e", "f", "g", "h", "i"] {
            text += "\(name): &\(name) [" + Array(repeating: "*\(prev)", count: 9).joined(separator: ", ") + "]\n"
            prev = name
        }
        let d = onlyError(text)
        #expect(d?.message == "the document expands to more than 1000000 nodes through its aliases")
        #expect(d?.hint?.contains("remove the repeated aliases") == true)
        #expect(d?.location.line == 7)  // the first `*f` of `g` crosses a million
    }

    /// Few nodes, many bytes: 4,096 aliases of a 1.6 MB scalar in each of 200 jobs (a 4 MB
    /// file) made `validate` scan terabytes (the NUL check, 19 minutes of CPU per file) and the
    /// agent's loader send more than the agent accepts. Aliases may copy at most 16 MiB of text.
    @Test func aliasesOfALongScalarAreBoundedByTheirBytes() {
        let big = String(repeating: "A", count: 1_600_000)
        let aliases = "[" + Array(repeating: "*b", count: 4096).joined(separator: ",") + "]"
        let text =
            "version: 1\njobs:\n  a:\n    description: &b \(big)\n    command: [x]\n"
            + (0..<200).map { "  j\($0):\n    command: \(aliases)\n" }.joined()
        let start = ContinuousClock.now
        let d = onlyError(text)
        #expect(ContinuousClock.now - start < .seconds(10))
        #expect(d?.message == "the document expands to more than 16777216 bytes of text through its aliases")
        // The eleventh copy crosses 16 MiB (the scalar itself is the first).
        #expect(d?.location.line == 7)
        // Ten copies are fine.
        let ten = "a: &b \(big)\nb: [" + Array(repeating: "*b", count: 9).joined(separator: ", ") + "]\n"
        #expect(YAMLReader().read(bytes: Array(ten.utf8), file: "t.yaml").diagnostics.isEmpty)
    }

    /// YAML allows a byte order mark; a file saved with one was refused with "did not find
    /// expected <document start>" at 2:1.
    @Test func aByteOrderMarkIsSkipped() {
        let text = "\u{FEFF}version: 1\nbad: [\n"
        let r = YAMLReader().read(bytes: Array("\u{FEFF}a: 1\nb: [x]\n".utf8), file: "t.yaml")
        #expect(r.diagnostics.isEmpty && r.node?["b"] != nil)
        // Positions after it are as an editor shows them.
        #expect(onlyError(text)?.location.line == 3)
    }

    @Test func aLargeDocumentWithoutAliasesGetsTheSizeMessage() {
        var limits = YAMLReader.Limits()
        limits.maxNodes = 100
        let text = "[" + (0..<200).map(String.init).joined(separator: ", ") + "]\n"
        let d = onlyError(text, reader: YAMLReader(limits: limits))
        #expect(d?.message == "the document has more than 100 nodes")
        #expect(d?.message.contains("alias") == false)
        // The list is node 1, so the 101st node is the scalar "99".
        #expect(d?.location == SourceLocation(file: "t.yaml", line: 1, column: 2 + (0..<99).map { "\($0), ".count }.reduce(0, +)))
    }

    @Test func eachLimitHasItsOwnMessage() {
        var limits = YAMLReader.Limits()
        limits.maxBytes = 64
        limits.maxDepth = 3
        limits.maxNodes = 10
        let r = YAMLReader(limits: limits)
        let messages = [
            onlyError(String(repeating: "a", count: 65), reader: r)?.message,
            onlyError("[[[[x]]]]", reader: r)?.message,
            onlyError("[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]", reader: r)?.message,
            onlyError("a: &a [1, 2, 3]\nb: [*a, *a]\n", reader: r)?.message,
        ]
        #expect(
            messages == [
                "file is 65 bytes, larger than the limit of 64 bytes",
                "nesting is deeper than the limit of 3 levels",
                "the document has more than 10 nodes",
                "the document expands to more than 10 nodes through its aliases",
            ])
    }

    /// The composer keeps open collections on the heap: deep input is refused on a 512 KiB
    /// stack as on the main thread (the old recursive composer overflowed such a stack).
    @Test func deepInputOnASmallStack() throws {
        let inputs = [
            Self.probeCrashFile,
            "a: " + String(repeating: "[", count: 100_000) + "\n",
            "a: " + String(repeating: "{", count: 100_000) + "\n",
            "a:\n" + String(repeating: "- ", count: 10_000) + "x\n",
            (0..<2_000).map { String(repeating: " ", count: $0) + "k:\n" }.joined(),
        ]
        let messages = try runOnThread(stackBytes: 512 * 1024) {
            inputs.map { YAMLReader().read(bytes: Array($0.utf8), file: "t.yaml").diagnostics.map(\.message) }
        }
        #expect(messages == Array(repeating: ["nesting is deeper than the limit of 64 levels"], count: inputs.count))
    }

    // MARK: - Helpers

    /// Runs `body` on a new thread with a `stackBytes` stack and waits (bounded) for it.
    func runOnThread<T: Sendable>(stackBytes: Int, _ body: @escaping @Sendable () -> T) throws -> T {
        let box = ThreadBox(body)
        let thread = Thread {
            box.result = box.body()
            box.done.signal()
        }
        thread.stackSize = stackBytes
        thread.start()
        #expect(box.done.wait(timeout: .now() + 60) == .success)
        return try #require(box.result)
    }
}

/// Hands a closure to a thread and its result back; `done` orders the write before the read.
private final class ThreadBox<T>: @unchecked Sendable {
    let body: @Sendable () -> T
    var result: T?
    let done = DispatchSemaphore(value: 0)
    init(_ body: @escaping @Sendable () -> T) { self.body = body }
}
