import OrderedCollections
import SundialCore
import SundialTesting
import Testing

@testable import SundialConfig

/// One run reports every problem of a file: a schema error on one key does not hide the
/// checks of the file's other keys and jobs, and no value is reported twice.
@Suite("Config loader: every problem of a file in one run", .offPool)
struct EveryProblemTests {
    let loader = ConfigLoader(
        environment: ConfigEnvironment(
            zoneExists: { ["UTC", "Europe/Berlin"].contains($0) },
            fileReadable: { _ in true }))

    func messages(_ text: String, file: String = "a.yaml") -> [String] {
        loader.load([ConfigLoader.SourceFile(path: file, bytes: Array(text.utf8))]).diagnostics.map(\.description)
    }

    /// The README's four example errors (two schema errors, an unknown `needs`, a cron range)
    /// in one file: all four in one run, each exactly once, at their positions.
    @Test func readmeErrorsInOneFileComeOutTogether() {
        let m = messages(
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
        #expect(
            m == [
                "a.yaml:5:5: error: unknown key `timout`; did you mean `timeout`?",
                "a.yaml:7:18: error: invalid cron expression `0 25 * * *`: hour 25 is out of range 0-23",
                "a.yaml:9:18: error: `concurrency`: must be one of: forbid, allow, replace, queue",
                "a.yaml:10:13: error: `needs` refers to unknown job `uplaod`; did you mean `upload`?",
            ])
    }

    /// A value of the wrong type is the schema's to report; the decoder does not see it, so
    /// `every: 30` is not also "invalid duration". The job's other keys are still checked.
    @Test func aRejectedValueIsReportedOnceAndItsNeighboursStillChecked() {
        let m = messages(
            """
            version: 1
            jobs:
              a:
                every: 30
                timezone: Mars/Olympus
                timeout: 0s
                shell: x
            """)
        #expect(m.count == 3, "\(m)")
        #expect(m.contains { $0.hasPrefix("a.yaml:4:12: error: `every`: expected a string, found an integer; durations need a unit") })
        #expect(m.contains { $0.hasPrefix("a.yaml:5:15: error: unknown time zone `Mars/Olympus`") })
        #expect(m.contains("a.yaml:6:14: error: `timeout` must be at least 1ms"))
    }

    /// A bad key in `defaults` hides neither the jobs' own checks nor the other defaults.
    @Test func badDefaultsKeyDoesNotHideTheJobs() {
        let m = messages(
            """
            version: 1
            defaults:
              timezone: Mars/Olympus
              retry: { attempts: many }
            jobs:
              a:
                schedule: "61 * * * *"
                shell: x
              b:
                needs: [nobody]
                shell: x
            """)
        #expect(m.count == 4, "\(m)")
        #expect(m.contains { $0.hasPrefix("a.yaml:3:13: error: unknown time zone `Mars/Olympus`") })
        #expect(m.contains { $0.hasPrefix("a.yaml:4:22: error:") && $0.contains("expected an integer") })
        #expect(m.contains { $0.hasPrefix("a.yaml:7:16: error: invalid cron expression `61 * * * *`: minute 61") })
        #expect(m.contains { $0.hasPrefix("a.yaml:10:13: error: `needs` refers to unknown job `nobody`") })
    }

    /// Structural problems (nothing to run, two schedules) remove nothing: the values are fine
    /// and are still checked, and the set stays invalid.
    @Test func structuralProblemsKeepTheValuesChecked() {
        let m = messages(
            """
            version: 1
            jobs:
              a:
                schedule: "0 0 30 2 *"
              b:
                schedule: "0 3 * * *"
                every: 5m
                shell: x
                needs: [c]
            """)
        #expect(m.contains { $0.hasPrefix("a.yaml:3:3: error: job `a` has nothing to run") }, "\(m)")
        #expect(m.contains { $0.hasPrefix("a.yaml:4:16: error: invalid cron expression `0 0 30 2 *`: it never fires") }, "\(m)")
        #expect(m.contains { $0.hasPrefix("a.yaml:5:3: error: job `b` has more than one of") }, "\(m)")
        #expect(m.contains { $0.hasPrefix("a.yaml:9:13: error: `needs` refers to unknown job `c`") }, "\(m)")
        #expect(m.count == 4, "\(m)")
    }

    /// A wrong item of a list is left out; the list's other items are still read, so a bad
    /// `needs` entry does not hide an unknown job in the next one.
    @Test func aBadListItemLeavesTheOthers() {
        let m = messages(
            """
            version: 1
            jobs:
              a:
                needs: ["Not An Id", ghost]
                shell: x
            """)
        #expect(m.count == 2, "\(m)")
        #expect(m.contains { $0.hasPrefix("a.yaml:4:13: error: invalid job id `Not An Id`") })
        #expect(m.contains { $0.hasPrefix("a.yaml:4:26: error: `needs` refers to unknown job `ghost`") })
    }

    // MARK: - Quoting hint

    /// Where the string has a shape of its own (a pattern), quoting alone would not fix it:
    /// no quoting hint then (`cpu: 50` needs `50%`, not `"50"`).
    @Test func noQuotingHintWhereQuotingIsNotEnough() {
        let m = messages("version: 1\njobs:\n  a:\n    shell: x\n    limits: { cpu: 50 }\n")
        #expect(m == ["a.yaml:5:20: error: `cpu`: expected a string, found an integer"])
    }

    @Test(arguments: [
        ("command: [echo, true]", "a.yaml:4:21: error: expected a string, found a boolean; quote it: \"true\""),
        ("command: [echo, 1.10]", "a.yaml:4:21: error: expected a string, found a number; quote it: \"1.10\""),
        ("shell: 42", "a.yaml:4:12: error: `shell`: expected a string, found an integer; quote it: \"42\""),
    ])
    func booleanOrNumberWhereAStringIsExpectedHintsQuoting(line: String, expected: String) {
        let m = messages("version: 1\njobs:\n  a:\n    \(line)\n")
        #expect(m == [expected])
    }

    // MARK: - cron compatibility with cronie

    /// `*/90` is what cronie runs as minute 0: accepted, with a positioned warning.
    @Test func stepLargerThanTheFieldIsAWarning() throws {
        let r = loader.load([
            ConfigLoader.SourceFile(
                path: "a.yaml",
                bytes: Array(
                    """
                    version: 1
                    jobs:
                      a:
                        schedule: "*/90 * * * *"
                        shell: x
                    """.utf8))
        ])
        #expect(
            r.diagnostics.map(\.description) == [
                "a.yaml:4:18: warning: cron expression `*/90 * * * *`: minute step 90 is larger than the field (60 values): '*/90' means minute 0 only, as in cronie; write 0 to say so"
            ])
        #expect(r.isValid)
        #expect(try #require(r.jobSet).jobs["a"]?.schedule == .cron("*/90 * * * *"))
    }

    @Test func reversedRangeIsAPositionedError() {
        let m = messages("version: 1\njobs:\n  a:\n    schedule: \"0 9 * * 5-1\"\n    shell: x\n")
        #expect(m.count == 1)
        #expect(m.first?.hasPrefix("a.yaml:4:24: error: invalid cron expression `0 9 * * 5-1`: day-of-week range 5-1 is reversed") == true, "\(m)")
    }
}
