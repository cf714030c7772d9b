import OrderedCollections
import SundialCore
import SundialTesting
import Testing

@testable import SundialConfig

/// `notify:` in job files: decoding, `defaults`, and a positioned error for each bad entry.
@Suite("Config: notify entries", .offPool)
struct NotifyConfigTests {
    let loader = ConfigLoader(environment: ConfigEnvironment(zoneExists: { _ in true }, fileReadable: { _ in true }))

    func load(_ text: String) -> ConfigLoadResult {
        loader.load([ConfigLoader.SourceFile(path: "a.yaml", bytes: Array(text.utf8))])
    }

    func errors(_ r: ConfigLoadResult) -> [String] { r.diagnostics.filter { $0.severity == .error }.map(\.description) }

    @Test func decodesCommandsWebhooksAndDefaults() throws {
        let r = load(
            """
            version: 1
            defaults:
              notify: [{ on: failure, command: [mail, -s, failed, ops@example.org] }]
            jobs:
              a:
                command: [/bin/true]
              b:
                command: [/bin/true]
                env_file: /etc/b.env
                notify:
                  - on: [failure, recovered]
                    webhook:
                      url: http://127.0.0.1:8080/hook
                      headers: { Authorization: Bearer x }
                      secret_env: HOOK_KEY
                      timeout: 2s
                      retries: 5
              c:
                command: [/bin/true]
                notify: []
            """)
        #expect(errors(r).isEmpty, "\(r.diagnostics)")
        let set = try #require(r.jobSet)
        #expect(set.jobs["a"]?.notify == [NotifySpec(on: [.failure], target: .command(["mail", "-s", "failed", "ops@example.org"]))])
        #expect(set.jobs["a"]?.notify.first?.location == SourceLocation(file: "a.yaml", line: 3, column: 12))
        let hook = WebhookSpec(
            url: "http://127.0.0.1:8080/hook", headers: ["Authorization": "Bearer x"], secretEnv: "HOOK_KEY",
            timeoutMs: 2000, retries: 5)
        #expect(set.jobs["b"]?.notify == [NotifySpec(on: [.failure, .recovered], target: .webhook(hook))])
        #expect(set.jobs["c"]?.notify == [])
    }

