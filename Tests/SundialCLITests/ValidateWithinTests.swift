import Foundation
import SundialTesting
import Testing

/// `sundial validate --within DIR FILE [--as NAME]`: a candidate file checked as a file of a
/// directory (Ansible's `validate:` on a randomly named temporary copy).
@Suite("sundial validate --within (built binary)", .serialized, .offPool)
struct ValidateWithinTests {
    static let upload = "version: 1\njobs:\n  upload:\n    schedule: \"0 3 * * *\"\n    shell: echo up\n"
    static let report = "version: 1\njobs:\n  report:\n    needs: [upload]\n    shell: echo report\n"

    /// A directory `jobs.d` holding `files`, and a separate directory for candidates.
    func fixture(_ files: [String: String]) throws -> (root: URL, jobs: URL, outside: URL) {
        let root = try CLI.tempDir()
        let jobs = root.appendingPathComponent("jobs.d")
        let outside = root.appendingPathComponent("tmp")
        try FileManager.default.createDirectory(at: jobs, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        for (name, text) in files { try Data(text.utf8).write(to: jobs.appendingPathComponent(name)) }
        return (root, jobs, outside)
    }

    func write(_ text: String, _ dir: URL, _ name: String) throws -> String {
        let url = dir.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    @Test func needsIntoAnotherFileOfTheDirectoryPass() async throws {
        let f = try fixture(["upload.yaml": Self.upload])
        defer { try? FileManager.default.removeItem(at: f.root) }
        let candidate = try write(Self.report, f.outside, "report.yaml")
        let alone = try await CLI.run(["validate", candidate])
        #expect(alone.status == 1)
        #expect(alone.stderr.contains("`needs` refers to unknown job `upload`"))
        let r = try await CLI.run(["validate", "--within", f.jobs.path, candidate])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "ok: 2 jobs in 2 files, with \(candidate) as \(f.jobs.path)/report.yaml (a new file)\n")
    }

    /// Ansible's `%s` has a random name: `--as` names the file it will become, and the
    /// namesake's old content is not loaded beside it (so its ids do not clash).
    @Test func replacesItsNamesakeNamedWithAs() async throws {
        let f = try fixture(["upload.yaml": Self.upload, "report.yaml": Self.report])
        defer { try? FileManager.default.removeItem(at: f.root) }
        let candidate = try write(Self.report.replacingOccurrences(of: "echo report", with: "echo new report"), f.outside, "tmpa8Xz1q")
        let r = try await CLI.run(["validate", "--within", f.jobs.path + "/", "--as", "report.yaml", candidate])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "ok: 2 jobs in 2 files, with \(candidate) as \(f.jobs.path)/report.yaml (replacing it)\n")
        // Without --within, the same files clash: the candidate is checked beside the old copy.
        let both = try await CLI.run(["validate", f.jobs.path, candidate])
        #expect(both.status == 1)
        #expect(both.stderr.contains("job `report` is already defined"))
    }

    @Test func problemsOfTheCandidateAndClashesWithOtherFilesAreReported() async throws {
        let f = try fixture(["upload.yaml": Self.upload])
        defer { try? FileManager.default.removeItem(at: f.root) }
        let candidate = try write(Self.upload + "  report:\n    needs: [uplod]\n    shell: x\n", f.outside, "t1")
        let r = try await CLI.run(["validate", "--within", f.jobs.path, "--as", "more.yaml", candidate])
        #expect(r.status == 1)
        let lines = r.stderr.split(separator: "\n").filter { $0.contains(": error: ") }
        #expect(lines.count == 2, "\(r.stderr)")
        // The candidate stands at more.yaml's place, before upload.yaml, as the agent will read them.
        #expect(lines.contains { $0.hasPrefix("\(f.jobs.path)/upload.yaml:3:3: error: job `upload` is already defined at \(candidate):3:3") })
        #expect(lines.contains { $0.hasPrefix("\(candidate):7:13: error: `needs` refers to unknown job `uplod`") })
    }

    @Test(
        arguments: [
            (["--within", "DIR", "t1"], "is not a name the agent reads in a directory", "--as NAME"),
            (["--within", "DIR", "--as", "../x.yaml", "t1"], "must be a plain path inside the directory", ""),
            (["--within", "DIR", "--as", "x.txt", "t1"], "is not a name the agent reads", ""),
            (["--within", "DIR", "--as", ".hidden.yaml", "t1"], "is not a name the agent reads", ""),
            (["--as", "x.yaml", "t1"], "add --within", ""),
            (["--within", "DIR", "t1", "t1"], "exactly one FILE", ""),
        ] as [([String], String, String)])
    func usageErrors(_ args: [String], _ fragment: String, _ also: String) async throws {
        let f = try fixture(["upload.yaml": Self.upload])
        defer { try? FileManager.default.removeItem(at: f.root) }
        let candidate = try write(Self.report, f.outside, "t1")
        let resolved = args.map { $0 == "DIR" ? f.jobs.path : $0 == "t1" ? candidate : $0 }
        let r = try await CLI.run(["validate"] + resolved)
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.contains(fragment), "\(r.stderr)")
        if !also.isEmpty { #expect(r.stderr.contains(also), "\(r.stderr)") }
    }

    @Test func missingDirectoryIsNamed() async throws {
        let f = try fixture([:])
        defer { try? FileManager.default.removeItem(at: f.root) }
        let candidate = try write(Self.upload, f.outside, "upload.yaml")
        let r = try await CLI.run(["validate", "--within", f.root.appendingPathComponent("nope").path, candidate])
        #expect(r.status == 1)
        #expect(r.stderr.contains("nope"), "\(r.stderr)")
    }
}
