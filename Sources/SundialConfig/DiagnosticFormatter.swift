import SundialCore

/// Prints diagnostics for people (gcc style, with the source line and a caret), for tools
/// (a JSON array) and for GitHub Actions annotations.
///
/// The `text` form goes to a terminal: control characters in a message (which may quote a
/// value written as `"\e]0;…\a"`) and in a source line are shown escaped (``TerminalText``).
public enum DiagnosticFormat: String, Sendable, CaseIterable {
    case text, json, github
}

public struct DiagnosticFormatter: Sendable {
    public var format: DiagnosticFormat
    /// File contents by path, to quote the offending line in `text` format.
    public var sources: [String: [UInt8]]

    public init(format: DiagnosticFormat, sources: [String: [UInt8]] = [:]) {
        self.format = format
        self.sources = sources
    }

    /// The whole report. `text` ends with a newline per line; `json` is one array.
    public func render(_ diagnostics: [Diagnostic]) -> String {
        switch format {
        case .json:
            let items: [JSONValue] = diagnostics.map { d in
                [
                    "file": .string(d.location.file), "line": .int(Int64(d.location.line)),
                    "column": .int(Int64(d.location.column)), "severity": .string(d.severity.rawValue),
                    "message": .string(d.fullMessage),
                ]
            }
            return JSONValue.array(items).jsonText + "\n"
        case .github:
            return diagnostics.map { d in
                let kind = d.severity == .error ? "error" : d.severity == .warning ? "warning" : "notice"
                return "::\(kind) file=\(escapeProperty(d.location.file)),line=\(d.location.line),col=\(d.location.column)::\(escapeData(d.fullMessage))\n"
            }.joined()
        case .text:
            var lineStarts: [String: [Int]] = [:]
            var report = ""
            for d in diagnostics {
                report += TerminalText.escaped(d.description)
                report += "\n"
                // The message never quotes a secret; the line it was read from would.
                if !d.sourceMayHoldSecret, let line = sourceLine(d.location, lineStarts: &lineStarts) {
                    report += line.text
                    report += "\n"
                    report += String(repeating: " ", count: line.caretOffset)
                    report += "^\n"
                }
            }
            return report
        }
    }

    /// The source line of a location (tabs kept so the caret lines up; control characters
    /// escaped, ``TerminalText``) and the caret's offset.
    ///
    /// Each file's line starts are found once per report and kept in `lineStarts`: rescanning
    /// the file from its start for every diagnostic made a report of many problems on a big
    /// file quadratic (it was 20 % of the loader fuzzer's time).
    func sourceLine(_ loc: SourceLocation, lineStarts: inout [String: [Int]]) -> (text: String, caretOffset: Int)? {
        guard let bytes = sources[loc.file], loc.line >= 1 else { return nil }
        let starts = lineStarts[loc.file] ?? Self.lineStarts(of: bytes)
        lineStarts[loc.file] = starts
        guard loc.line <= starts.count else { return nil }
        let start = starts[loc.line - 1]
        var end = start
        while end < bytes.count, bytes[end] != 0x0A, end - start < 400 { end += 1 }
        var text = String(decoding: bytes[start..<end], as: UTF8.self)
        if text.hasSuffix("\r") { text.removeLast() }
        // Columns count Unicode scalars (as libyaml does); the caret line copies tabs.
        // Counted on the escaped text, so the caret stays under its character.
        let before = String(text.unicodeScalars.prefix(max(0, loc.column - 1)))
        return (TerminalText.escaped(text), TerminalText.escaped(before).unicodeScalars.count)
    }

    /// Byte offsets where each line starts: 0, then one past every newline.
    static func lineStarts(of bytes: [UInt8]) -> [Int] {
        var starts = [0]
        for (i, byte) in bytes.enumerated() where byte == 0x0A { starts.append(i + 1) }
        return starts
    }

    // GitHub workflow-command escaping, scalar by scalar: a CR LF pair is one `Character` in
    // Swift, so a `Character`-based replace of "\r" and "\n" left it unescaped, and a message
    // quoting a key like "a\r\n::error ..." could forge an annotation.
    private func escapeData(_ s: String) -> String { escape(s, property: false) }

    private func escapeProperty(_ s: String) -> String { escape(s, property: true) }

    private func escape(_ s: String, property: Bool) -> String {
        let special: (UInt8) -> Bool = { b in
            b == UInt8(ascii: "%") || b == 0x0D || b == 0x0A || (property && (b == UInt8(ascii: ":") || b == UInt8(ascii: ",")))
        }
        // Other control characters (ESC, BEL, C1, bidi overrides) would reach the CI log's
        // viewer raw: shown escaped, as in the text format (`TerminalText`).
        guard s.utf8.contains(where: special) || s.unicodeScalars.contains(where: TerminalText.isUnsafe) else { return s }
        var out = ""
        out.reserveCapacity(s.utf8.count + 16)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "%": out += "%25"
            case "\r": out += "%0D"
            case "\n": out += "%0A"
            case ":" where property: out += "%3A"
            case "," where property: out += "%2C"
            case _ where TerminalText.isUnsafe(scalar): out += TerminalText.escaped(String(scalar))
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
