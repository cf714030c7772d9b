import Foundation
import SundialTesting
import Testing

/// The documentation names only commands and options that exist.
///
/// Every `sundial SUBCOMMAND ...` invocation in the code spans and code blocks of README.md and
/// docs/*.md is checked against the built binary's own description of its commands
/// (`--experimental-dump-help`, the data behind `--help`): the subcommand must exist and each
/// `--option` after it must be one of that subcommand's. A code span that is just an option
/// (`--state DIR`) must be an option of some command, unless it belongs to another tool named
/// in ``otherTools``.
@Suite("docs name only real commands and options (built binary)", .serialized, .offPool)
struct DocCommandsTests {
    /// Options of tools other than `sundial` that the docs mention on their own, with the tool.
    static let otherTools: [String: String] = [
        "--no-parallel": "swift test",
        "--static-swift-stdlib": "swift build",
        "--skip-build": "packaging/build-deb.sh",
        "--lintian": "packaging/build-deb.sh",
        "--out": "packaging/build-deb.sh",
        "--quick": "bench/run",
        "--experimental-dump-help": "swift-argument-parser",
        "--collector.textfile.directory": "node_exporter",
        "--kill-who": "systemctl kill",
        "--signal": "systemctl kill",
    ]

    /// Subcommand name → its long options (`--help` included), from the binary.
    static func commandTree() async throws -> (commands: [String: Set<String>], root: Set<String>) {
        let r = try await CLI.run(["--experimental-dump-help"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let root = try #require(json["command"] as? [String: Any])
        func longOptions(_ command: [String: Any]) -> Set<String> {
            var out: Set<String> = ["--help"]
            for arg in command["arguments"] as? [[String: Any]] ?? [] {
                for name in arg["names"] as? [[String: Any]] ?? [] where name["kind"] as? String == "long" {
                    if let n = name["name"] as? String { out.insert("--" + n) }
                }
            }
            return out
        }
        var commands: [String: Set<String>] = ["help": ["--help"]]
        for sub in root["subcommands"] as? [[String: Any]] ?? [] {
            if let name = sub["commandName"] as? String { commands[name] = longOptions(sub) }
        }
        return (commands, longOptions(root))
    }

    /// README.md and docs/*.md, by path relative to the package.
    static func documents() throws -> [(path: String, text: String)] {
        let root = CLI.packageRoot
        var paths = ["README.md"]
        let docs = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("docs").path)
        paths += docs.filter { $0.hasSuffix(".md") }.sorted().map { "docs/" + $0 }
        return try paths.map { ($0, try String(contentsOf: root.appendingPathComponent($0), encoding: .utf8)) }
    }

    /// The code of a Markdown text: the lines of fenced blocks (except YAML and JSON, whose
    /// comments and values are not commands), and inline code spans.
    static func codeFragments(_ markdown: String) -> [String] {
        var out: [String] = []
        var fence: String?
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("```") {
                fence = fence == nil ? String(trimmed.dropFirst(3)).lowercased() : nil
                continue
            }
            if let fence {
                if !["yaml", "yml", "json", "jsonl"].contains(fence) { out.append(String(line)) }
                continue
            }
            // Inline spans: text between single backticks on one line.
            let parts = line.split(separator: "`", omittingEmptySubsequences: false)
            for (i, part) in parts.enumerated() where i % 2 == 1 { out.append(String(part)) }
        }
        return out
    }

    struct Finding: CustomStringConvertible {
        var path: String
        var fragment: String
        var problem: String
        var description: String { "\(path): `\(fragment)`: \(problem)" }
    }

