import Foundation
import OrderedCollections
import SundialCore
import SundialTesting
import Testing

@testable import SundialConfig

/// `sundial diff`'s pure part: field-by-field differences between two job sets, and both
/// renderings with injected fires.
@Suite("Job set diff", .offPool)
struct JobSetDiffTests {
    func set(_ files: [(String, String)]) throws -> JobSet {
        let r = ConfigLoader().load(files.map { ConfigLoader.SourceFile(path: $0.0, bytes: Array($0.1.utf8)) })
        return try #require(r.jobSet, "\(r.diagnostics.map(\.description))")
    }

    let base = """
        version: 1
        defaults:
          timeout: 30m
          env: { PATH: /usr/bin, TOKEN: s3cret }
        jobs:
          dump:
            schedule: "30 2 * * *"
            command: [pg_dump, app]
            secrets: [TOKEN]
          upload:
            needs: [dump]
            shell: rclone copy /var/backups remote:backups
          old:
            every: 5m
            command: [/bin/true]
        """

    /// Only a secret changed: the job was listed as changed with no field under it.
    @Test func aChangedSecretIsSaidToHaveChangedWithoutShowingIt() throws {
        let yaml = "version: 1\njobs:\n  dump:\n    every: 1h\n    command: [x]\n    env: { TOKEN: s3cret }\n    secrets: [TOKEN]\n"
        let a = try set([("a.yaml", yaml)])
        let b = try set([("a.yaml", yaml.replacingOccurrences(of: "TOKEN: s3cret", with: "TOKEN: rotated"))])
        let d = JobSetDiff(old: a, new: b)
        #expect(d.changed.map(\.id) == ["dump"])
        #expect(d.changed.first?.fields == [.init(field: "secret values", old: "***", new: "*** (changed, not shown)")])
        let text = d.text { _ in [] }
        #expect(text.contains("secret values: *** -> *** (changed, not shown)") && !text.contains("rotated") && !text.contains("s3cret"))
    }

    /// A command may quote a secret's value; the diff (printed in CI logs) showed it.
    @Test func aSecretQuotedInACommandIsMasked() throws {
        let yaml = "version: 1\njobs:\n  dump:\n    every: 1h\n    command: [curl, -u, \"user:s3cret\"]\n    env: { TOKEN: s3cret }\n    secrets: [TOKEN]\n"
        let a = try set([("a.yaml", yaml)])
        let b = try set([("a.yaml", yaml.replacingOccurrences(of: "every: 1h", with: "every: 2h"))])
        let text = JobSetDiff(old: a, new: b).text { _ in [] }
        #expect(!text.contains("s3cret"), "\(text)")
        #expect(JobSetDiff.fields(of: a.jobs["dump"]!)["command"] == #"["curl", "-u", "user:***"]"#)
    }

    /// A webhook's `secret_env` is secret without being listed in `secrets`; a password with a
    /// `"` is escaped in the rendered fields and was matched only as written; a change of a
    /// field the diff did not show (`output.keep_bytes`) was called a secret change.
    @Test func secretEnvQuotedSecretsAndHiddenFields() throws {
        let yaml = """
            version: 1
            jobs:
              dump:
                every: 1h
                command: [curl, -u, "user:pa\\"ss"]
                env: { HOOK_KEY: k3y-value, PW: "pa\\"ss" }
                secrets: [PW]
                env_file: /etc/sundial/dump.env
                notify: [{ on: failure, webhook: { url: "https://h/x", secret_env: HOOK_KEY } }]
            """
        let a = try set([("a.yaml", yaml)])
        let fields = JobSetDiff.fields(of: a.jobs["dump"]!)
        #expect(fields["env.HOOK_KEY"] == "***")
        #expect(!fields.values.contains { $0.contains("k3y-value") || $0.contains("pa\\\"ss") || $0.contains("pa\"ss") }, "\(fields)")
        let b = try set([("a.yaml", yaml.replacingOccurrences(of: "every: 1h", with: "every: 1h\n    output: { keep_bytes: 1024 }"))])
        let changed = JobSetDiff(old: a, new: b).changed.first?.fields ?? []
        #expect(changed.map(\.field) == ["output.keep_bytes"], "\(changed)")
    }

