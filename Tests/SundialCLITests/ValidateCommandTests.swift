import Foundation
import SundialTesting
import Testing

/// `sundial validate` end to end: the bad inputs of issue 2, each an exit 1 with positioned,
/// one-line-per-problem errors, never a crash or a hang.
// Serialized: each test blocks a thread of the (two-thread, on this machine) test pool
// while the child runs; in parallel they would starve the timing-sensitive suites.
@Suite("sundial validate (built binary)", .serialized, .offPool)
struct ValidateCommandTests {
    func validate(_ name: String, _ content: Data, extraArgs: [String] = []) async throws -> CLI.Result {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent(name)
        try content.write(to: file)
        var r = try await CLI.run(["validate"] + extraArgs + [file.path])
        r.stderr = r.stderr.replacingOccurrences(of: dir.path + "/", with: "")
        r.stdout = r.stdout.replacingOccurrences(of: dir.path + "/", with: "")
        return r
    }

    func validate(_ name: String, _ text: String, extraArgs: [String] = []) async throws -> CLI.Result {
        try await validate(name, Data(text.utf8), extraArgs: extraArgs)
    }

    /// Problem lines (`file:line:col: error: ...`) of a text report.
    func problems(_ r: CLI.Result) -> [String] {
        r.stderr.split(separator: "\n").map(String.init).filter { $0.contains(": error: ") }
    }

    @Test func examplesAreValid() async throws {
        let r = try await CLI.run(["validate", "examples/"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("ok: "))
    }

    @Test func eachExampleFileIsValidAlone() async throws {
        let dir = CLI.packageRoot.appendingPathComponent("examples")
        let files = try FileManager.default.subpathsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }
        #expect(files.count >= 6)
        for f in files {
            let r = try await CLI.run(["validate", "examples/" + f])
            #expect(r.status == 0, "examples/\(f): \(r.stderr)")
            let text = try String(contentsOf: dir.appendingPathComponent(f), encoding: .utf8)
            #expect(text.hasPrefix("# yaml-language-server: $schema="), "examples/\(f) lacks the schema comment")
        }
    }

    @Test func misspeltKeyGetsASuggestionWithCaret() async throws {
        let r = try await validate("jobs.yaml", "version: 1\njobs:\n  a:\n    shell: echo hi\n    timout: 5m\n")
        #expect(r.status == 1)
        #expect(problems(r) == ["jobs.yaml:5:5: error: unknown key `timout`; did you mean `timeout`?"])
        #expect(r.stderr.contains("    timout: 5m\n    ^\n"))
    }

