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

    /// A CI log viewer acts on escape sequences as a terminal does.
    @Test func githubEscapesControlCharactersToo() {
        let report = DiagnosticFormatter(format: .github).render([diagnostic("f\u{1B}.yaml", 1, 1, "bad \u{1B}]0;PWNED\u{07} \u{202E}x")])
        #expect(report == "::error file=f\\x1b.yaml,line=1,col=1::bad \\x1b]0;PWNED\\x07 \\xe2\\x80\\xaex\n")
    }

    @Test func aLoneCarriageReturnOrNewlineIsEscapedToo() {
        let report = DiagnosticFormatter(format: .github).render([diagnostic("f.yaml", 1, 1, "a\rb\nc")])
        #expect(report == "::error file=f.yaml,line=1,col=1::a%0Db%0Ac\n")
    }

    /// A value written with YAML's escapes (`"\e]0;PWNED\a"` sets a terminal's title) is quoted
    /// by its message, and a raw C1 control or bidirectional override can sit in a source line:
    /// the text form shows them as `\xHH`, with the caret still under its character.
    @Test func textEscapesControlCharactersInMessagesAndSourceLines() {
        let text = """
            version: 1
            jobs:
              a:
                every: 5m
                timezone: "\\e]0;PWNED\\a\\x9b"
                shell: "x" # \u{202E}\u{2066}\u{85}
            """
        let loader = ConfigLoader(environment: ConfigEnvironment(zoneExists: { $0 == "UTC" }, fileReadable: { _ in true }))
        let r = loader.load([ConfigLoader.SourceFile(path: "a.yaml", bytes: Array(text.utf8))])
        var diagnostics = r.diagnostics
        diagnostics.append(Diagnostic(at: SourceLocation(file: "a.yaml", line: 6, column: 19), "after the override"))
        let report = DiagnosticFormatter(format: .text, sources: ["a.yaml": Array(text.utf8)]).render(diagnostics)
        #expect(
            !report.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" || (0x7F...0x9F).contains($0.value) || $0 == "\u{202E}" || $0 == "\u{2066}" },
            "\(report.unicodeScalars.map { $0.escaped(asASCII: true) }.joined())")
        #expect(report.contains("a.yaml:5:15: error: `timezone`: `\\x1b]0;PWNED\\x07\\xc2\\x9b` does not match the pattern"), "\(report)")
        #expect(report.contains("    timezone: \"\\e]0;PWNED\\a\\x9b\"\n"), "\(report)")
        #expect(
            report.hasSuffix(
                """
                a.yaml:6:19: error: after the override
                    shell: "x" # \\xe2\\x80\\xae\\xe2\\x81\\xa6\\xc2\\x85
                                             ^

                """), "\(report)")
    }
}
