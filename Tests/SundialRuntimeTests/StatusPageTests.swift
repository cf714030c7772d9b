import Foundation
import SundialConfig
import SundialCore
import SundialTesting
import Testing

@testable import SundialRuntime

/// The status pages' rendering: escaping of hostile strings, routes, the timeline's bars, and
/// the size and time of a 1,000-job page. Pure: the view model is built by hand.
@Suite("Status pages: rendering", .offPool)
struct StatusPageTests {
    static let now = try! RFC3339.parse("2026-12-02T12:00:00Z").instant

    static func agent(rejected: RejectedReload? = nil) -> StatusAgentInfo {
        StatusAgentInfo(
            version: "1.2.3", pid: 42, revision: "abcdef0123456789", startedAt: now - .seconds(3600),
            configLoadedAt: now - .seconds(60), lastRejected: rejected, clockSynchronised: true, now: now)
    }

    static func run(_ job: JobID, _ n: Int, _ outcome: RunOutcome?, ago: Int64 = 600, lasting: Int64 = 5) -> RunSummary {
        let start = now - .seconds(ago)
        return RunSummary(
            id: RunID(rawValue: "\(job)-run-\(n)"), job: job, trigger: .schedule, scheduledFor: start, startedAt: start,
            finishedAt: outcome == nil ? nil : start + .seconds(lasting), outcome: outcome, attempts: 1)
    }

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    // MARK: - Escaping

    static let hostile = [
        "<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "' onmouseover='alert(1)", "a&b<c>d\"e'f",
        "</pre><script>x()</script>", "\u{1B}[31mred\u{1B}[0m", "nul\u{0}byte", "<!-- comment", "]]><svg onload=alert(1)>",
    ]

    @Test func escapesEveryMarkupCharacter() {
        #expect(HTMLEscape.escape("<a href=\"x\">'&'</a>") == "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;")
        for s in Self.hostile {
            let e = HTMLEscape.escape(s)
            #expect(!e.contains("<") && !e.contains(">") && !e.contains("\"") && !e.contains("'"), "\(s) → \(e)")
        }
    }

    @Test func cutsWithoutSplittingACharacter() {
        let e = HTMLEscape.escape("ab€€", limit: 4)  // € is 3 bytes: the cut falls inside the first
        #expect(e == "ab … (6 more bytes)")
    }

    @Test func replacesControlCharactersButKeepsTabsAndNewlines() {
        #expect(HTMLEscape.escape("a\u{1B}[0m\tb\nc\u{7F}") == "a\u{FFFD}[0m\tb\nc\u{FFFD}")
    }

    @Test func invalidUTF8BecomesReplacementCharacters() {
        let bytes: [UInt8] = [0x6F, 0x6B, 0xFF, 0xFE, 0xC3, 0x28, 0x3C]  // "ok", junk, "(", "<"
        let e = HTMLEscape.escape(bytes: bytes)
        #expect(e.hasPrefix("ok\u{FFFD}"))
        #expect(e.hasSuffix("(&lt;"))
    }

    @Test func cutsVeryLongLinesWithAMarker() {
        let line = String(repeating: "<", count: 1_000_000)
        let e = HTMLEscape.escape(line)
        #expect(e.utf8.count == HTMLEscape.maxBytes * 4 + " … (\(1_000_000 - HTMLEscape.maxBytes) more bytes)".utf8.count)
        #expect(e.hasSuffix(" … (\(1_000_000 - HTMLEscape.maxBytes) more bytes)"))
    }

    @Test func percentEncodingRoundTrips() {
        for s in Self.hostile + ["plain-id_1.2", "é/ü?#%"] {
            let enc = HTMLEscape.percentEncode(s)
            #expect(enc.utf8.allSatisfy { $0 < 0x80 && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "<") })
            #expect(HTMLEscape.percentDecode(enc[...]) == s)
        }
        #expect(HTMLEscape.percentDecode("%FF%FE") == nil, "not UTF-8")
        #expect(HTMLEscape.percentDecode("%4") == nil)
    }

