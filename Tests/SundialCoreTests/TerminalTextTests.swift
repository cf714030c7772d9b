import SundialCore
import Testing

/// A job's output and a launch failure's reason reach the operator's terminal through `sundial
/// logs`, `logs -f`, `status` and `history`: an OSC 52 sequence in a job's output set the
/// terminal's clipboard, `\e[2J` cleared the screen (found by probing the release binary).
@Suite("Terminal text")
struct TerminalTextTests {
    @Test func outputLinesKeepTheirNewlinesAndLoseTheirControls() {
        let output = "plain line\n\u{1B}]52;c;cHduZWQ=\u{07}clipboard\n\u{1B}[2Jcleared\ttab\n"
        #expect(
            TerminalText.escapedLines(output)
                == "plain line\n\\x1b]52;c;cHduZWQ=\\x07clipboard\n\\x1b[2Jcleared\ttab\n")
        #expect(TerminalText.escapedLines("a\nb\n") == "a\nb\n")
        // CRLF output keeps its line ends; a carriage return inside a line is escaped.
        #expect(TerminalText.escapedLines("a\r\n\u{1B}b\r\nc\rd") == "a\r\n\\x1bb\r\nc\\x0dd")
        #expect(TerminalText.escapedLines("\u{9B}31m \u{202E}") == "\\xc2\\x9b31m \\xe2\\x80\\xae")
    }
}
