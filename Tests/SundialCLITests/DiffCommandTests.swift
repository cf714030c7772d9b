import Foundation
import SundialCore
import SundialTesting
import Testing

/// `sundial diff OLD NEW` end to end: exit status 0/1/2, the text and JSON reports with next
/// fires pinned by `--at`, positioned errors for invalid input.
@Suite("sundial diff (built binary)", .serialized, .offPool)
struct DiffCommandTests {
    /// Two trees, `old/` and `new/` (like two git checkouts), under a fresh directory.
    struct Trees {
        let root: URL
        init(old: [String: String], new: [String: String]) throws {
            root = try CLI.tempDir()
            for (side, files) in [("old", old), ("new", new)] {
                let dir = root.appendingPathComponent(side)
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                for (name, text) in files {
                    let url = dir.appendingPathComponent(name)
                    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                    try TestFile.write(text, to: url.path)
                }
            }
        }
        func diff(_ extra: [String] = [], old: String = "old", new: String = "new") async throws -> CLI.Result {
            // Relative paths (run in `root`), so reports are stable; UTC so offsets are too.
            try await CLI.run(["diff", old, new] + extra, cwd: root, env: ["TZ": "UTC"])
        }
        func remove() { try? FileManager.default.removeItem(at: root) }
    }

    static let backup = """
        version: 1
        defaults: { timezone: Europe/Berlin, env_file: /etc/not-on-the-ci-box.env }
        jobs:
          dump-db:
            schedule: "30 2 * * *"
            command: [pg_dump, app]
            timeout: 1h
          heartbeat:
            every: 30s
            offset: 0s
            command: [curl, -fsS, http://127.0.0.1/health]
        """