    /// A hostile job id, description, command, file path, output and rejected-reload message
    /// never become markup on any page.
    @Test func hostileStringsNeverBecomeMarkup() {
        for evil in Self.hostile {
            var row = StatusJobRow(
                id: evil, description: evil, schedule: evil, explanation: evil, timezone: evil, next: Self.now + .seconds(60),
                nextLocal: evil, recent: [Self.run(evil, 1, .failure(exitCode: 3))])
            row.paused = true
            let rejected = RejectedReload(at: Self.now, reason: evil, errors: [.init(file: evil, line: 1, column: 2, message: evil)])
            let detail = StatusJobDetail(
                row: row, definition: [("command", evil), (evil, evil)],
                location: SourceLocation(file: evil, line: 3, column: 5),
                ledger: [LedgerEntry(job: evil, scheduledFor: Self.now, disposition: .skipped(.overlap), at: Self.now)],
                runs: [StatusRun(summary: Self.run(evil, 1, .failure(exitCode: 3)), output: [evil, evil + "\u{FFFD}"])])
            let timeline = StatusTimeline(start: Self.now - .seconds(86_400), end: Self.now, rows: [.init(job: evil, runs: row.recent)])
            let pages = [
                StatusPageRenderer.jobsPage(agent: Self.agent(rejected: rejected), rows: [row]),
                StatusPageRenderer.jobPage(agent: Self.agent(), detail: detail),
                StatusPageRenderer.timelinePage(agent: Self.agent(), timeline: timeline),
                StatusPageRenderer.messagePage(title: evil, message: evil),
            ]
            for page in pages.map(Self.text) {
                #expect(!page.contains(evil), "\(evil) appears unescaped")
                #expect(!page.lowercased().contains("<script"), "a script element")
                #expect(!page.contains("onerror=") || !page.contains("<img"), "an img element")
                #expect(!page.contains("<svg onload"))
                #expect(!page.contains("\u{1B}"), "a raw escape character")
            }
        }
    }

    @Test func hostileStringsStayStringsInJSON() throws {
        let evil = "\"},{\"injected\":true,\"x\":\"\u{0}\u{1B}</script>"
        let row = StatusJobRow(id: evil, schedule: evil, recent: [Self.run(evil, 1, .success(exitCode: 0))])
        let body = StatusPages.encode(StatusJSON.jobs([row], now: Self.now))
        let parsed = try JSONParser.parse(body)
        guard case let .array(jobs)? = parsed["jobs"] else {
            Issue.record("no jobs")
            return
        }
        #expect(jobs.count == 1)
        #expect(jobs[0]["id"]?.stringValue == evil)
        #expect(parsed["injected"] == nil)
    }

    // MARK: - Routes

    @Test func routes() {
        typealias R = StatusPages.Route
        #expect(R(path: "/") == .jobs)
        #expect(R(path: "/timeline") == .timeline)
        #expect(R(target: "/timeline?page=3") == .timelinePage(3))
        #expect(R(target: "/timeline?x=1&page=2") == .timelinePage(2))
        for odd in ["/timeline?page=1", "/timeline?page=0", "/timeline?page=-4", "/timeline?page=x", "/timeline?page=99999999999999999999", "/timeline?"] {
            #expect(R(target: odd) == .timeline, "\(odd)")
        }
        #expect(R(target: "/?page=2") == .jobs)
        #expect(R(path: "/jobs/backup") == .job("backup"))
        #expect(R(path: "/jobs/a%2Fb") == .job("a/b"))
        #expect(R(path: "/api/v1/agent") == .apiAgent)
        #expect(R(path: "/api/v1/jobs") == .apiJobs)
        #expect(R(path: "/api/v1/jobs/backup") == .apiJob("backup"))
        #expect(R(path: "/api/v1/jobs/backup/runs") == .apiRuns("backup"))
        #expect(R(path: "/jobs/") == .jobs)
        for bad in [
            "/metrics", "/jobs/a/b", "/api/v1/jobs/x/other", "/api/v2/jobs", "/jobs/%ZZ", "/jobs/%FF",
            "/jobs/" + String(repeating: "a", count: 5000), "/timeline/x", "/api/v1/jobs/",
        ] {
            #expect(R(path: bad) == nil, "\(bad)")
        }
    }

    // MARK: - Contents

