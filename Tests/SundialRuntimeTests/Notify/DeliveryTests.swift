import Foundation
import SundialConfig
import SundialCore
@testable import SundialRuntime
import Testing

/// The real senders against real processes and a closed port (the loopback receiver case is
/// in the CLI tests, through the agent).
@Suite("Notification delivery: commands and webhooks")
struct DeliveryTests {
    static let facts = NotificationFacts(event: .failure, fact: RunFact(kind: .attemptEnded(willRetry: false), job: "backup",
        runID: RunID(rawValue: "01ABC"), attempt: 2, outcome: .failure(exitCode: 4), durationMs: 250,
        at: Instant(unixMillis: 1_767_571_200_000)), box: "db1")

    @Test("a command gets the facts on stdin and in SUNDIAL_* variables, and its exit status decides")
    func command() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ok = CommandDelivery().run(argv: ["sh", "-c", "cat > \(dir)/in; env > \(dir)/env"], facts: Self.facts)
        #expect(ok == .sent(detail: "exit 0"))
        let input = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/in"))))
        #expect(input == Self.facts.json)
        let env = try String(contentsOfFile: dir + "/env", encoding: .utf8)
        #expect(env.contains("SUNDIAL_RUN_ID=01ABC\n") && env.contains("SUNDIAL_ATTEMPT=2\n") && env.contains("SUNDIAL_EXIT_CODE=4\n"))
        #expect(env.contains("SUNDIAL_STARTED_AT=2026-01-04T23:59:59.750Z\n") && env.contains("PATH="))
        #expect(CommandDelivery().run(argv: ["sh", "-c", "echo first; echo 'no route' >&2; exit 5"], facts: Self.facts)
            == .failed(reason: "sh exited 5: no route"))
        #expect(CommandDelivery().run(argv: ["no-such-notifier-xyz"], facts: Self.facts)
            == .failed(reason: "no-such-notifier-xyz: command not found in PATH (\(String(cString: getenv("PATH"))))"))
        #expect(CommandDelivery().run(argv: ["/nonexistent/notifier"], facts: Self.facts)
            == .failed(reason: "/nonexistent/notifier: No such file or directory"))
    }

    @Test("import-crontab's MAILTO command mails the facts through sendmail, or fails saying there is none")
    func mailtoCommand() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/bin", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let argv = ["/bin/sh", "-c", CrontabImport.mailScript, "sundial-mail", "ops@example.org"]
        let fake = dir + "/bin/sendmail"
        try "#!/bin/sh\necho \"$@\" > \(dir)/args\ncat > \(dir)/mail\n".write(toFile: fake, atomically: true, encoding: .utf8)
        chmod(fake, 0o755)
        #expect(CommandDelivery(path: dir + "/bin:/usr/bin:/bin").run(argv: argv, facts: Self.facts) == .sent(detail: "exit 0"))
        let mail = try String(contentsOfFile: dir + "/mail", encoding: .utf8)
        #expect(mail.hasPrefix("To: ops@example.org\nSubject: [sundial] backup failure on db1\n\n"), "\(mail)")
        #expect(mail.contains("SUNDIAL_EXIT_CODE=4\n") && mail.contains(#""run_id":"01ABC""#))
        #expect(try String(contentsOfFile: dir + "/args", encoding: .utf8) == "-t\n")
        // No sendmail anywhere on PATH (nor at /usr/sbin in this container, checked first).
        if !FileManager.default.isExecutableFile(atPath: "/usr/sbin/sendmail") {
            let r = CommandDelivery(path: "/usr/bin:/bin").run(argv: argv, facts: Self.facts)
            guard case let .failed(reason) = r else { Issue.record("\(r)"); return }
            #expect(reason.contains("no sendmail on this box"), "\(reason)")
        }
    }

    @Test("a command past its timeout is killed and says so, within a bounded time")
    func commandTimeout() {
        let started = ContinuousClock.now
        let r = CommandDelivery(timeoutMs: 300).run(argv: ["sleep", "30"], facts: Self.facts)
        #expect(r == .failed(reason: "sleep: still running after 300ms, killed"))
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    @Test("a webhook to a closed port fails at once with the reason")
    func refused() {
        let r = WebhookDelivery(spec: WebhookSpec(url: "http://127.0.0.1:1/x", timeoutMs: 2000)).post(body: [], signatureKey: nil)
        guard case let .failed(reason) = r else { Issue.record("\(r)"); return }
        #expect(reason.contains("Connection refused"), "\(reason)")
    }

    @Test("a signing key from an env_file others may read is refused")
    func insecureSecret() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hook-\(UUID().uuidString).env").path
        try "KEY=abc\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        chmod(path, 0o644)
        guard case let .failure(e) = SystemNotificationSender.secret("KEY", in: path) else { Issue.record("accepted"); return }
        #expect(e.description.contains("chmod 600"), "\(e)")
        chmod(path, 0o600)
        #expect((try? SystemNotificationSender.secret("KEY", in: path).get()) == "abc")
        guard case .failure = SystemNotificationSender.secret("OTHER", in: path) else { Issue.record("found OTHER"); return }
    }
}
