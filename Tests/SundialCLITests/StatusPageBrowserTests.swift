import Foundation
import Glibc
import SundialCore
import SundialTesting
import Testing

/// The status pages in a real browser: the built agent with a few jobs (one failing, one
/// running long, one with hostile text), Debian's headless `chromium` loading the pages, and
/// checks on the DOM it rendered, plus screenshots.
///
/// Without chromium the suite is skipped with a message, unless `CI` is set: CI installs it
/// (`.ci/run`), so there a missing browser is a failure. `SUNDIAL_UPDATE_SCREENSHOTS=1` copies
/// the screenshots to docs/images/ (the README shows them).
@Suite(.serialized, .timeLimit(.minutes(3)), .offPool)
struct StatusPageBrowserTests {
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static let inCI = ProcessInfo.processInfo.environment["CI"].map { !$0.isEmpty } ?? false

    /// Runs when chromium is there, or in CI (where its absence fails the test).
    static let browserAvailable = chromium != nil || inCI

    static let jobs = """
        version: 1
        jobs:
          backup-db:
            description: "Nightly dump of the orders database <script>document.title='pwned'</script>"
            schedule: "30 2 * * *"
            timezone: Europe/Berlin
            command: ["/bin/true"]
          flaky-report:
            description: Fails every time, on purpose
            every: 2s
            command: ["/bin/sh", "-c", "echo '<b>boom</b>'; exit 3"]
          heartbeat:
            every: 2s
            command: ["/bin/true"]
          long-import:
            schedule: "@reboot"
            command: ["/bin/sleep", "600"]
          rotate-logs:
            schedule: "0 * * * *"
            timezone: UTC
            command: ["/usr/sbin/logrotate", "/etc/logrotate.conf"]

        """

