import SundialCore
import Testing

@testable import SundialConfig

/// How diagnostics are printed: the quoted source line and caret of `text`, and the escaping of
/// GitHub Actions' workflow commands (a message or path that is not escaped breaks the
/// annotation or lets a job file's content forge one).
@Suite struct DiagnosticFormatterTests {
    func diagnostic(_ file: String, _ line: Int, _ column: Int, _ message: String) -> Diagnostic {
        Diagnostic(.error, at: SourceLocation(file: file, line: line, column: column), message)
    }

    @Test func textQuotesEachLineWithItsCaretAcrossFiles() {
        let sources: [String: [UInt8]] = [
            "a.yaml": Array("version: 1\r\njobs:\n  x: { shell: y }\n  \u{e9}t\u{e9}: 1".utf8),
            "b.yaml": Array("one\ntwo\n".utf8),
        ]
        let report = DiagnosticFormatter(format: .text, sources: sources).render([
            diagnostic("a.yaml", 4, 6, "last line, no newline, after two-byte letters"),
            diagnostic("b.yaml", 2, 2, "second file"),
            diagnostic("a.yaml", 1, 10, "a CRLF line"),
            diagnostic("a.yaml", 3, 5, "middle"),
            diagnostic("b.yaml", 3, 1, "the empty line after the last newline"),
            diagnostic("b.yaml", 4, 1, "past the end"),
            diagnostic("c.yaml", 1, 1, "no source"),
        ])
        #expect(
            report == """
                a.yaml:4:6: error: last line, no newline, after two-byte letters
                  \u{e9}t\u{e9}: 1
                     ^
                b.yaml:2:2: error: second file
                two
                 ^
                a.yaml:1:10: error: a CRLF line
                version: 1
                         ^
                a.yaml:3:5: error: middle
                  x: { shell: y }
                    ^
                b.yaml:3:1: error: the empty line after the last newline

                ^
                b.yaml:4:1: error: past the end
                c.yaml:1:1: error: no source

                """)
    }

    @Test func githubEscapesEveryCharacterThatEndsAProperty() {
        let report = DiagnosticFormatter(format: .github).render([
            diagnostic("dir:x,y/100%.yaml", 2, 3, "50% done\r\nforged::error line")
        ])
        #expect(report == "::error file=dir%3Ax%2Cy/100%25.yaml,line=2,col=3::50%25 done%0D%0Aforged::error line\n")
    }

    @Test func aLoneCarriageReturnOrNewlineIsEscapedToo() {
        let report = DiagnosticFormatter(format: .github).render([diagnostic("f.yaml", 1, 1, "a\rb\nc")])
        #expect(report == "::error file=f.yaml,line=1,col=1::a%0Db%0Ac\n")
    }
}