    @Test func httpsIsAcceptedWithAnOptionalCAFile() throws {
        let r = load(
            """
            version: 1
            jobs:
              a:
                command: [/bin/true]
                notify:
                  - on: failure
                    webhook: { url: "https://hooks.example.org/x" }
                  - on: failure
                    webhook: { url: "https://10.0.0.5:8443/x", ca_file: /etc/sundial/ca.pem }
            """)
        #expect(errors(r).isEmpty, "\(errors(r))")
        let set = try #require(r.jobSet)
        #expect(
            set.jobs["a"]?.notify.map(\.target) == [
                .webhook(WebhookSpec(url: "https://hooks.example.org/x")),
                .webhook(WebhookSpec(url: "https://10.0.0.5:8443/x", caFile: "/etc/sundial/ca.pem")),
            ])
    }

    @Test func aCAFileNeedsHTTPSAndAnAbsolutePath() {
        let r = load(
            """
            version: 1
            jobs:
              a:
                command: [/bin/true]
                notify:
                  - on: failure
                    webhook: { url: "http://hooks.example.org/x", ca_file: /etc/ca.pem }
                  - on: failure
                    webhook: { url: "https://hooks.example.org/x", ca_file: "/etc/ca.pem" }
                  - on: failure
                    webhook: { url: "https://hooks.example.org/x", ca_file: ca.pem }
            """)
        #expect(
            errors(r) == [
                "a.yaml:7:64: error: notify[0]: `ca_file` verifies an https:// receiver, but the url is http://; write the url with https://, or remove `ca_file`",
                "a.yaml:11:65: error: notify[2]: `ca_file` must be an absolute path (the delivery process does not run in the directory of the job file); e.g. /etc/sundial/hooks-ca.pem",
            ], "\(errors(r))")
    }

    @Test func badEntriesArePositionedErrors() {
        let r = load(
            """
            version: 1
            jobs:
              a:
                command: [/bin/true]
                notify:
                  - on: failure
                    webhook: { url: "http://h:99999/x" }
                  - on: failure
                    webhook: { url: "http://h/x", secret_env: KEY }
                  - on: failure
                    webhook: { url: "http://h/x", headers: { Host: evil } }
                  - on: failure
                    webhook: { url: "http://h/x", headers: { X-A: "a\\r\\nX-B: b" } }
            """)
        let e = errors(r)
        #expect(e.count == 4, "\(e)")
        #expect(e.contains { $0.hasPrefix("a.yaml:7:25: error: notify[0]: invalid webhook url") })
        #expect(e.contains { $0.hasPrefix("a.yaml:9:51: error: notify[1]: `secret_env` names a variable of the job's `env_file`") })
        #expect(e.contains { $0.hasPrefix("a.yaml:11:50: error: notify[2]: header `Host` is set by the agent itself") })
        #expect(e.contains { $0.hasPrefix("a.yaml:13:55: error: notify[3]: header `X-A` contains a line break") })
    }

    /// A webhook URL often carries a token in its user part or path, and these messages reach
    /// the event log, the `reload` reply and the status page: a bad URL is reported by its
    /// position, never quoted, whether the schema's pattern or the URL parser refuses it.
    @Test func aBadWebhookURLIsNeverQuoted() {
        for (url, message) in [
            ("https://user:s3cret@hooks.example.org/x", "notify[0]: invalid webhook url: user:password@ is not supported"),
            ("https://hooks.example.org:443x/services/T0/B0/s3cret", "notify[0]: invalid webhook url: port `443x` is not a number"),
            ("https://hooks.example.org/services/s3cret token", "the value (not shown: it may hold a secret) does not match the pattern"),
        ] {
            let r = load(
                """
                version: 1
                jobs:
                  a:
                    command: [/bin/true]
                    notify: [{ on: failure, webhook: { url: "\(url)" } }]
                """)
            let e = errors(r)
            #expect(e.contains { $0.contains(message) }, "\(e)")
            #expect(!e.contains { $0.contains("s3cret") }, "\(e)")
        }
        // A header value written as a number (an API key of digits): the hint says to quote it
        // without repeating it.
        let r = load(
            """
            version: 1
            jobs:
              a:
                command: [/bin/true]
                notify: [{ on: failure, webhook: { url: "https://h/x", headers: { X-Api-Key: 8675309123 } } }]
            """)
        let e = r.diagnostics.map { "\($0.description) \($0.hint ?? "")" }
        #expect(e.contains { $0.contains("quote it") }, "\(e)")
        #expect(!e.contains { $0.contains("8675309123") }, "\(e)")
    }

    /// `validate` and `run` print the source line under each diagnostic: under one on a
    /// `writeOnly` value (a webhook URL, a header's value) that line is the secret itself, so
    /// it is left out, also after the agent's loader child sends the diagnostics over the pipe.
    @Test func theSourceLineOfASecretIsNotPrinted() throws {
        let text = """
            version: 1
            jobs:
              a:
                command: [/bin/true]
                notify:
                  - on: failure
                    webhook:
                      url: "https://user:s3cret-url@hooks.example.org/x"
                  - on: failure
                    webhook:
                      url: "https://hooks.example.org/s3cret-pattern token"
                  - on: failure
                    webhook:
                      url: "https://h/x"
                      headers:
                        X-Api-Key: 86753091234
                        X-Token: "s3cret-header\\r\\nX: y"
                        Host: s3cret-host
                retry: { attempts: 0 }
            """
        let r = load(text)
        let sources = ["a.yaml": Array(text.utf8)]
        let decoded = try LoaderWire.decode(LoaderWire.encode(r), maxBytes: 1 << 20)
        for diagnostics in [r.diagnostics, decoded.diagnostics] {
            #expect(diagnostics.filter(\.sourceMayHoldSecret).count == 5, "\(diagnostics)")
            let report = DiagnosticFormatter(format: .text, sources: sources).render(diagnostics)
            #expect(!report.contains("s3cret") && !report.contains("86753091234"), "\(report)")
            // Other diagnostics keep their line and caret.
            #expect(report.contains("    retry: { attempts: 0 }\n"), "\(report)")
        }
    }

    /// A diagnostic about something else on a line that holds a secret: a webhook written on one
    /// line showed its URL under the `timeout` error, an env value named in `secrets` under
    /// an error about its neighbour.
    @Test func noSourceLineThatHoldsASecretIsPrinted() {
        let text = """
            version: 1
            jobs:
              a:
                command: [/bin/true]
                notify: [{ on: failure, webhook: { url: "https://h/s3cret-one-line", timeout: 0s } }]
                secrets: [TOKEN]
                env: { TOKEN: s3cret-env, BAD: [1] }
                retry: { attempts: 0 }
              b:
                command: [/bin/true]
                notify: [{ on: failure, webhook: { url: "https://h/x", secret_env: KEY } }]
                env_file: /etc/sundial/b.env
                env: { KEY: s3cret-key, X: [2] }
            """
        let r = load(text)
        let report = DiagnosticFormatter(format: .text, sources: ["a.yaml": Array(text.utf8)]).render(r.diagnostics)
        #expect(r.diagnostics.filter(\.sourceMayHoldSecret).count == 3, "\(r.diagnostics)")
        #expect(!report.contains("s3cret"), "\(report)")
        #expect(report.contains("    retry: { attempts: 0 }\n"), "\(report)")
    }

    /// A secret written over several lines (quoted, plain or a block scalar): every line it
    /// spans is left out, not only its first. An error about a neighbour on the secret's last
    /// line showed that line, the secret's second half with it.
    @Test func noLineOfAMultiLineSecretIsPrinted() {
        let text = """
            version: 1
            jobs:
              a:
                command: [/bin/true]
                secrets: [TOKEN, BLOCK]
                env: { TOKEN: "s3cret-first
                  s3cret-quoted", BAD: [1] }
                notify: [{ on: failure, webhook: { url: "https://h/s3cret-url\\
                  s3cret-escaped", timeout: 0s } }]
              b:
                command: [/bin/true]
                secrets: [BLOCK]
                env:
                  BLOCK: |
                    s3cret-block-1
                    s3cret-block-2
                  AFTER: [2]
              c:
                command: [/bin/true]
                secrets: [PLAIN]
                env: { PLAIN: s3cret-plain-1
                  s3cret-plain-2, NEXT: [3] }
                retry: { attempts: 0 }
            """
        let r = load(text)
        let report = DiagnosticFormatter(format: .text, sources: ["a.yaml": Array(text.utf8)]).render(r.diagnostics)
        #expect(r.diagnostics.contains { $0.location.line == 7 && $0.message.contains("`BAD`") }, "\(r.diagnostics)")
        #expect(r.diagnostics.contains { $0.location.line == 9 && $0.message.contains("timeout") }, "\(r.diagnostics)")
        #expect(r.diagnostics.contains { $0.location.line == 22 && $0.message.contains("`NEXT`") }, "\(r.diagnostics)")
        #expect(!report.contains("s3cret"), "\(report)")
        // The line after a block scalar is its neighbour's, not the secret's: still shown.
        #expect(report.contains("      AFTER: [2]\n"), "\(report)")
        #expect(report.contains("    retry: { attempts: 0 }\n"), "\(report)")
    }

    @Test func schemaShapesAreChecked() {
        for (entry, fragment) in [
            ("{ on: failure }", "missing required key `command`"),
            ("{ on: failed, command: [x] }", "`on`: must be one of: failure, success, retry, recovered, missed, timeout"),
            ("{ on: failure, command: [x], webhook: { url: \"http://h/\" } }", "a.yaml:5:14"),
            ("{ on: failure, webhook: { url: \"ftp://h/\" } }", "url"),
            ("{ on: failure, webhook: { url: \"http://h/\", retries: 11 } }", "retries"),
        ] {
            let r = load("version: 1\njobs:\n  a:\n    command: [/bin/true]\n    notify: [\(entry)]\n")
            #expect(r.jobSet == nil, "\(entry)")
            #expect(errors(r).contains { $0.contains(fragment) }, "\(entry): \(errors(r))")
        }
    }
}
