import Foundation
import SundialCore
import SundialTesting
import Testing

/// `sundial next --cron` and `sundial explain` end to end, on the built binary: every shared
/// vector, the error paths with their exit codes, and the `dst` options.
@Suite("sundial next / explain (built binary)", .serialized, .offPool)
struct NextCommandTests {
    struct Vector: Decodable, Sendable, CustomTestStringConvertible {
        var id: String
        var cron: String
        var tz: String
        var after: String
        var count: Int
        var kind: String
        var expected: [String]?
        var testDescription: String { "\(id) '\(cron)' \(tz)" }
    }

    struct File: Decodable {
        var cases: [Vector]
    }

    static let vectors: [Vector] = {
        let url = CLI.packageRoot.appendingPathComponent("Tests/SundialCoreTests/Fixtures/cron-vectors.json")
        guard let data = try? Data(contentsOf: url), let file = try? JSONDecoder().decode(File.self, from: data) else { return [] }
        return file.cases
    }()

    @Test func vectorsLoaded() {
        #expect(Self.vectors.count >= 90)
    }

    @Test(arguments: vectors)
    func vector(_ v: Vector) async throws {
        let r = try await CLI.run(["next", "--cron", v.cron, "--tz", v.tz, "--after", v.after, "--count", String(v.count)])
        let lines = r.stdout.split(separator: "\n").map(String.init)
        switch v.kind {
        case "times":
            #expect(r.status == 0, "\(r.stderr)")
            let got = try lines.map { try RFC3339.parse($0) }
            let expected = try (v.expected ?? []).map { try RFC3339.parse($0) }
            #expect(got.map(\.instant) == expected.map(\.instant), "\(lines)")
            #expect(got.map(\.utcOffsetSeconds) == expected.map(\.utcOffsetSeconds), "\(lines)")
        default:  // never, invalid: no output lines, non-zero exit, a message on stderr
            #expect(lines.isEmpty)
            #expect(r.status == 1)
            #expect(r.stderr.hasPrefix("error: "), "\(r.stderr)")
        }
    }

    @Test func syntaxErrorNamesFieldAndColumn() async throws {
        let r = try await CLI.run(["next", "--cron", "30 24 * * *"])
        #expect(r.status == 1)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr == "error: column 4: hour 24 is out of range 0-23\n  30 24 * * *\n     ^\n")
    }

