import Foundation
import SundialCore
import SundialTesting
import Testing

/// Keeps issue 16's rule true: nothing in Sources/ matches an event name string. Producers build
/// ``LogRecord`` values and consumers switch on its cases; only the JSON encoder
/// (LogRecord+JSON.swift) spells the names. A string literal such as `"run.finished"` anywhere
/// else is a consumer matching the log by name (or a producer bypassing the type) and fails here.
@Suite(.offPool) struct LogEventNameLintTests {
    /// Files allowed to spell event names, and why.
    static let allowed: [String: String] = [
        "Sources/SundialCore/Log/LogRecord+JSON.swift": "the encoder: the one place that names the events",
        "Sources/sundial/ManualPage+Prose.swift": "the man page's jq example filters the log as a user would",
    ]

    static var sourcesDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources")
    }

    /// Every event name of the contract, as the encoder renders them.
    static var eventNames: Set<String> { Set(LogRecordGoldenTests.samples.map(\.event.name)) }

    /// `"name"` literals of `names` in `text`, outside `//` comments, as `line: literal`.
    static func hits(in text: String, names: Set<String>) -> [String] {
        var found: [String] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let code = line.trimmingCharacters(in: .whitespaces)
            if code.hasPrefix("//") { continue }
            for name in names where line.contains("\"\(name)\"") { found.append("\(n + 1): \"\(name)\"") }
        }
        return found
    }

    @Test func noSourceFileOutsideTheEncoderSpellsAnEventName() throws {
        let names = Self.eventNames
        #expect(names.count >= 30 && names.contains("run.finished"))
        let root = Self.sourcesDirectory
        let files = try #require(FileManager.default.enumerator(atPath: root.path)).compactMap { $0 as? String }
            .filter { $0.hasSuffix(".swift") }
        #expect(files.count > 100)
        var offenders: [String] = []
        for file in files.sorted() {
            let relative = "Sources/" + file
            if Self.allowed[relative] != nil { continue }
            let text = try String(contentsOfFile: root.appendingPathComponent(file).path, encoding: .utf8)
            offenders += Self.hits(in: text, names: names).map { "\(relative):\($0)" }
        }
        #expect(offenders.isEmpty, "match a LogRecord case instead of an event name (LogRecord+JSON.swift names them):\n\(offenders.joined(separator: "\n"))")
    }

    /// The scan itself finds what it is for (and skips comments).
    @Test func theScanFindsANameMatch() {
        let names: Set<String> = ["run.finished"]
        #expect(Self.hits(in: #"if event.name == "run.finished" { }"#, names: names) == [#"1: "run.finished""#])
        #expect(Self.hits(in: #"// logs "run.finished""#, names: names).isEmpty)
        #expect(Self.hits(in: #"let file = "run.finished.yaml""#, names: names).isEmpty)
    }

    @Test func everyAllowedFileExists() {
        for file in Self.allowed.keys {
            #expect(FileManager.default.fileExists(atPath: Self.sourcesDirectory.deletingLastPathComponent().appendingPathComponent(file).path), "\(file)")
        }
    }
}