    /// `chromium --headless ARGS URL`, bounded; its stdout.
    static func browse(_ url: String, _ args: [String], profile: URL) async throws -> CLI.Result {
        guard let chromium else { throw Missing() }
        return try await CLI.runTool(
            chromium,
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--user-data-dir=\(profile.path)", "--hide-scrollbars",
            ] + args + [url],
            timeout: 60, env: ["HOME": profile.path])
    }

    struct Missing: Error, CustomStringConvertible {
        var description: String {
            "chromium is not installed (apt-get install chromium); CI is set, so the browser tests cannot be skipped"
        }
    }

    @Test(
        "the pages render in headless chromium",
        .enabled(
            if: browserAvailable,
            "skipped: chromium is not installed (apt-get install chromium); with CI set this test fails instead"))
    func pagesInChromium() async throws {
        guard Self.chromium != nil else { throw Missing() }
        let root = try CLI.tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let conf = root.appendingPathComponent("jobs.yaml").path
        try JobFiles.writeInPlace(Self.jobs, to: conf)
        let port = try IdleFootprintTests.freeLoopbackPort()
        let agent = try await AgentProcess(root: root, config: [conf], extraArgs: ["--metrics-listen", "127.0.0.1:\(port)"], lifetime: 150)
        defer { agent.kill() }
        // Two failures and two successes, and the long run started.
        try await agent.waitUntil("two finished runs of each 2 s job", timeout: 30) { events in
            let finished = events.filter { $0.name == "run.finished" }
            return finished.filter { $0["job"]?.stringValue == "flaky-report" }.count >= 2
                && finished.filter { $0["job"]?.stringValue == "heartbeat" }.count >= 2
        }
        let paused = try await CLI.run(["pause", "rotate-logs", "--state", root.appendingPathComponent("state").path])
        #expect(paused.status == 0, "pause: \(paused.stderr)")
        let base = "http://127.0.0.1:\(port)"
        let profile = root.appendingPathComponent("chromium")

        // Jobs page: one row per job, outcome classes, markers, no script from the description.
        let jobs = try await Self.browse(base + "/", ["--dump-dom"], profile: profile)
        #expect(jobs.status == 0, "chromium: \(jobs.stderr.suffix(2000))")
        let dom = jobs.stdout
        for id in ["backup-db", "flaky-report", "heartbeat", "long-import", "rotate-logs"] {
            #expect(dom.contains("<tr class=\"job\" data-job=\"\(id)\""), "no row for \(id)")
        }
        #expect(dom.contains("data-job=\"flaky-report\" data-outcome=\"failure\""))
        #expect(dom.contains("data-job=\"heartbeat\" data-outcome=\"success\""))
        #expect(dom.contains("<span class=\"outcome o-failure\">failure</span>"))
        #expect(dom.contains("b-running"), "the long run is not marked running")
        #expect(dom.contains("<span class=\"badge b-paused\">paused</span>"), "the paused job is not marked paused")
        #expect(dom.contains("&lt;script&gt;document.title='pwned'&lt;/script&gt;"), "the description is not shown as text")
        #expect(!dom.contains("<script"), "a script element made it into the DOM")
        #expect(dom.contains("<title>Sundial — jobs</title>"), "the title changed: a script ran")
        #expect(dom.contains("class=\"spark\"") && dom.contains("<i class=\"o-failure\"></i>"), "no sparkline")

        // One job: definition with its source position, runs.
        let job = try await Self.browse(base + "/jobs/flaky-report", ["--dump-dom"], profile: profile)
        #expect(job.stdout.contains(conf + ":"), "no source position")
        #expect(job.stdout.contains("o-row-failure"))
        #expect(job.stdout.contains("echo '&lt;b&gt;boom&lt;/b&gt;'; exit 3"))
        // Each run's stored output, escaped.
        #expect(job.stdout.contains("<tr class=\"output\"><td colspan=\"7\"><pre>&lt;b&gt;boom&lt;/b&gt;\n"), "no stored output on the job page")

        // Timeline: one row per job, bars coloured by outcome.
        let timeline = try await Self.browse(base + "/timeline", ["--dump-dom"], profile: profile)
        let svg = timeline.stdout
        #expect(svg.components(separatedBy: "<g class=\"row\"").count - 1 == 5)
        #expect(svg.contains("class=\"bar o-failure\""))
        #expect(svg.contains("class=\"bar o-success\""))
        #expect(svg.contains("class=\"bar o-running\""))

        // Screenshots.
        for (page, name, height) in [("/", "status-jobs.png", 700), ("/timeline", "status-timeline.png", 420)] {
            let shot = root.appendingPathComponent(name)
            let r = try await Self.browse(base + page, ["--screenshot=\(shot.path)", "--window-size=1280,\(height)"], profile: profile)
            #expect(r.status == 0, "chromium: \(r.stderr.suffix(2000))")
            let png = try Data(contentsOf: shot)
            #expect(png.count > 5000 && png.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), "\(name) is not a PNG")
            if ProcessInfo.processInfo.environment["SUNDIAL_UPDATE_SCREENSHOTS"] == "1" {
                let target = CLI.packageRoot.appendingPathComponent("docs/images/\(name)")
                try? FileManager.default.removeItem(at: target)
                try FileManager.default.copyItem(at: shot, to: target)
            }
        }
        _ = await agent.stop()
    }

    /// Issue 20: the page costs an idle agent nothing. After pages and API answers are served,
    /// the agent has the same threads as before (no render thread left) and sleeps again.
    @Test("after serving the status pages the agent sleeps again")
    func idleAfterPages() async throws {
        let port = try IdleFootprintTests.freeLoopbackPort()
        let (before, after) = try await IdleFootprintTests.idleWakeUps(
            environment: [:], extraArgs: ["--metrics-listen", "127.0.0.1:\(port)"], window: .seconds(3),
            warmUp: { _ in
                for path in ["/", "/timeline", "/api/v1/agent", "/api/v1/jobs"] {
                    let answer = try IdleFootprintTests.scrape(port: port, request: "GET \(path) HTTP/1.1\r\n\r\n")
                    #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(path): \(answer.prefix(200))")
                }
                let missing = try IdleFootprintTests.scrape(port: port, request: "GET /jobs/no-such-job HTTP/1.1\r\n\r\n")
                #expect(missing.hasPrefix("HTTP/1.1 404 "))
                let post = try IdleFootprintTests.scrape(port: port, request: "POST /api/v1/jobs HTTP/1.1\r\n\r\n")
                #expect(post.hasPrefix("HTTP/1.1 405 "), "read-only")
            })
        #expect(after.names == before.names, "threads came or went while idle: \(before.names) → \(after.names)")
        #expect(after.names.allSatisfy { $0.hasPrefix("sundial") }, "threads not started by Sundial: \(after.names)")
        #expect(after.wakeUps - before.wakeUps <= 1, "\(after.wakeUps - before.wakeUps) wake-ups in 3 s while idle")
    }
}
