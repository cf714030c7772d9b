/// Text from job files made safe to print on a terminal.
///
/// A YAML double-quoted value can hold any character (`"\e]0;PWNED\a"` sets a terminal's title;
/// other sequences move the cursor or rewrite what was printed before), and a message quotes
/// the value it rejects. So human-readable output shows control characters as escapes:
/// C0 controls except tab, DEL and C1 controls, which terminals act on, and the bidirectional
/// overrides and isolates (U+202A-U+202E, U+2066-U+2069), which make a line read in another
/// order than it is written. Each such character is written as its UTF-8 bytes in `\xHH` form,
/// as file names that are not printable are (`PathProbe.display`). JSON output needs none of
/// this: its encoder escapes control characters itself.
public enum TerminalText {
    /// Whether `scalar` is shown escaped by ``escaped(_:)``.
    public static func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09: false
        case 0..<0x20, 0x7F...0x9F, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }

    /// `text` with every ``isUnsafe(_:)`` character as `\xHH` per UTF-8 byte (ESC is `\x1b`).
    /// Text without one is returned as is: backslashes are not doubled, so most messages, and
    /// the regular expressions some of them quote, print unchanged.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isUnsafe) else { return text }
        let hex = Array("0123456789abcdef")
        var out = ""
        out.reserveCapacity(text.utf8.count + 16)
        for scalar in text.unicodeScalars {
            guard isUnsafe(scalar) else {
                out.unicodeScalars.append(scalar)
                continue
            }
            for byte in String(scalar).utf8 {
                out += "\\x"
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 15)])
            }
        }
        return out
    }

    /// `text` escaped line by line: its newlines kept, and a carriage return that ends a line
    /// (CRLF output), every other unsafe character escaped (a job's output shown by `sundial
    /// logs` on a terminal).
    public static func escapedLines(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0 != "\n" && $0 != "\r" && isUnsafe($0) }) else { return text }
        // Split by scalar: "\r\n" is one `Character`, which a split on "\n" would not cut.
        return text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            let crlf = line.last == "\r"
            let body = String(String.UnicodeScalarView(crlf ? line.dropLast() : line[...]))
            return escaped(body) + (crlf ? "\r" : "")
        }.joined(separator: "\n")
    }
}