    /// The problems in one code fragment.
    static func check(_ fragment: String, commands: [String: Set<String>], root: Set<String>) -> [String] {
        // Drop shell comments and escaped pipes of Markdown tables.
        var code = fragment.replacingOccurrences(of: "\\|", with: "|")
        if let hash = code.range(of: " #") { code = String(code[..<hash.lowerBound]) }
        if code.hasPrefix("#") { return [] }
        let words = code.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        var problems: [String] = []
        let allOptions = commands.values.reduce(root) { $0.union($1) }
        // A span that is only options (`--state DIR`, `--log FILE|-`).
        if let first = words.first, first.hasPrefix("--"), !fragment.contains("sundial") {
            let option = String(first.split(separator: "=")[0])
            if !allOptions.contains(option) && otherTools[option] == nil {
                problems.append("no sundial command has the option \(option)")
            }
            return problems
        }
        let separators: Set<String> = ["|", "||", "&&", ";", ">", ">>", "<", "2>&1", "2>"]
        var i = 0
        while i < words.count {
            let word = words[i]
            // `sundial`, `/usr/bin/sundial`, `"$bin"` are not all recognisable; the name is.
            let isSundial = word == "sundial" || word.hasSuffix("/sundial")
            let previous = i > 0 ? words[i - 1] : ""
            // `journalctl -u sundial`, `systemctl restart sundial`, `man sundial`, `dpkg -r sundial`.
            let isUnitOrPackage =
                previous.hasPrefix("-")
                || [
                    "systemctl", "restart", "reload", "start", "stop", "status",
                    "enable", "man", "install", "edit",
                ].contains(previous)
            guard isSundial, !isUnitOrPackage, i + 1 < words.count else {
                i += 1
                continue
            }
            let sub = words[i + 1]
            if sub.hasPrefix("-") {
                // Root options: `sundial --version`.
                let option = String(sub.split(separator: "=")[0])
                if sub.hasPrefix("--"), !root.contains(option) { problems.append("`sundial` has no option \(option)") }
                i += 2
                continue
            }
            guard sub.first.map({ $0.isLetter && $0.isLowercase }) == true,
                sub.allSatisfy({ $0.isLowercase || $0 == "-" || $0.isNumber })
            else {
                i += 1
                continue
            }
            guard let options = commands[sub] else {
                problems.append("`sundial \(sub)` is not a command")
                i += 2
                continue
            }
            var j = i + 2
            while j < words.count, !separators.contains(words[j]) {
                let w = words[j].trimmingCharacters(in: CharacterSet(charactersIn: "[]()\"'"))
                if w.hasPrefix("--"), w.count > 2 {
                    let option = String(w.split(separator: "=")[0]).components(separatedBy: "|")[0]
                    if !options.contains(option) { problems.append("`sundial \(sub)` has no option \(option)") }
                }
                j += 1
            }
            i = j
        }
        return problems
    }

    @Test func everyDocumentedCommandAndOptionExists() async throws {
        let (commands, root) = try await Self.commandTree()
        #expect(commands["run"]?.contains("--state") == true, "the command tree was not read")
        var findings: [Finding] = []
        var invocations = 0
        for doc in try Self.documents() {
            for fragment in Self.codeFragments(doc.text) {
                if fragment.contains("sundial ") { invocations += 1 }
                for problem in Self.check(fragment, commands: commands, root: root) {
                    findings.append(Finding(path: doc.path, fragment: fragment, problem: problem))
                }
            }
        }
        #expect(invocations > 50, "too few `sundial ...` fragments found (\(invocations)): is the scan broken?")
        #expect(findings.isEmpty, "\(findings.map(\.description).joined(separator: "\n"))")
    }

    /// The checker itself: it flags what does not exist and accepts what does.
    @Test func checkerFlagsUnknownCommandsAndOptions() {
        let commands: [String: Set<String>] = ["run": ["--help", "--state"], "validate": ["--help", "--format"]]
        let root: Set<String> = ["--help", "--version"]
        #expect(Self.check("sundial run --state x examples/", commands: commands, root: root).isEmpty)
        #expect(Self.check("sundial frobnicate", commands: commands, root: root) == ["`sundial frobnicate` is not a command"])
        #expect(Self.check("sundial run --stat x", commands: commands, root: root) == ["`sundial run` has no option --stat"])
        #expect(Self.check("sundial validate --format=json a | jq --raw", commands: commands, root: root).isEmpty)
        #expect(Self.check("--state DIR", commands: commands, root: root).isEmpty)
        #expect(Self.check("--frob", commands: commands, root: root) == ["no sundial command has the option --frob"])
        #expect(Self.check("journalctl -u sundial -o cat", commands: commands, root: root).isEmpty)
        #expect(Self.check("systemctl reload sundial", commands: commands, root: root).isEmpty)
        #expect(Self.check("sundial --versio", commands: commands, root: root) == ["`sundial` has no option --versio"])
    }
}
