import CSundialShim
import Foundation
import Glibc
import SundialCore
import SundialTesting
import Synchronization
import Testing

@testable import SundialRuntime

/// The status routes on the metrics listener: rendered off its thread, so a page the agent is
/// slow to answer never delays a scrape; bounded in time (503 after
/// ``MetricsHTTPServer/pageTimeoutMillis``) and in number (``MetricsHTTPServer/maxPagesInFlight``).
@Suite("Status pages: on the metrics listener", .serialized, .timeLimit(.minutes(1)), .offPool)
struct StatusServerTests {
    /// Answers after `delay` (never, for the test's purposes, when it is long).
    struct SlowSource: StatusDataSource {
        let delay: Duration
        static let now = Instant(unixMillis: 1_800_000_000_000)
        static let agent = StatusAgentInfo(version: "1", pid: 1, revision: "r", startedAt: now, now: now)
        func agentInfo() async -> StatusAgentInfo {
            try? await Task.sleep(for: delay)
            return Self.agent
        }
        func jobRows() async -> (agent: StatusAgentInfo, rows: [StatusJobRow]) {
            try? await Task.sleep(for: delay)
            return (Self.agent, [StatusJobRow(id: "<job>", schedule: "manual")])
        }
        func jobDetail(_ id: JobID) async -> (agent: StatusAgentInfo, detail: StatusJobDetail)? {
            try? await Task.sleep(for: delay)
            return nil
        }
        func timeline() async -> (agent: StatusAgentInfo, timeline: StatusTimeline) {
            try? await Task.sleep(for: delay)
            return (Self.agent, StatusTimeline(start: Self.now, end: Self.now, rows: []))
        }
    }

    static func exporter(delay: Duration) throws -> MetricsExporter {
        let address = try ListenAddress(parsing: "127.0.0.1:0", allowNonLoopback: false)
        return MetricsExporter(
            options: .init(
                listen: address, registry: .init(version: "1"),
                pages: StatusPages(source: SlowSource(delay: delay))))
    }

    static func connect(_ port: UInt16, timeoutSeconds: Int = 10) throws -> TCPConnection {
        let c = try TCPConnection(port: port)
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return c
    }

    @Test func pagesAndJSONAreServedWithTheirTypes() async throws {
        let exporter = try Self.exporter(delay: .zero)
        try exporter.start()
        defer { exporter.stop() }
        let port = try #require(exporter.port)
        let result = await offPoolResult { () throws -> [String] in
            try ["/", "/api/v1/jobs", "/api/v1/jobs/x", "/nothing", "/metrics"].map {
                try Self.connect(port).exchange("GET \($0) HTTP/1.1\r\nHost: x\r\n\r\n")
            } + [try Self.connect(port).exchange("HEAD / HTTP/1.1\r\n\r\n"), try Self.connect(port).exchange("POST / HTTP/1.1\r\n\r\n")]
        }
        let answers = try result.get()
        #expect(answers[0].hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"))
        #expect(answers[0].contains("Content-Security-Policy: default-src 'none'"))
        #expect(answers[0].contains("&lt;job&gt;") && !answers[0].contains("<job>"))
        #expect(answers[1].hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"))
        #expect(answers[1].contains("\"id\":\"<job>\""))
        #expect(answers[2].hasPrefix("HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"))
        #expect(answers[3].hasPrefix("HTTP/1.1 404 Not Found\r\n") && answers[3].contains("the status page at /"))
        #expect(answers[4].hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(answers[5].hasPrefix("HTTP/1.1 200 OK\r\n") && answers[5].hasSuffix("\r\n\r\n"), "HEAD: headers only")
        #expect(answers[6].hasPrefix("HTTP/1.1 405 "), "read-only")
    }

    /// A page the agent does not answer: a scrape meanwhile is answered at once, the page gets
    /// a 503 at its deadline, and pages beyond the in-flight limit get a 503 at once.
    @Test func aStuckAgentNeverDelaysAScrapeAndPagesTimeOut() async throws {
        let exporter = try Self.exporter(delay: .seconds(30))
        try exporter.start()
        defer { exporter.stop() }
        let port = try #require(exporter.port)
        let parked = try (0..<MetricsHTTPServer.maxPagesInFlight).map { _ in try Self.connect(port) }
        for c in parked { c.send("GET / HTTP/1.1\r\n\r\n") }
        let result = await offPoolResult {
            () throws -> (scrape: String, scrapeTime: Duration, extra: String, extraTime: Duration, page: String, pageTime: Duration) in
            let start = ContinuousClock.now
            // Give the server a moment to read the parked requests (poll until all are in).
            let deadline = start + .seconds(5)
            var scrape = ""
            while ContinuousClock.now < deadline {
                scrape = try Self.connect(port).exchange("GET /metrics HTTP/1.1\r\n\r\n")
                if scrape.hasPrefix("HTTP/1.1 200") { break }
            }
            let s0 = ContinuousClock.now
            scrape = try Self.connect(port).exchange("GET /metrics HTTP/1.1\r\n\r\n")
            let scrapeTime = ContinuousClock.now - s0
            let e0 = ContinuousClock.now
            let extra = try Self.connect(port).exchange("GET /api/v1/jobs HTTP/1.1\r\n\r\n")
            let extraTime = ContinuousClock.now - e0
            let page = try parked[0].readAll()
            return (scrape, scrapeTime, extra, extraTime, page, ContinuousClock.now - start)
        }
        parked.forEach { $0.close() }
        let r = try result.get()
        #expect(r.scrape.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(r.scrapeTime < .seconds(1), "a scrape took \(r.scrapeTime) while pages were parked")
        #expect(r.extra.hasPrefix("HTTP/1.1 503 ") && r.extra.contains("too many status pages"), "\(r.extra.prefix(300))")
        #expect(r.extraTime < .seconds(1))
        #expect(r.page.hasPrefix("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html"), "\(r.page.prefix(300))")
        #expect(r.page.contains("did not answer within"))
        #expect(r.pageTime >= .milliseconds(MetricsHTTPServer.pageTimeoutMillis - 500) && r.pageTime < .seconds(9), "\(r.pageTime)")
    }
}
