import Foundation
import SundialTesting
import Testing

/// `sundial man` and `sundial completions`: generated from the command definitions, so every
/// option of every command is documented and completed.
@Suite("sundial man and completions (built binary)", .serialized, .offPool)
struct ManPageTests {
    /// The visible subcommands of the binary, each with its visible options' spellings
    /// (`--state`, `-q`), from `--experimental-dump-help`.
    static func visibleCommands() async throws -> [(name: String, options: [String])] {
        let r = try await CLI.run(["--experimental-dump-help"])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let root = try #require(json["command"] as? [String: Any])
        var out: [(String, [String])] = []
        for sub in root["subcommands"] as? [[String: Any]] ?? [] {
            guard sub["shouldDisplay"] as? Bool != false, let name = sub["commandName"] as? String, name != "help" else { continue }
            var options: [String] = []
            for arg in sub["arguments"] as? [[String: Any]] ?? [] where arg["shouldDisplay"] as? Bool != false {
                for n in arg["names"] as? [[String: Any]] ?? [] {
                    guard let spelled = n["name"] as? String else { continue }
                    options.append((n["kind"] as? String == "long" ? "--" : "-") + spelled)
                }
            }
            out.append((name, options))
        }
        return out
    }

    /// The roff between `.SS "sundial NAME"` and the next section or subsection.
    static func section(of name: String, in page: String) -> String? {
        let lines = page.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(of: Substring(".SS \"sundial \(name.replacingOccurrences(of: "-", with: "\\-"))\"")) else { return nil }
        let end = lines[(start + 1)...].firstIndex { $0.hasPrefix(".SS ") || $0.hasPrefix(".SH ") } ?? lines.endIndex
        return lines[start..<end].joined(separator: "\n")
    }

    @Test func everyOptionOfEveryCommandIsInTheManPage() async throws {
        let man = try await CLI.run(["man"])
        #expect(man.status == 0, "\(man.stderr)")
        #expect(man.stdout.hasPrefix(".\\\"") && man.stdout.contains(".TH SUNDIAL 1"))
        let commands = try await Self.visibleCommands()
        #expect(commands.count >= 14, "\(commands.map(\.name))")
        var optionCount = 0
        for command in commands {
            let section = Self.section(of: command.name, in: man.stdout)
            #expect(section != nil, "no section for sundial \(command.name)")
            for option in command.options {
                optionCount += 1
                // roff spells a hyphen `\-`, so that it renders as ASCII and can be searched for.
                let roff = option.replacingOccurrences(of: "-", with: "\\-")
                #expect(section?.contains(roff) == true, "sundial \(command.name) \(option) is missing from its man page section")
            }
        }
        #expect(optionCount > 60, "too few options found (\(optionCount))")
        // The hand-written parts never list options; the agent's are in its own section.
        #expect(Self.section(of: "run", in: man.stdout)?.contains("\\-\\-metrics\\-listen\\-any") == true)
    }

    @Test func manPageIsValidRoffForGroff() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/groff") else { return }
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let man = try await CLI.run(["man"])
        let file = dir.appendingPathComponent("sundial.1")
        try Data(man.stdout.utf8).write(to: file)
        // groff -ww warns about every questionable construct; there must be none.
        let groff = try await CLI.runTool("/usr/bin/groff", ["-man", "-Tascii", "-ww", "-z", file.path])
        #expect(groff.status == 0 && groff.stderr.isEmpty, "\(groff.stderr)")
    }

    @Test func completionsForEachShellAndAClearErrorOtherwise() async throws {
        for shell in ["bash", "zsh", "fish"] {
            let r = try await CLI.run(["completions", shell])
            #expect(r.status == 0, "\(shell): \(r.stderr)")
            #expect(r.stdout.contains("import-crontab") && r.stdout.contains("metrics-listen"), "\(shell) completion lacks commands or options")
        }
        let bad = try await CLI.run(["completions", "tcsh"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("unknown shell `tcsh`: use bash, zsh or fish"))
    }
}