    @Test func identicalSetsHaveNoChanges() throws {
        let a = try set([("a.yaml", base)])
        let d = JobSetDiff(old: a, new: a)
        #expect(d.isEmpty)
        #expect(d.text { _ in [] }.hasPrefix("no changes"))
        #expect(d.json { _ in [] }["changes"] == .bool(false))
    }

    @Test func movingAJobToAnotherFileOrEditingACommentIsNoChange() throws {
        let a = try set([("a.yaml", base)])
        let b = try set([
            (
                "a.yaml",
                "# a comment\n"
                    + base.replacingAll(
                        """
                          old:
                            every: 5m
                            command: [/bin/true]
                        """, with: "")
            ),
            (
                "b.yaml",
                """
                version: 1
                defaults: { timeout: 30m, env: { PATH: /usr/bin, TOKEN: s3cret } }
                jobs:
                  old: { every: 5m, command: [/bin/true] }
                """
            ),
        ])
        #expect(a.revision != b.revision)
        #expect(JobSetDiff(old: a, new: b).isEmpty)
    }

    @Test func addedRemovedAndChangedFieldByField() throws {
        let a = try set([("a.yaml", base)])
        let b = try set([
            (
                "a.yaml",
                """
                version: 1
                defaults:
                  timeout: 1h
                  env: { PATH: /usr/bin, TOKEN: n3w-secret, LANG: C }
                jobs:
                  dump:
                    schedule: "45 2 * * *"
                    timezone: Europe/Berlin
                    command: [pg_dump, --clean, app]
                    secrets: [TOKEN]
                    concurrency: allow
                  upload:
                    needs: [{ job: dump, on: completion }]
                    shell: rclone copy /var/backups remote:backups
                  fresh:
                    schedule: "@hourly"
                    command: [echo, hi]
                """
            )
        ])
        let d = JobSetDiff(old: a, new: b)
        #expect(d.added.map(\.id) == ["fresh"])
        #expect(d.removed.map(\.id) == ["old"])
        #expect(d.changed.map(\.id) == ["dump", "upload"])
        let dump = try #require(d.changed.first)
        #expect(dump.timingChanged)
        #expect(
            dump.fields == [
                .init(field: "schedule", old: "\"30 2 * * *\"", new: "\"45 2 * * *\""),
                .init(field: "timezone", old: nil, new: "Europe/Berlin"),
                .init(field: "command", old: "[\"pg_dump\", \"app\"]", new: "[\"pg_dump\", \"--clean\", \"app\"]"),
                // A secret's value never appears, and a changed secret alone is not visible as a change.
                .init(field: "env.LANG", old: nil, new: "\"C\""),
                .init(field: "timeout", old: "30m", new: "1h"),
                .init(field: "concurrency", old: "forbid", new: "allow"),
            ])
        let upload = d.changed[1]
        #expect(!upload.timingChanged)
        #expect(upload.fields.contains(.init(field: "needs", old: "[dump]", new: "[{job: dump, on: completion}]")))
    }

    @Test func notifyEntriesAreFieldsWithoutTheirSecrets() throws {
        let a = try set([("a.yaml", base)])
        let entries =
            "    notify:\n      - { on: [failure, recovered], command: [mail, ops] }\n      - on: timeout\n"
            + "        webhook: { url: \"https://h:81/T0KEN/x?k=s3\", headers: { Authorization: Bearer abc }, ca_file: /etc/ca.pem, retries: 1 }\n"
        let b = try set([("a.yaml", base.replacingOccurrences(of: "  old:\n", with: entries + "  old:\n"))])
        let d = JobSetDiff(old: a, new: b)
        #expect(d.changed.map(\.id) == ["upload"])
        let fields = try #require(d.changed.first).fields
        #expect(
            fields == [
                .init(field: "notify[0]", old: nil, new: "{on: [failure, recovered], command: [\"mail\", \"ops\"]}"),
                .init(
                    field: "notify[1]", old: nil,
                    new: "{on: [timeout], webhook: https://h:81/…, headers: [Authorization], ca_file: /etc/ca.pem, timeout: 10s, retries: 1}"),
            ])
    }

    @Test func goingFromScheduleToEveryShowsBothKeys() throws {
        let a = try set([("a.yaml", "version: 1\njobs:\n  j:\n    schedule: \"0 * * * *\"\n    command: [x]\n")])
        let b = try set([("a.yaml", "version: 1\njobs:\n  j:\n    every: 90m\n    offset: 15m\n    command: [x]\n")])
        let fields = try #require(JobSetDiff(old: a, new: b).changed.first).fields
        #expect(
            fields == [
                .init(field: "schedule", old: "\"0 * * * *\"", new: nil),
                .init(field: "every", old: nil, new: "1h30m"),
                .init(field: "offset", old: nil, new: "15m"),
            ])
    }

    @Test func textReportShowsFieldsAndFiresBeforeAndAfter() throws {
        let a = try set([("old/a.yaml", base)])
        let b = try set([
            (
                "new/a.yaml",
                base.replacingAll("30 2 * * *", with: "45 2 * * *").replacingAll("every: 5m", with: "every: 10m")
                    .replacingAll("rclone copy", with: "rclone sync")
            )
        ])
        let d = JobSetDiff(old: a, new: b)
        let text = d.text { job in
            switch job.schedule {
            case let .cron(e): ["cron \(e) #1", "cron \(e) #2"]
            case let .every(ms, _): ["every \(ms)"]
            default: []
            }
        }
        #expect(
            text == """
                0 added, 0 removed, 3 changed (revision \(a.revision) -> \(b.revision))

                changed: dump (new/a.yaml:6:3)
                    schedule: "30 2 * * *" -> "45 2 * * *"
                    next fires before: cron 30 2 * * * #1, cron 30 2 * * * #2
                    next fires after:  cron 45 2 * * * #1, cron 45 2 * * * #2

                changed: upload (new/a.yaml:10:3)
                    shell: "rclone copy /var/backups remote:backups" -> "rclone sync /var/backups remote:backups"
                    next fires (unchanged): none (runs after its needs)

                changed: old (new/a.yaml:13:3)
                    every: 5m -> 10m
                    next fires before: every 300000
                    next fires after:  every 600000

                """)
    }

    @Test func addedJobsShowOnlyWhatDiffersFromDefaults() throws {
        let a = try set([("a.yaml", "version: 1\njobs:\n  j:\n    command: [x]\n")])
        let b = try set([("a.yaml", "version: 1\njobs:\n  j:\n    command: [x]\n  k:\n    schedule: \"@reboot\"\n    command: [y]\n    catchup: latest\n")])
        let d = JobSetDiff(old: a, new: b)
        #expect(
            d.text { _ in [] }.hasSuffix(
                """
                added: k (a.yaml:5:3)
                    schedule: "@reboot"
                    command: ["y"]
                    catchup: latest
                    next fires: none (runs when the agent starts)

                """))
        let json = d.json { _ in ["t1"] }
        #expect(json["changes"] == .bool(true))
        guard case let .array(added)? = json["added"] else {
            Issue.record("no added array")
            return
        }
        #expect(added.first?["job"] == .string("k"))
        #expect(added.first?["fields"]?["catchup"] == .string("latest"))
        #expect(added.first?["fields"]?["kill_grace"] == .string("10s"))
        #expect(added.first?["next_fires"] == .array(["t1"]))
    }

    @Test func jsonChangedEntryCarriesOldAndNewValuesAndNulls() throws {
        let a = try set([("a.yaml", "version: 1\njobs:\n  j:\n    every: 1m\n    command: [x]\n    timeout: 5m\n")])
        let b = try set([("a.yaml", "version: 1\njobs:\n  j:\n    every: 1m\n    command: [x]\n    enabled: false\n")])
        let json = JobSetDiff(old: a, new: b).json { $0.enabled ? ["soon"] : [] }
        guard case let .array(changed)? = json["changed"], let j = changed.first else {
            Issue.record("no changed")
            return
        }
        #expect(j["timing_changed"] == .bool(true))
        #expect(
            j["fields"]
                == .array([
                    ["field": "timeout", "old": "5m", "new": nil],
                    ["field": "enabled", "old": "true", "new": "false"],
                ]))
        #expect(j["next_fires_before"] == .array(["soon"]))
        #expect(j["next_fires_after"] == .array([]))
        #expect(j["location"] == .string("a.yaml:3:3"))
    }
}
