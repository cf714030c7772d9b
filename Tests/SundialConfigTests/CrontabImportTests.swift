import Foundation
import OrderedCollections
import SundialConfig
import SundialCore
import SundialTesting
import Testing

@Suite(.offPool) struct CrontabImportTests {
    /// Loads the generated YAML with the real loader: every conversion must be a valid job file.
    func load(_ yaml: String) -> ConfigLoadResult {
        ConfigLoader().load([.init(path: "imported.yaml", bytes: Array(yaml.utf8))])
    }

    func convertAndLoad(_ text: String, _ options: CrontabImport.Options = .init()) throws -> (CrontabImport.Result, JobSet) {
        let result = CrontabImport.convert(text, options: options)
        let loaded = load(result.yaml)
        #expect(loaded.diagnostics.isEmpty, "\(loaded.diagnostics.map(\.description))\n\(result.yaml)")
        return (result, try #require(loaded.jobSet))
    }

    /// In the style of Debian's /etc/crontab (system format, with a user column).
    static let debianStyle = """
        # /etc/crontab: system-wide crontab
        # Unlike any other crontab you don't have to run the `crontab'
        # command to install the new version when you edit this file.

        SHELL=/bin/sh
        PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin

        # Example of job definition:
        # .---------------- minute (0 - 59)
        # |  .------------- hour (0 - 23)
        # *  *  *  *  * user-name command to be executed
        17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly
        25 6\t* * *\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }
        47 6\t* * 7\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.weekly; }
        52 6\t1 * *\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.monthly; }
        #
        """

    @Test func debianSystemCrontab() throws {
        let (result, set) = try convertAndLoad(Self.debianStyle, .init(system: true, fileName: "/etc/crontab"))
        #expect(result.problems.isEmpty)
        #expect(result.jobIDs == ["run-parts-cron.hourly", "anacron-run-parts-cron.daily", "anacron-run-parts-cron.weekly", "anacron-run-parts-cron.monthly"])
        #expect(result.yaml.hasPrefix("# yaml-language-server: $schema=/usr/share/sundial/sundial-jobs.v1.schema.json\n"))
        #expect(result.yaml.contains("\nversion: 1\n"))
        let hourly = try #require(set.jobs["run-parts-cron.hourly"])
        #expect(hourly.user == "root")
        #expect(hourly.command == .shell("cd / && run-parts --report /etc/cron.hourly"))
        #expect(hourly.env["PATH"] == "/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin")
        #expect(hourly.env["SHELL"] == "/bin/sh")
        let weekly = try #require(set.jobs["anacron-run-parts-cron.weekly"])
        #expect(weekly.command == .shell("test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.weekly; }"))
        // The source line is kept as a comment above each job.
        #expect(result.yaml.contains("  # /etc/crontab:13: 25 6\t* * *\troot\ttest -x /usr/sbin/anacron"))
        // Shared values go to defaults.
        #expect(result.yaml.contains("defaults:\n  env:\n    SHELL: /bin/sh\n"))
    }

    /// A crontab saved with CRLF line ends (edited on Windows, or `crontab -l` through a tool
    /// that adds them) converts as it would with LF: "\r\n" is one `Character` in Swift, and a
    /// split on "\n" had read it as one line, so the leading comment swallowed every job and
    /// the import said nothing.
    @Test func crlfLineEndsConvertLikeLF() throws {
        let crlf = Self.debianStyle.replacingOccurrences(of: "\n", with: "\r\n") + "\r\n"
        let (result, set) = try convertAndLoad(crlf, .init(system: true, fileName: "/etc/crontab"))
        let (lf, _) = try convertAndLoad(Self.debianStyle, .init(system: true, fileName: "/etc/crontab"))
        #expect(result.problems.isEmpty)
        #expect(result.jobIDs == lf.jobIDs && result.jobIDs.count == 4)
        #expect(set.jobs["run-parts-cron.hourly"]?.command == .shell("cd / && run-parts --report /etc/cron.hourly"))
        #expect(set.jobs["run-parts-cron.hourly"]?.env["SHELL"] == "/bin/sh")
        #expect(result.yaml.contains("  # /etc/crontab:13: 25 6\t* * *\troot\ttest -x /usr/sbin/anacron"))
    }

    /// The review header must describe what the launcher really does: jobs never inherit the
    /// agent's environment (docs/runtime.md), and a `user:` job starts in that user's home.
    @Test func headerDescribesTheJobEnvironmentTruthfully() {
        let yaml = CrontabImport.convert("0 * * * * true\n", options: .init()).yaml
        let header = yaml.split(separator: "\n").prefix { $0.hasPrefix("#") }.joined(separator: " ")
        #expect(!header.contains("with the agent's environment"), "\(header)")
        #expect(header.contains("never the agent's"), "\(header)")
        #expect(header.contains("user's home"), "\(header)")
    }

    @Test func environmentAppliesOnlyToLaterJobsAndTimezones() throws {
        let text = """
            MAILTO=ops@example.com
            0 1 * * * /usr/local/bin/early
            CRON_TZ=Europe/Berlin
            BACKUP_DIR = "/var/backups/app"
            30 2 * * * /usr/local/bin/backup.sh --full
            TZ=America/New_York
            CRON_TZ=Asia/Tokyo
            0 9 * * MON-FRI /usr/local/bin/report
            CRON_TZ=
            0 12 * * * /usr/local/bin/noon
            """
        let (result, set) = try convertAndLoad(text, .init(fileName: "user.cron"))
        #expect(result.problems.isEmpty)
        let early = try #require(set.jobs["early"])
        #expect(early.env.isEmpty)
        #expect(early.timezone == nil)
        let backup = try #require(set.jobs["backup.sh"])
        #expect(backup.timezone == "Europe/Berlin")
        #expect(backup.env == ["BACKUP_DIR": "/var/backups/app"])
        let report = try #require(set.jobs["report"])
        #expect(report.timezone == "Asia/Tokyo")  // CRON_TZ wins over TZ
        #expect(report.env["TZ"] == "America/New_York")
        let noon = try #require(set.jobs["noon"])
        #expect(noon.timezone == "America/New_York")  // CRON_TZ cleared: TZ applies
        #expect(result.yaml.contains("# NOTE: cron mailed any output to ops@example.com (MAILTO)"))
        // MAILTO applies to every job here: one notify entry in `defaults`, mailing on failure.
        for job in set.jobs.values {
            guard case let .command(argv)? = job.notify.first?.target else {
                Issue.record("\(job.id): no notify")
                continue
            }
            #expect(job.notify.count == 1 && job.notify.first?.on == [.failure])
            #expect(argv.prefix(2) == ["/bin/sh", "-c"] && argv.suffix(2) == ["sundial-mail", "ops@example.com"])
            #expect(argv[2] == CrontabImport.mailScript)
        }
        #expect(result.yaml.contains("defaults:\n") && result.yaml.contains("  notify:\n    - on: [failure]\n"))
    }

    @Test func mailtoPerJobEmptyOrHostileBecomesNotifyOrANote() throws {
        let text = """
            0 1 * * * /bin/early
            MAILTO="a@x.org, b@y.org"
            5 1 * * * /bin/middle
            MAILTO=$(reboot)'";x
            10 1 * * * /bin/odd
            MAILTO=
            15 1 * * * /bin/late
            """
        let (result, set) = try convertAndLoad(text, .init(fileName: "user.cron"))
        #expect(result.problems.isEmpty)
        #expect(set.jobs["early"]?.notify == [])
        #expect(set.jobs["late"]?.notify == [])
        #expect(result.yaml.contains("# NOTE: MAILTO was empty: cron discarded the output"))
        func address(_ id: String) -> String? {
            if case let .command(argv)? = set.jobs[id]?.notify.first?.target { return argv.last } else { return nil }
        }
        #expect(address("middle") == "a@x.org, b@y.org")
        // The address is an argument of the script, never part of its text.
        #expect(address("odd") == "$(reboot)'\";x")
    }

    @Test func macrosPercentShellAndRandomDelay() throws {
        let text = """
            SHELL=/bin/bash
            RANDOM_DELAY=5
            HOME=/home/app
            @reboot /usr/local/bin/warm-cache
            @daily  date +\\%F >> /var/log/dates
            0 8 * * * mail -s "Report" root%Hello,%today's report is ready.%
            """
        let (result, set) = try convertAndLoad(text)
        #expect(result.problems.isEmpty)
        let warm = try #require(set.jobs["warm-cache"])
        #expect(warm.command == .argv(["/bin/bash", "-c", "/usr/local/bin/warm-cache"]))
        #expect(warm.jitterMs == 300_000)
        #expect(warm.workdir == "/home/app")
        #expect(result.yaml.contains("schedule: \"@reboot\""))
        let dates = try #require(set.jobs["date-f"])
        #expect(dates.command == .argv(["/bin/bash", "-c", "date +%F >> /var/log/dates"]))
        let mail = try #require(set.jobs["mail-root"])
        #expect(mail.command == .argv(["/bin/bash", "-c", "printf '%s' 'Hello,\ntoday'\\''s report is ready.\n' | mail -s \"Report\" root"]))
        #expect(result.yaml.contains("# NOTE: cron fed the text after '%' to standard input"))
    }

    @Test func badLinesAreReportedWithNumbersAndTheRestConverted() throws {
        let text = """
            # comment
            0 3 * * * /usr/bin/good-one
            61 * * * * /usr/bin/bad-minute
            * * * * /usr/bin/too-few
            0 0 L * * /usr/bin/quartz
            @fortnightly /usr/bin/unknown-macro
            0 4 * * * /usr/bin/good-two
            just some words
            0 5 * * 8 /usr/bin/bad-dow
            0 5 10-2 * * /usr/bin/reversed
            0 6 * * SAT-SUN /usr/bin/weekend
            0 7 * * *
            0 0 30 2 * /usr/bin/never
            """
        let result = CrontabImport.convert(text, options: .init(fileName: "bad.cron"))
        let lines = result.problems.map(\.line)
        #expect(lines == [3, 4, 5, 6, 8, 9, 10, 12, 13])
        // Cron syntax is checked by the time engine, with the messages `sundial validate` gives.
        #expect(result.problems[0].description == "bad.cron:3: error: minute 61 is out of range 0-59")
        #expect(result.problems[1].description.hasPrefix("bad.cron:4: error: "))
        #expect(result.problems[2].message.contains("L"))
        #expect(result.problems[8].message.contains("never"))
        #expect(result.problems[3].message.contains("unknown schedule '@fortnightly'"))
        #expect(result.problems[7].message.contains("missing command"))
        #expect(result.jobIDs == ["good-one", "good-two", "weekend"])
        #expect(load(result.yaml).isValid)
    }

    @Test func idsAreUniqueValidSlugs() throws {
        let text = """
            */5 * * * * /opt/app/bin/Sync_Data.py --fast > /dev/null 2>&1
            */10 * * * * /opt/app/bin/Sync_Data.py --slow > /dev/null 2>&1
            0 * * * * >/dev/null
            0 1 * * * curl -fsS https://example.com/ping?x=1
            """
        let (result, _) = try convertAndLoad(text)
        #expect(result.jobIDs == ["sync_data.py", "sync_data.py-2", "job-3", "curl-ping-x-1"])
        for id in result.jobIDs { #expect(id.count <= 63) }
    }

    @Test func emptyCrontabGivesAValidEmptyFile() throws {
        let result = CrontabImport.convert("# nothing here\n\n", options: .init())
        #expect(result.problems.isEmpty)
        #expect(result.yaml.hasSuffix("version: 1\njobs: {}\n"))
    }

    @Test func userOptionAndQuotingRoundTrip() throws {
        let text = """
            "ODD NAME"=1
            FLAG=yes
            COLON=a: b
            0 0 * * * echo 'quoted' "double" #not-a-comment: x
            """
        let result = CrontabImport.convert(text, options: .init(user: "backup"))
        #expect(result.problems.map(\.line) == [1])
        let set = try #require(load(result.yaml).jobSet)
        let job = try #require(set.jobs.values.first)
        #expect(job.user == "backup")
        #expect(job.env == ["FLAG": "yes", "COLON": "a: b"])
        #expect(job.command == .shell("echo 'quoted' \"double\" #not-a-comment: x"))
    }
}

@Suite("Crontab import: NUL characters", .offPool)
struct CrontabNULTests {
    @Test func aLineWithANULIsAProblemNotABrokenJob() {
        let r = CrontabImport.convert("SHELL=/bin/sh\u{0}x\n0 1 * * * echo a\u{0}b\n0 2 * * * echo fine\n")
        #expect(r.problems.map(\.line) == [1, 2])
        #expect(r.problems.allSatisfy { $0.message.contains("NUL") })
        let loaded = ConfigLoader().load([.init(path: "imported.yaml", bytes: Array(r.yaml.utf8))])
        #expect(loaded.diagnostics.filter { $0.severity == .error }.isEmpty, "\(loaded.diagnostics)")
        #expect(loaded.jobSet?.jobs.count == 1)
    }
}