    @Test func changesExitOneWithFieldsAndFiresBeforeAndAfter() async throws {
        let trees = try Trees(
            old: ["backup.yaml": Self.backup],
            new: [
                "backup.yaml": Self.backup.replacingOccurrences(of: "30 2 * * *", with: "45 3 * * 1-5")
                    .replacingOccurrences(of: "timeout: 1h", with: "timeout: 2h")
                    .replacingOccurrences(
                        of: """
                              heartbeat:
                                every: 30s
                                offset: 0s
                                command: [curl, -fsS, http://127.0.0.1/health]
                            """, with: ""),
                "team/cleanup.yml": "version: 1\njobs:\n  cleanup:\n    schedule: \"@daily\"\n    timezone: UTC\n    shell: find /tmp -mtime +7 -delete\n",
            ])
        defer { trees.remove() }
        let r = try await trees.diff(["--at", "2026-03-27T12:00:00Z"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.isEmpty, "env_file is not checked by diff: \(r.stderr)")
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first?.hasPrefix("1 added, 1 removed, 1 changed (revision ") == true)
        #expect(
            Array(lines.dropFirst()) == [
                "",
                "added: cleanup (new/team/cleanup.yml:3:3)",
                "    schedule: \"@daily\"",
                "    timezone: UTC",
                "    shell: \"find /tmp -mtime +7 -delete\"",
                "    next fires: 2026-03-28T00:00:00Z, 2026-03-29T00:00:00Z, 2026-03-30T00:00:00Z",
                "",
                "removed: heartbeat (old/backup.yaml:8:3)",
                "",
                "changed: dump-db (new/backup.yaml:4:3)",
                "    schedule: \"30 2 * * *\" -> \"45 3 * * 1-5\"",
                "    timeout: 1h -> 2h",
                // Berlin's clocks go forward on 2026-03-29: +01:00, then +02:00.
                "    next fires before: 2026-03-28T02:30:00+01:00, 2026-03-29T03:00:00+02:00, 2026-03-30T02:30:00+02:00",
                "    next fires after:  2026-03-30T03:45:00+02:00, 2026-03-31T03:45:00+02:00, 2026-04-01T03:45:00+02:00",
                "",
            ])
    }

    @Test func noChangeExitsZero() async throws {
        let trees = try Trees(old: ["a.yaml": Self.backup], new: ["b.yaml": "# moved to another file\n" + Self.backup])
        defer { trees.remove() }
        let r = try await trees.diff()
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("no changes (revision "))
        // A single file against a directory works too.
        let single = try await trees.diff(old: "old/a.yaml")
        #expect(single.status == 0, "\(single.stderr)")
    }

    @Test func jsonReport() async throws {
        let trees = try Trees(old: ["a.yaml": Self.backup], new: ["a.yaml": Self.backup.replacingOccurrences(of: "every: 30s", with: "every: 1m")])
        defer { trees.remove() }
        let r = try await trees.diff(["--format", "json", "--at", "2026-01-01T00:00:10Z"])
        #expect(r.status == 1, "\(r.stderr)")
        let json = try JSONParser.parse(r.stdout)
        #expect(json["changes"] == .bool(true))
        #expect(json["added"] == .array([]))
        #expect(json["removed"] == .array([]))
        guard case let .array(changed)? = json["changed"], changed.count == 1 else {
            Issue.record("\(r.stdout)")
            return
        }
        let heartbeat = changed[0]
        #expect(heartbeat["job"] == .string("heartbeat"))
        #expect(heartbeat["fields"] == .array([["field": "every", "old": "30s", "new": "1m"]]))
        #expect(heartbeat["timing_changed"] == .bool(true))
        #expect(heartbeat["next_fires_before"] == .array(["2026-01-01T01:00:30+01:00", "2026-01-01T01:01:00+01:00", "2026-01-01T01:01:30+01:00"]))
        #expect(heartbeat["next_fires_after"] == .array(["2026-01-01T01:01:00+01:00", "2026-01-01T01:02:00+01:00", "2026-01-01T01:03:00+01:00"]))
    }

    @Test func invalidInputExitsTwoWithPositionedErrors() async throws {
        let trees = try Trees(
            old: ["a.yaml": Self.backup],
            new: ["a.yaml": Self.backup, "b.yaml": "version: 1\njobs:\n  bad:\n    schedul: \"0 * * * *\"\n    command: [x]\n"])
        defer { trees.remove() }
        let r = try await trees.diff()
        #expect(r.status == 2)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.contains("new/b.yaml:4:5: error: unknown key `schedul`; did you mean `schedule`?"), "\(r.stderr)")
        #expect(r.stderr.contains("sundial diff: 1 error; nothing compared"))

        let json = try await trees.diff(["--format", "json"])
        #expect(json.status == 2)
        let parsed = try JSONParser.parse(json.stdout)
        #expect(parsed["changes"] == .null)
        guard case let .array(items)? = parsed["diagnostics"] else {
            Issue.record("\(json.stdout)")
            return
        }
        #expect(items.contains { $0["file"] == .string("new/b.yaml") && $0["line"] == .int(4) && $0["column"] == .int(5) })

        let missing = try await trees.diff(old: "nowhere")
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("nowhere:1:1: error:"), "\(missing.stderr)")
    }

    @Test func usageErrorsExitTwo() async throws {
        let trees = try Trees(old: ["a.yaml": Self.backup], new: ["a.yaml": Self.backup])
        defer { trees.remove() }
        let oneArgument = try await CLI.run(["diff", "old"], cwd: trees.root)
        #expect(oneArgument.status == 2)
        let badTime = try await trees.diff(["--at", "yesterday"])
        #expect(badTime.status == 2)
        #expect(badTime.stderr.contains("--at 'yesterday'"))
        let badFormat = try await trees.diff(["--format", "yaml"])
        #expect(badFormat.status == 2)
    }

    @Test func anEmptyDirectoryIsAnEmptySet() async throws {
        let trees = try Trees(old: [:], new: ["a.yaml": Self.backup])
        defer { trees.remove() }
        let r = try await trees.diff(["--at", "2026-01-01T00:00:00Z"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("2 added, 0 removed, 0 changed"))
        #expect(r.stdout.contains("added: dump-db (new/a.yaml:4:3)"))
    }
}