    @Test func jobsPageShowsRowsOutcomesMarkersAndSparkline() {
        var failing = StatusJobRow(
            id: "failing", schedule: "*/5 * * * *", explanation: "every 5 minutes", timezone: "Europe/Berlin",
            next: Self.now + .seconds(240), nextLocal: "2026-12-02 13:04:00", held: true,
            recent: (0..<25).map { Self.run("failing", $0, $0 % 2 == 0 ? .failure(exitCode: 1) : .success(exitCode: 0), ago: Int64(600 + $0 * 300)) })
        failing.paused = true
        let page = Self.text(StatusPageRenderer.jobsPage(agent: Self.agent(), rows: [failing, StatusJobRow(id: "idle", schedule: "manual")]))
        #expect(page.contains("<tr class=\"job\" data-job=\"failing\" data-outcome=\"failure\">"))
        #expect(page.contains("<tr class=\"job\" data-job=\"idle\" data-outcome=\"none\">"))
        #expect(page.contains("in 4 min"))
        #expect(page.contains("every 5 minutes"))
        #expect(page.contains("Europe/Berlin"))
        #expect(page.contains("class=\"badge b-paused\"") && page.contains("class=\"badge b-held\""))
        #expect(page.components(separatedBy: "<i class=o-").count - 1 == 20, "sparkline of the last 20")
        #expect(page.contains("title=\"last 20: 10 succeeded\""))
        #expect(page.contains("<span class=\"outcome o-failure\">failure</span> <span class=\"muted\">5 s</span>"))
        #expect(!page.contains("<script"))
    }

    @Test func pausedIsShownOnlyWhenKnown() {
        let page = Self.text(StatusPageRenderer.jobsPage(agent: Self.agent(), rows: [StatusJobRow(id: "j", schedule: "manual")]))
        #expect(!page.contains("class=\"badge b-paused\""))
    }

    @Test func jobPageShowsDefinitionLedgerRunsAndOutput() {
        let row = StatusJobRow(id: "backup", schedule: "30 2 * * *")
        let detail = StatusJobDetail(
            row: row, definition: [("command", "/usr/local/bin/backup --all")],
            location: SourceLocation(file: "/etc/sundial/jobs.yaml", line: 12, column: 3),
            ledger: [LedgerEntry(job: "backup", scheduledFor: Self.now, disposition: .ran(RunID(rawValue: "r1")), at: Self.now)],
            runs: [
                StatusRun(summary: Self.run("backup", 1, .failure(exitCode: 2)), output: ["line one", "<b>two</b>"]),
                StatusRun(summary: Self.run("backup", 2, nil)),
            ])
        let page = Self.text(StatusPageRenderer.jobPage(agent: Self.agent(), detail: detail))
        #expect(page.contains("/etc/sundial/jobs.yaml:12:3"))
        #expect(page.contains("/usr/local/bin/backup --all"))
        #expect(page.contains("<td>ran</td>"))
        #expect(page.contains("o-row-failure") && page.contains("o-row-running"))
        #expect(page.contains("<pre>line one\n&lt;b&gt;two&lt;/b&gt;\n</pre>"))
    }

    @Test func agentHeaderShowsTheRejectedReloadWithPositions() {
        let rejected = RejectedReload(
            at: Self.now - .seconds(30), reason: "SIGHUP",
            errors: [.init(file: "jobs.yaml", line: 4, column: 7, message: "unknown key `comand`")])
        let page = Self.text(StatusPageRenderer.jobsPage(agent: Self.agent(rejected: rejected), rows: []))
        #expect(page.contains("jobs.yaml:4:7: unknown key `comand`"))
        #expect(page.contains("30 s ago"))
        #expect(page.contains("clock-synced"))
    }

    @Test func timelineDrawsOneBarPerRunInTheWindow() {
        let rows = [
            StatusTimeline.Row(job: "a", runs: [Self.run("a", 1, .success(exitCode: 0)), Self.run("a", 2, .failure(exitCode: 1), ago: 7200)]),
            StatusTimeline.Row(job: "b", runs: [Self.run("b", 1, nil, ago: 60)]),
        ]
        var out: [UInt8] = []
        TimelineSVG.render(StatusTimeline(start: Self.now - .seconds(86_400), end: Self.now, rows: rows), into: &out)
        let svg = Self.text(out)
        #expect(svg.components(separatedBy: "class=\"bar ").count - 1 == 3)
        #expect(svg.contains("class=\"bar o-success\"") && svg.contains("class=\"bar o-failure\"") && svg.contains("class=\"bar o-running\""))
        #expect(svg.components(separatedBy: "<g class=\"row\"").count - 1 == 2)
        // The run that ended 10 minutes ago sits near the right edge.
        #expect(svg.contains("x=\"\(TimelineSVG.labelWidth + (86_400 - 600) * TimelineSVG.chartWidth / 86_400)\""))
    }