    @Test(
        arguments: [
            (["next", "--cron", "0 0 30 2 *"], Int32(1), "never fires"),
            (["next", "--cron", "@reboot"], 1, "no calendar times"),
            (["next", "--cron", "* * * *"], 1, "expected 5 fields"),
            (["next", "--cron", "@sometimes"], 1, "unknown macro"),
            (["next", "--cron", "* * * * *", "--tz", "Mars/Olympus"], 1, "unknown time zone"),
            (["next", "--cron", "* * * * *", "--tz", "../../etc/passwd"], 1, "not allowed"),
            (["next", "--cron", "* * * * *", "--after", "2026-01-01T00:00:00"], 1, "missing UTC offset"),
            (["next", "--cron", "* * * * *", "--dst-gap", "later"], 2, "--dst-gap must be shift or skip"),
            (["next", "--cron", "* * * * *", "--dst-overlap", "second"], 2, "--dst-overlap must be first, last or both"),
            (["next", "--cron", "* * * * *", "--count", "0"], 2, "--count"),
            (["next"], 2, "missing --cron"),
            (["next", "dump-db", "/nonexistent/jobs/"], 1, "no such file or directory"),
            (["explain", "61 * * * *"], 1, "minute 61 is out of range 0-59"),
        ] as [([String], Int32, String)])
    func errors(_ args: [String], _ status: Int32, _ fragment: String) async throws {
        let r = try await CLI.run(args)
        #expect(r.status == status, "\(r.stderr)")
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.contains(fragment), "\(r.stderr)")
    }

    @Test func dstOptions() async throws {
        let base = ["next", "--cron", "30 1 * * *", "--tz", "America/New_York", "--after", "2026-10-31T12:00:00-04:00", "--count", "3"]
        #expect(try await CLI.run(base).stdout == "2026-11-01T01:30:00-04:00\n2026-11-02T01:30:00-05:00\n2026-11-03T01:30:00-05:00\n")
        #expect(
            try await CLI.run(base + ["--dst-overlap", "last"]).stdout == "2026-11-01T01:30:00-05:00\n2026-11-02T01:30:00-05:00\n2026-11-03T01:30:00-05:00\n")
        #expect(
            try await CLI.run(base + ["--dst-overlap", "both"]).stdout == "2026-11-01T01:30:00-04:00\n2026-11-01T01:30:00-05:00\n2026-11-02T01:30:00-05:00\n")
        let gap = ["next", "--cron", "30 2 * * *", "--tz", "America/New_York", "--after", "2026-03-07T12:00:00-05:00"]
        #expect(try await CLI.run(gap).stdout == "2026-03-08T03:00:00-04:00\n")
        #expect(try await CLI.run(gap + ["--dst-gap", "skip"]).stdout == "2026-03-09T02:30:00-04:00\n")
    }

    /// `sundial next "30 2 * * *"`: a lone argument with blanks (or a macro) is an expression,
    /// with the same options and output as `--cron`.
    @Test func expressionAsTheArgument() async throws {
        let args = ["--tz", "America/New_York", "--after", "2026-03-07T12:00:00-05:00", "--count", "3"]
        let positional = try await CLI.run(["next", "30 2 * * *"] + args)
        #expect(positional.status == 0, "\(positional.stderr)")
        #expect(positional.stdout == "2026-03-08T03:00:00-04:00\n2026-03-09T02:30:00-04:00\n2026-03-10T02:30:00-04:00\n")
        #expect(try await CLI.run(["next", "--cron", "30 2 * * *"] + args).stdout == positional.stdout)
        let macro = try await CLI.run(["next", "@daily", "--tz", "UTC", "--after", "2026-01-01T10:00:00Z"])
        #expect(macro.stdout == "2026-01-02T00:00:00Z\n", "\(macro.stderr)")
    }

    /// Times end with the year 9999: fewer lines than asked came without a word.
    @Test func fewerFiresThanAskedAreSaid() async throws {
        let none = try await CLI.run(["next", "* * * * *", "--tz", "UTC", "--after", "9999-12-31T23:59:59Z", "--count", "3"])
        #expect(none.status == 0 && none.stdout.isEmpty)
        #expect(none.stderr == "note: no fire times before the year 10000\n", "\(none.stderr)")
        let two = try await CLI.run(["next", "* * * * *", "--tz", "UTC", "--after", "9999-12-31T23:57:30Z", "--count", "3"])
        #expect(two.stdout == "9999-12-31T23:58:00Z\n9999-12-31T23:59:00Z\n")
        #expect(two.stderr == "note: only 2 fire times before the year 10000\n", "\(two.stderr)")
    }

    /// cronie's `*/90`: minute 0 alone, printed with a warning on standard error.
    @Test func stepBeyondTheFieldWarns() async throws {
        let r = try await CLI.run(["next", "*/90 * * * *", "--tz", "UTC", "--after", "2026-01-01T00:00:00Z", "--count", "2"])
        #expect(r.status == 0)
        #expect(r.stdout == "2026-01-01T01:00:00Z\n2026-01-01T02:00:00Z\n")
        #expect(r.stderr.hasPrefix("warning: column 3: minute step 90 is larger than the field (60 values)"), "\(r.stderr)")
    }

    @Test(
        arguments: [
            (["next", "30 24 * * *"], Int32(1), "error: column 4: hour 24 is out of range 0-23\n  30 24 * * *\n     ^\n"),
            (["next", "@reboot"], 1, "error: '@reboot' has no calendar times: it runs once each time the agent starts\n"),
            (
                ["next", "dump-db"], 2,
                "error: name the job files or directories that define 'dump-db' (for a cron expression, quote all its fields: sundial next '30 2 * * *')\n"
            ),
        ] as [([String], Int32, String)])
    func expressionArgumentErrors(_ args: [String], _ status: Int32, _ stderr: String) async throws {
        let r = try await CLI.run(args)
        #expect(r.status == status)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr == stderr)
    }

    @Test func defaultsToNowAndOneLine() async throws {
        let before = Int64(Date().timeIntervalSince1970 * 1000)
        let r = try await CLI.run(["next", "--cron", "* * * * * *", "--tz", "UTC"])
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 1)
        let t = try RFC3339.parse(String(lines[0])).instant.unixMillis
        #expect(t > before - 1000 && t < before + 60_000)
    }

    @Test(arguments: [
        (["30 2 * * 1-5"], "at 02:30 on Monday through Friday\n"),
        (["*/15 * * * *"], "every 15 minutes\n"),
        (["5 * * JAN *"], "at minute 5 past every hour in January\n"),
        (["30", "2", "*", "*", "MON-FRI"], "at 02:30 on Monday through Friday\n"),
        (["@reboot"], "once each time the agent starts (not on reload)\n"),
    ])
    func explain(_ args: [String], _ expected: String) async throws {
        let r = try await CLI.run(["explain"] + args)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == expected)
    }
}
