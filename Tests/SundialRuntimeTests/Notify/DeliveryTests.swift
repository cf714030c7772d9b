import Foundation
import OrderedCollections
import SundialConfig
import SundialCore
import SundialTesting
import Testing

@testable import SundialRuntime

/// The real senders against real processes and a closed port (the loopback receiver case is
/// in the CLI tests, through the agent).
@Suite("Notification delivery: commands and webhooks", .offPool)
struct DeliveryTests {
    static let facts = NotificationFacts(
        event: .failure,
        fact: RunFact(
            kind: .attemptEnded(willRetry: false), job: "backup",
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
        #expect(
            CommandDelivery().run(argv: ["sh", "-c", "echo first; echo 'no route' >&2; exit 5"], facts: Self.facts)
                == .failed(reason: "sh exited 5: no route"))
        #expect(
            CommandDelivery().run(argv: ["no-such-notifier-xyz"], facts: Self.facts)
                == .failed(reason: "no-such-notifier-xyz: command not found in PATH (\(String(cString: getenv("PATH"))))"))
        #expect(
            CommandDelivery().run(argv: ["/nonexistent/notifier"], facts: Self.facts)
                == .failed(reason: "/nonexistent/notifier: No such file or directory"))
    }

    @Test("import-crontab's MAILTO command mails the facts through sendmail, or fails saying there is none")
    func mailtoCommand() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/bin", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let argv = ["/bin/sh", "-c", CrontabImport.mailScript, "sundial-mail", "ops@example.org"]
        let fake = dir + "/bin/sendmail"
        try TestFile.write("#!/bin/sh\necho \"$@\" > \(dir)/args\ncat > \(dir)/mail\n", to: fake, mode: 0o755)
        // Run again, briefly, while the shell cannot exec the just-written script because another
        // test thread's fork still holds its write descriptor (ETXTBSY, as in ProcessRunnerTests).
        let sent = await retryingWhileTextFileBusy({ (result: DeliveryResult) in
            if case let .failed(reason) = result { return reason.contains("Text file busy") }
            return false
        }) { CommandDelivery(path: dir + "/bin:/usr/bin:/bin").run(argv: argv, facts: Self.facts) }
        #expect(sent == .sent(detail: "exit 0"))
        let mail = try String(contentsOfFile: dir + "/mail", encoding: .utf8)
        #expect(mail.hasPrefix("To: ops@example.org\nSubject: [sundial] backup failure on db1\n\n"), "\(mail)")
        #expect(mail.contains("SUNDIAL_EXIT_CODE=4\n") && mail.contains(#""run_id":"01ABC""#))
        #expect(try String(contentsOfFile: dir + "/args", encoding: .utf8) == "-t\n")
        // No sendmail anywhere on PATH (nor at /usr/sbin in this container, checked first).
        if !FileManager.default.isExecutableFile(atPath: "/usr/sbin/sendmail") {
            let r = CommandDelivery(path: "/usr/bin:/bin").run(argv: argv, facts: Self.facts)
            guard case let .failed(reason) = r else {
                Issue.record("\(r)")
                return
            }
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

    /// A command that writes without pause keeps its output pipe full; the loop that drains it
    /// must still come back to the deadline (it read until the pipe ran empty, which a fast
    /// enough writer can put off for good).
    @Test("a command flooding its output is still killed at its timeout")
    func floodingCommandTimeout() {
        let started = ContinuousClock.now
        let r = CommandDelivery(timeoutMs: 300).run(argv: ["sh", "-c", "yes & yes & yes & exec yes"], facts: Self.facts)
        #expect(r == .failed(reason: "sh: still running after 300ms, killed"))
        // Reading until the pipe ran empty, the loop came back to its deadline after 4-5 s here,
        // or never; bounded, it is killed at 300 ms.
        #expect(ContinuousClock.now - started < .seconds(3))
    }

    // The webhook child's real work (libcurl against closed ports and TLS receivers) is tested
    // through the built binary in the CLI tests (NotifyAgentTests, HTTPSWebhookTests); here
    // programs stand in for the child, to test the parent's side: the request on stdin, the
    // answer, and the kill at the deadline.

    @Test("a webhook child still running at the timeout is killed, whatever it is doing (a hung name lookup)")
    func webhookDeadline() {
        let started = ContinuousClock.now
        let spec = WebhookSpec(url: "https://hooks.example.org/x", timeoutMs: 300)
        let r = WebhookDelivery(spec: spec, command: ["/bin/sleep", "30"]).post(body: [], signatureKey: nil)
        #expect(r == .failed(reason: "timed out after 300ms (the delivery process was killed)"))
        #expect(ContinuousClock.now - started < .seconds(3))
    }

    @Test("the webhook child gets the request on stdin; its answer line decides")
    func webhookChildAnswer() throws {
        let spec = WebhookSpec(url: "https://h.example/x", headers: ["Authorization": "Bearer t"], caFile: "/etc/ca.pem", timeoutMs: 4000)
        func post(_ script: String) -> DeliveryResult {
            WebhookDelivery(spec: spec, command: ["/bin/sh", "-c", script]).post(body: Array("{}".utf8), signatureKey: Array("k".utf8))
        }
        func answering(_ line: String) -> DeliveryResult { post("cat > /dev/null; printf '\(line)'") }
        // The child may write no file (RLIMIT_FSIZE), so this one echoes its stdin as its
        // answer, NULs made `|`.
        let signature = HMACSHA256.signature(key: Array("k".utf8), body: Array("{}".utf8))
        #expect(
            post("printf 'failed '; tr '\\000' '|'; echo")
                == .failed(
                    reason: "sundial-webhook 1|https://h.example/x|/etc/ca.pem|3750|4|"
                        + "User-Agent: sundial|Content-Type: application/json|X-Sundial-Signature: \(signature)|Authorization: Bearer t|{}"))
        #expect(answering("status 204\\n") == .sent(detail: "HTTP 204"))
        #expect(answering("status 503\\n") == .failed(reason: "HTTP 503"))
        #expect(
            answering("failed SSL certificate problem: self-signed certificate\\n")
                == .failed(reason: "SSL certificate problem: self-signed certificate"))
        guard case let .failed(noLibrary) = answering("nolib libcurl.so.4: cannot open shared object file\\n") else {
            Issue.record("sent")
            return
        }
        #expect(noLibrary.contains("libcurl.so.4: cannot open shared object file") && noLibrary.contains("apt-get install libcurl4"), "\(noLibrary)")
        #expect(answering("garbage") == .failed(reason: "the webhook delivery process exited 0 without an answer"))
    }

    @Test("without a ca_file, a verification failure's reason points at ca_file")
    func verificationHint() {
        let r = WebhookDelivery(
            spec: WebhookSpec(url: "https://h.example/x"),
            command: ["/bin/sh", "-c", "cat > /dev/null; echo 'failed SSL certificate problem: unable to get local issuer certificate'"]
        )
        .post(body: [], signatureKey: nil)
        #expect(r == .failed(reason: "SSL certificate problem: unable to get local issuer certificate (a receiver with a private CA needs `ca_file:`)"))
    }

    @Test("a missing libcurl is an answer naming it, not a crash")
    func missingLibrary() {
        let request = WebhookWire.Request(url: "https://h.example/x", caFile: nil, timeoutMs: 1000, headers: [], body: [])
        guard case let .noLibrary(why) = WebhookTransfer.perform(request, library: "libcurl-sundial-missing.so.9") else {
            Issue.record("loaded")
            return
        }
        #expect(why.contains("libcurl-sundial-missing.so.9"), "\(why)")
        #expect(
            WebhookTransfer.perform(
                WebhookWire.Request(
                    url: "https://h.example/x", caFile: "/nonexistent/ca.pem", timeoutMs: 1000,
                    headers: [], body: []))
                == .failed("ca_file /nonexistent/ca.pem: No such file or directory"))
    }

    @Test("the webhook wire: requests and answers round-trip; damaged ones are errors")
    func webhookWire() throws {
        let r = WebhookWire.Request(url: "https://h/x?a=1", caFile: nil, timeoutMs: 10_000, headers: ["A: b", "C: "], body: Array("{\"x\":1}".utf8))
        #expect(try WebhookWire.decode(WebhookWire.encode(r)) == r)
        let bytes = WebhookWire.encode(r)
        for cut in [0, 5, 20, bytes.count - 12] {
            #expect(throws: WebhookWire.DecodeError.self, "\(cut)") { try WebhookWire.decode(Array(bytes.prefix(cut))) }
        }
        #expect(throws: WebhookWire.DecodeError.self) { try WebhookWire.decode(Array("other 1\0".utf8)) }
        for a in [WebhookWire.Answer.status(204), .failed("no route"), .noLibrary("x")] {
            #expect(try WebhookWire.decode(answer: WebhookWire.encode(a)) == a)
        }
        // A reason quoting the server cannot add a line.
        #expect(WebhookWire.encode(.failed("a\nstatus 200")) == Array("failed a?status 200\n".utf8))
        #expect(throws: WebhookWire.DecodeError.self) { try WebhookWire.decode(answer: Array("status 99999\n".utf8)) }
    }

    @Test("a signing key from an env_file others may read is refused")
    func insecureSecret() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hook-\(UUID().uuidString).env").path
        try "KEY=abc\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        chmod(path, 0o644)
        guard case let .failure(e) = SystemNotificationSender.secret("KEY", in: path) else {
            Issue.record("accepted")
            return
        }
        #expect(e.description.contains("chmod 600"), "\(e)")
        chmod(path, 0o600)
        #expect((try? SystemNotificationSender.secret("KEY", in: path).get()) == "abc")
        guard case .failure = SystemNotificationSender.secret("OTHER", in: path) else {
            Issue.record("found OTHER")
            return
        }
    }
}
