import OrderedCollections
import SundialCore
import SundialTesting
import Testing

@Suite("Webhook requests", .offPool)
struct WebhookRequestTests {
    @Test("URLs: host, port, target; https is recognised; bad ones say why")
    func urls() throws {
        let u = try WebhookURL.parse("http://alerts.internal:9000/sundial?x=1#frag")
        #expect(u == WebhookURL(isTLS: false, host: "alerts.internal", port: 9000, target: "/sundial?x=1"))
        #expect(u.hostHeader == "alerts.internal:9000")
        #expect(try WebhookURL.parse("HTTP://127.0.0.1").target == "/")
        #expect(try WebhookURL.parse("http://127.0.0.1").hostHeader == "127.0.0.1")
        #expect(try WebhookURL.parse("http://[::1]:8080/h") == WebhookURL(isTLS: false, host: "::1", port: 8080, target: "/h"))
        #expect(try WebhookURL.parse("https://hooks.example/x").isTLS)
        for bad in ["ftp://x", "http://", "http://x:0/", "http://x:70000/", "http://u:p@x/", "http://x/a b", "http://[::1/"] {
            #expect(throws: WebhookURL.ParseError.self, "\(bad)") { try WebhookURL.parse(bad) }
        }
    }

    @Test("the header lines: agent, JSON type, signature over the body, then the entry's own in order")
    func headerFields() throws {
        let body = Array(#"{"event":"failure"}"#.utf8)
        let lines = WebhookRequest.headerFields(headers: ["Authorization": "Bearer t", "X-B": ""], body: body, signatureKey: Array("k".utf8))
        #expect(
            lines == [
                "User-Agent: sundial", "Content-Type: application/json",
                "X-Sundial-Signature: \(HMACSHA256.signature(key: Array("k".utf8), body: body))",
                "Authorization: Bearer t", "X-B: ",
            ])
        let unsigned = WebhookRequest.headerFields(headers: [:], body: [], signatureKey: nil)
        #expect(unsigned == ["User-Agent: sundial", "Content-Type: application/json"])
    }

    @Test("backoff on virtual time: 1 s doubling to 60 s, then giving up after the retries")
    func backoff() {
        #expect((1...9).map(WebhookRequest.backoffMs(afterAttempt:)) == [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000])
        let t = Instant(unixMillis: 1_000_000)
        var a = DeliveryAttempts(retries: 2, now: t)
        #expect(a.nextAttemptAt == t)
        #expect(a.failed(reason: "HTTP 500", now: Instant(unixMillis: 1_000_300)) == Instant(unixMillis: 1_001_300))
        #expect(a.failed(reason: "HTTP 502", now: Instant(unixMillis: 1_001_400)) == Instant(unixMillis: 1_003_400))
        #expect(a.failed(reason: "refused", now: Instant(unixMillis: 1_003_500)) == nil)
        #expect(a.made == 3 && a.reasons == ["HTTP 500", "HTTP 502", "refused"])
        var once = DeliveryAttempts(retries: 0, now: t)
        #expect(once.failed(reason: "x", now: t) == nil)
    }
}

@Suite("Notification requests as JSON (for a durable queue)", .offPool)
struct NotificationRequestJSONTests {
    @Test("every field round-trips; damaged documents are nil, never a trap")
    func roundTrip() throws {
        let t = Instant(unixMillis: 1_767_571_200_000)
        let run = RunFact(
            kind: .attemptEnded(willRetry: false), job: "backup", runID: RunID(rawValue: "01ABC"), attempt: 3,
            outcome: .launchFailed(reason: "ENOENT"), durationMs: 12, at: t)
        let missed = RunFact(kind: .missed(count: 4, scheduledFor: Instant(unixMillis: t.unixMillis - 3_600_000)), job: "backup", at: t)
        let hook = NotifyTarget.webhook(WebhookSpec(url: "http://h:8/x", headers: ["A": "b", "C": ""], secretEnv: "K", timeoutMs: 1500, retries: 2))
        // A private CA survives the restart: without it a pending delivery would be checked
        // against the system store (failing, or trusting any public CA).
        let pinned = NotifyTarget.webhook(WebhookSpec(url: "https://h/x", caFile: "/etc/sundial/ca.pem", timeoutMs: DurationParser.maximumMilliseconds))
        for (fact, target) in [(run, hook), (run, pinned), (missed, NotifyTarget.command(["mail", "-s", "x y"]))] {
            let r = NotificationRequest(
                event: .failure, target: target, job: "backup", entry: 1, envFile: "/etc/x.env",
                facts: NotificationFacts(event: .failure, fact: fact, box: "db1"))
            let text = r.json.jsonText
            #expect(NotificationRequest(json: try JSONParser.parse(text)) == r, "\(text)")
            // Byte corruptions: each is a request or nil.
            var bytes = Array(text.utf8)
            for i in stride(from: 0, to: bytes.count, by: 5) {
                let saved = bytes[i]
                bytes[i] = UInt8(ascii: "\"")
                if let v = try? JSONParser.parse(bytes) { _ = NotificationRequest(json: v) }
                bytes[i] = saved
            }
        }
        #expect(NotificationRequest(json: ["event": "failure"]) == nil)
        // A timeout no job file can give is damage: refused, so the delivery's deadline
        // arithmetic never sees it.
        let facts = NotificationFacts(event: .failure, fact: run, box: "db1")
        for bad in [DurationParser.maximumMilliseconds + 1, Int64.max, 0] {
            let r = NotificationRequest(
                event: .failure, target: .webhook(WebhookSpec(url: "http://h/x", timeoutMs: bad)), job: "backup", entry: 0, envFile: nil, facts: facts)
            #expect(NotificationRequest(json: try JSONParser.parse(r.json.jsonText)) == nil, "\(bad)")
        }
        #expect(NotificationRequest(json: .null) == nil)
    }
}
