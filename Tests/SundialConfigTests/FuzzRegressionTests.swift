import Foundation
import OrderedCollections
import SundialConfig
import SundialCore
import SundialTesting
import Testing

/// Inputs on which `fuzz/run` found a failure, kept in `Fixtures/fuzz/TARGET/` and fed to what
/// that target exercises, plus readable versions of each bug.
@Suite(.offPool) struct FuzzRegressionTests {
    static func inputs(_ target: String) throws -> [(name: String, bytes: [UInt8])] {
        let dir = try #require(Bundle.module.resourceURL).appendingPathComponent("Fixtures/fuzz/\(target)")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        return try names.map { ($0, Array(try Data(contentsOf: dir.appendingPathComponent($0)))) }
    }

    func load(_ yaml: String) -> ConfigLoadResult {
        ConfigLoader().load([.init(path: "imported.yaml", bytes: Array(yaml.utf8))])
    }

    /// The importer's promise, as `fuzz/run crontab` checks it: whatever the crontab, the YAML
    /// it writes loads without errors.
    @Test func crontabTargetInputsImportToLoadableYAML() throws {
        let inputs = try Self.inputs("crontab")
        #expect(!inputs.isEmpty)
        for (name, bytes) in inputs {
            for system in [false, true] {
                let result = CrontabImport.convert(String(decoding: bytes, as: UTF8.self), options: .init(system: system))
                let errors = load(result.yaml).diagnostics.filter { $0.severity == .error }
                #expect(errors.isEmpty, "\(name) system=\(system): \(errors.map(\.description))")
            }
        }
    }

    /// A command starting with `>` (or `|`) plus a combining mark is one Character that is not
    /// `>`, so the importer wrote it plain, and YAML read a folded block scalar.
    @Test func anIndicatorFollowedByACombiningMarkIsQuoted() throws {
        for command in [">\u{5AC}x", "|\u{301}y", "-\u{301} z", "#\u{301}"] {
            let result = CrontabImport.convert("0 * * * * \(command)\n")
            let loaded = load(result.yaml)
            #expect(loaded.isValid, "\(command): \(loaded.diagnostics.map(\.description))\n\(result.yaml)")
            if case let .shell(text)? = loaded.jobSet?.jobs.values.first?.command { #expect(text == command) }
        }
    }

    /// A quote followed by a combining mark is one Character that is not a quote, so quoting by
    /// Characters left it undoubled: the single-quoted YAML scalar ended early, and the shell
    /// quoting of an imported `MAILTO` command would have too.
    @Test func aQuoteFollowedByACombiningMarkIsEscaped() throws {
        for command in ["echo 'a\u{651}b", "echo '\u{301}'\u{301}", ">x '\u{651}"] {
            let result = CrontabImport.convert("0 * * * * \(command)\n")
            let loaded = load(result.yaml)
            #expect(loaded.isValid, "\(command): \(loaded.diagnostics.map(\.description))\n\(result.yaml)")
            if case let .shell(text)? = loaded.jobSet?.jobs.values.first?.command {
                #expect(Array(text.unicodeScalars) == Array(command.unicodeScalars))
            }
        }
    }

    /// A NUL or other control character in a crontab line went verbatim into the YAML comment
    /// that quotes the line, and the loader refuses a file with a NUL byte.
    @Test func controlCharactersInCommentsAreReplaced() throws {
        // (A NUL in the job line itself makes the line a problem: CrontabNULTests.)
        let result = CrontabImport.convert("# a\u{0}b\u{1B}c\n0 1 * * * echo x\u{1B}y\n")
        #expect(!result.yaml.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" })
        #expect(result.yaml.contains("# a\u{FFFD}b\u{FFFD}c\n"))
        #expect(load(result.yaml).isValid, "\(load(result.yaml).diagnostics.map(\.description))")
    }

    /// YAML 1.1's extra line breaks (NEL, U+2028, U+2029) ended a comment early, so the rest of
    /// a crontab comment was read as YAML, and folded a command into other text.
    @Test func yamlLineBreaksCannotEscapeACommentOrChangeACommand() throws {
        let command = "printf 'a\u{85}b\u{2028}c\u{FEFF}'"
        let result = CrontabImport.convert("# note\u{2028}version: 2\n0 1 * * * \(command)\n")
        let loaded = load(result.yaml)
        let set = try #require(loaded.jobSet, "\(loaded.diagnostics.map(\.description))\n\(result.yaml)")
        #expect(set.jobs.values.first?.command == .shell(command))
    }
}

extension FuzzRegressionTests {
    /// A `CRON_TZ`/`TZ` that is no zone name went into `timezone`, where the schema refuses it
    /// and with it the whole imported file; now the line is a problem and the jobs keep the zone
    /// they had.
    @Test func invalidZoneNamesAreProblemsNotBrokenYAML() throws {
        let result = CrontabImport.convert("CRON_TZ=Europe/Berlin\n0 1 * * * a\nCRON_TZ=Europe/Be\u{0}rlin\nTZ=:bad zone\n0 2 * * * b\n")
        #expect(result.problems.map(\.line) == [3, 4])
        let loaded = load(result.yaml)
        let set = try #require(loaded.jobSet, "\(loaded.diagnostics.map(\.description))")
        #expect(set.jobs.values.map(\.timezone) == ["Europe/Berlin", "Europe/Berlin"])
        #expect(set.jobs.values.last?.env["TZ"] == ":bad zone")
    }
}

extension FuzzRegressionTests {
    /// `SHELL=` (empty) became `command: ["", "-c", …]`, which the schema refuses.
    @Test func emptyShellIsAProblemAndJobsUseBinSh() throws {
        let result = CrontabImport.convert("SHELL=/bin/bash\nSHELL=\n0 1 * * * echo hi\n")
        #expect(result.problems.map(\.line) == [2])
        let loaded = load(result.yaml)
        let set = try #require(loaded.jobSet, "\(loaded.diagnostics.map(\.description))")
        #expect(set.jobs.values.first?.command == .shell("echo hi"))
    }

    /// `RANDOM_DELAY` took any number of minutes that fits an `Int`, and the importer wrote it as
    /// a `jitter` the loader refuses (longer than the 100 years a duration may be).
    @Test func aRandomDelayLongerThanADurationIsAProblem() throws {
        let result = CrontabImport.convert("RANDOM_DELAY=448358362902662712\n0 1 * * * a\nRANDOM_DELAY=52560000\n0 2 * * * b\n")
        #expect(result.problems.map(\.line) == [1])
        let loaded = load(result.yaml)
        let set = try #require(loaded.jobSet, "\(loaded.diagnostics.map(\.description))")
        #expect(set.jobs.values.map(\.jitterMs) == [0, 52_560_000 * 60_000])
    }
}