    /// 1,000 jobs: 200 rows a page with links between pages; each page well under 1 MB even
    /// with every row full; past the end shows the last page.
    @Test func theTimelineIsPagedBy200Jobs() {
        let rows = (0..<1000).map { j in
            StatusTimeline.Row(job: "job-\(j)", runs: (0..<20).map { Self.run("job-\(j)", $0, .success(exitCode: 0), ago: Int64(600 + $0 * 3600)) })
        }
        let t = StatusTimeline(start: Self.now - .seconds(86_400), end: Self.now, rows: rows)
        func page(_ n: Int) -> String { Self.text(StatusPageRenderer.timelinePage(agent: Self.agent(), timeline: t, page: n)) }
        let first = page(1)
        #expect(first.components(separatedBy: "<g class=\"row\"").count - 1 == 200)
        #expect(first.contains("jobs 1–200 of 1000 · page 1 of 5") && first.contains("href=\"/timeline?page=2\"") && !first.contains("previous"))
        #expect(first.utf8.count < 1_000_000, "\(first.utf8.count) bytes")
        let third = page(3)
        #expect(third.contains(">job-400<") && !third.contains(">job-399<") && third.contains("page=2\">← previous") && third.contains("page=4\">next →"))
        #expect(page(99).contains("page 5 of 5"))
        // Few jobs: one page, no pager.
        let small = StatusTimeline(start: t.start, end: t.end, rows: Array(rows.prefix(3)))
        #expect(!Self.text(StatusPageRenderer.timelinePage(agent: Self.agent(), timeline: small)).contains("pager"))
    }

    @Test func relativeTimes() {
        #expect(StatusPageRenderer.relative(Self.now + .seconds(240), now: Self.now) == "in 4 min")
        #expect(StatusPageRenderer.relative(Self.now - .seconds(7200), now: Self.now) == "2 h ago")
        #expect(StatusPageRenderer.relative(Self.now, now: Self.now) == "now")
        #expect(StatusPageRenderer.durationText(61_000) == "1 min 1 s")
        #expect(StatusPageRenderer.durationText(250) == "250 ms")
    }

    // MARK: - 1,000 jobs

    /// Issue 20: a page with 1,000 jobs renders in under 200 ms of server time and is under
    /// 1 MB. Rendering only (the snapshot is measured with the agent in StatusAPITests); the time
    /// bound is generous for debug builds and shared CI machines, the size bound is exact.
    @Test func aThousandJobsPageIsSmallAndQuick() {
        let rows = (0..<1000).map { i in
            StatusJobRow(
                id: "job-\(i)", description: "Job number \(i)", schedule: "*/5 * * * *", explanation: "every 5 minutes",
                timezone: "Europe/Berlin", next: Self.now + .seconds(Int64(i)), nextLocal: "2026-12-02 13:04:00",
                recent: (0..<20).map { Self.run("job-\(i)", $0, $0 % 7 == 0 ? .failure(exitCode: 1) : .success(exitCode: 0), ago: Int64(300 * $0 + 60)) })
        }
        let timeline = StatusTimeline(
            start: Self.now - .seconds(86_400), end: Self.now,
            rows: rows.map { StatusTimeline.Row(job: $0.id, runs: $0.recent) })
        let clock = ContinuousClock()
        var page: [UInt8] = []
        var svgPage: [UInt8] = []
        let jobsTime = clock.measure { page = StatusPageRenderer.jobsPage(agent: Self.agent(), rows: rows) }
        let timelineTime = clock.measure { svgPage = StatusPageRenderer.timelinePage(agent: Self.agent(), timeline: timeline) }
        let jsonTime = clock.measure { _ = StatusPages.encode(StatusJSON.jobs(rows, now: Self.now)) }
        print(
            "status page, 1,000 jobs: jobs page \(page.count) bytes in \(jobsTime); timeline \(svgPage.count) bytes in \(timelineTime); /api/v1/jobs in \(jsonTime)"
        )
        #expect(page.count < 1_000_000)
        #expect(svgPage.count < 4_000_000)
        #expect(jobsTime < .seconds(2))
    }
}