    /// The README's four example errors in one file: all in one run, each once, positioned.
    @Test func readmeErrorsInOneFileAllComeOut() async throws {
        let r = try await validate(
            "jobs.yaml",
            """
            version: 1
            jobs:
              upload:
                shell: echo up
                timout: 5m
              backup:
                schedule: "0 25 * * *"
                shell: echo b
                concurrency: skip
                needs: [uplaod]

            """)
        #expect(r.status == 1)
        #expect(
            problems(r) == [
                "jobs.yaml:5:5: error: unknown key `timout`; did you mean `timeout`?",
                "jobs.yaml:7:18: error: invalid cron expression `0 25 * * *`: hour 25 is out of range 0-23",
                "jobs.yaml:9:18: error: `concurrency`: must be one of: forbid, allow, replace, queue",
                "jobs.yaml:10:13: error: `needs` refers to unknown job `uplaod`; did you mean `upload`?",
            ])
        #expect(r.stderr.hasSuffix("4 errors in 1 file(s)\n"))
    }

    /// A cron step larger than its field is cronie's "start value only": a warning, exit 0.
    @Test func cronStepWarningKeepsTheFileValid() async throws {
        let r = try await validate("jobs.yaml", "version: 1\njobs:\n  a:\n    schedule: \"*/90 * * * *\"\n    shell: x\n")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.hasPrefix("jobs.yaml:4:18: warning: cron expression `*/90 * * * *`: minute step 90 is larger than the field"), "\(r.stderr)")
        #expect(r.stdout.hasPrefix("ok: 1 job in 1 file"))
    }

    /// `.pre-commit-hooks.yaml` names the hook docs/ci.md documents, running this command.
    @Test func preCommitHookRunsValidate() throws {
        let text = try String(contentsOf: CLI.packageRoot.appendingPathComponent(".pre-commit-hooks.yaml"), encoding: .utf8)
        #expect(text.contains("\n- id: sundial-validate\n"))
        #expect(text.contains("\n  entry: sundial validate --quiet\n"))
        #expect(text.contains("\n  language: system\n"))
        #expect(text.contains("\n  files: \\.ya?ml$\n"))
        #expect(text.contains("\n  pass_filenames: false\n"))
        let doc = try String(contentsOf: CLI.packageRoot.appendingPathComponent("docs/ci.md"), encoding: .utf8)
        #expect(doc.contains("id: sundial-validate"))
    }

    @Test func formatsJSONAndGitHub() async throws {
        let text = "version: 1\njobs:\n  a:\n    shell: echo hi\n    timout: 5m\n"
        let j = try await validate("jobs.yaml", text, extraArgs: ["--format", "json"])
        #expect(j.status == 1)
        let items = try #require(try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [[String: Any]])
        #expect(items.count == 1)
        #expect(items.first?["line"] as? Int == 5)
        #expect(items.first?["column"] as? Int == 5)
        #expect(items.first?["severity"] as? String == "error")
        #expect((items.first?["file"] as? String)?.hasSuffix("jobs.yaml") == true)
        let g = try await validate("jobs.yaml", text, extraArgs: ["--format", "github"])
        #expect(g.status == 1)
        #expect(g.stdout.contains("::error file="))
        #expect(g.stdout.contains(",line=5,col=5::unknown key `timout`"))
    }

    @Test func usageErrorExitsTwo() async throws {
        #expect(try await CLI.run(["validate"]).status == 2)
        #expect(try await CLI.run(["validate", "--format", "xml", "examples"]).status == 2)
    }

    @Test func missingPathIsNamed() async throws {
        let r = try await CLI.run(["validate", "/nonexistent/sundial/jobs.yaml"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("/nonexistent/sundial/jobs.yaml"))
    }

    @Test(arguments: [
        ("empty", ""),
        ("only comments", "# nothing here\n# at all\n"),
        ("list at top", "- version: 1\n- jobs: {}\n"),
        ("tabs", "version: 1\njobs:\n\ta:\n\t\tshell: x\n"),
        ("unterminated quote", "version: 1\njobs:\n  a:\n    shell: \"echo\n"),
        ("wrong types", "version: \"one\"\njobs:\n  a:\n    shell: [1]\n    timeout: 5\n    retry: { attempts: many }\n    needs: b\n    enabled: yes\n"),
        ("negative duration", "version: 1\njobs:\n  a: { every: -5s, shell: x }\n"),
        ("absurd duration", "version: 1\njobs:\n  a: { every: 99999999999d, shell: x }\n"),
        (
            "alias bomb",
            "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
        ),
        ("deep nesting", "a: " + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "\n"),
        ("bad cron", "version: 1\njobs:\n  a: { schedule: \"60 * * * *\", shell: x }\n"),
        ("never fires", "version: 1\njobs:\n  a: { schedule: \"0 0 30 2 *\", shell: x }\n"),
        ("cycle", "version: 1\njobs:\n  a: { needs: [b], shell: x }\n  b: { needs: [a], shell: x }\n"),
    ])
    func badInputIsOnePositionedErrorPerProblem(_ name: String, _ text: String) async throws {
        let r = try await validate("bad.yaml", text)
        #expect(r.status == 1, "\(name): \(r.stderr)")
        let lines = problems(r)
        #expect(!lines.isEmpty, "\(name): \(r.stderr)")
        for line in lines {
            #expect(line.wholeMatch(of: /bad\.yaml:\d+:\d+: error: .+/) != nil, "\(name): \(line)")
        }
    }

    @Test func wrongTypesAreAllReported() async throws {
        let r = try await validate(
            "bad.yaml", "version: \"one\"\njobs:\n  a:\n    shell: [1]\n    timeout: 5\n    retry: { attempts: many }\n    needs: b\n    enabled: yes\n")
        #expect(problems(r).count >= 5, "\(r.stderr)")
    }

    @Test func binaryJunkAndInvalidUTF8() async throws {
        var junk = Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) })
        junk[10] = 0
        let r = try await validate("junk.yaml", junk)
        #expect(r.status == 1)
        #expect(problems(r).count == 1)
        let u = try await validate("utf.yaml", Data([0x61, 0x3A, 0x20, 0xFF, 0xFE, 0x0A]))
        #expect(u.status == 1)
        #expect(problems(u).first?.contains("UTF-8") == true)
    }

    @Test func hundredMegabyteFileIsRefusedQuickly() async throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("huge.yaml")
        FileManager.default.createFile(atPath: file.path, contents: nil)
        let h = try FileHandle(forWritingTo: file)
        try h.truncate(atOffset: 100 * 1024 * 1024)
        try h.close()
        let start = Date()
        let r = try await CLI.run(["validate", file.path], timeout: 20)
        #expect(r.status == 1)
        #expect(r.stderr.contains("larger than the limit"))
        #expect(Date().timeIntervalSince(start) < 10)
    }

    @Test func directoryWithUnreadableFile() async throws {
        let dir = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("version: 1\njobs:\n  ok: { shell: x }\n".utf8).write(to: dir.appendingPathComponent("good.yaml"))
        // A dangling link is unreadable even for root (who ignores file modes).
        try FileManager.default.createSymbolicLink(
            atPath: dir.appendingPathComponent("gone.yaml").path,
            withDestinationPath: "/nonexistent/target.yaml")
        let r = try await CLI.run(["validate", dir.path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("gone.yaml"))
    }

    @Test func schemaCommandPrintsTheSchemaFile() async throws {
        let r = try await CLI.run(["schema"])
        let file = try String(contentsOf: CLI.packageRoot.appendingPathComponent("schemas/sundial-jobs.v1.schema.json"), encoding: .utf8)
        #expect(r.status == 0)
        #expect(r.stdout == file)
    }
}
