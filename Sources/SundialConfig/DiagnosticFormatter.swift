import SundialCore

/// Prints diagnostics for people (gcc style, with the source line and a caret), for tools
/// (a JSON array) and for GitHub Actions annotations.
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
            return diagnostics.map { d in
                var s = d.description + "\n"
                if let line = sourceLine(d.location) {
                    s += line.text + "\n" + String(repeating: " ", count: line.caretOffset) + "^\n"
                }
                return s
            }.joined()
        }
    }

    /// The source line of a location (tabs kept so the caret lines up) and the caret's offset.
    func sourceLine(_ loc: SourceLocation) -> (text: String, caretOffset: Int)? {
        guard let bytes = sources[loc.file], loc.line >= 1 else { return nil }
        var line = 1
        var start = 0
        var i = 0
        while i < bytes.count, line < loc.line {
            if bytes[i] == 0x0A {
                line += 1
                start = i + 1
            }
            i += 1
        }
        guard line == loc.line else { return nil }
        var end = start
        while end < bytes.count, bytes[end] != 0x0A, end - start < 400 { end += 1 }
        var text = String(decoding: bytes[start..<end], as: UTF8.self)
        if text.hasSuffix("\r") { text.removeLast() }
        // Columns count Unicode scalars (as libyaml does); the caret line copies tabs.
        let prefix = text.unicodeScalars.prefix(max(0, loc.column - 1))
        let caret = prefix.reduce(into: 0) { n, _ in n += 1 }
        return (text, caret)
    }

    // GitHub workflow-command escaping.
    private func escapeData(_ s: String) -> String {
        s.replacingAll("%", "%25").replacingAll("\r", "%0D").replacingAll("\n", "%0A")
    }

    private func escapeProperty(_ s: String) -> String {
        escapeData(s).replacingAll(":", "%3A").replacingAll(",", "%2C")
    }
}

extension String {
    func replacingAll(_ target: String, _ replacement: String) -> String {
        guard contains(target) else { return self }
        return split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
