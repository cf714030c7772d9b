import OrderedCollections
import SundialCore
import SundialRuntime
import SundialTesting
import Testing

/// `sundial status` for people (issue 17): relative times, zones, outcomes with durations,
/// paused and held markers, on fixed instants.
@Suite("Status text", .offPool)
struct StatusTextTests {
    let now = Instant(unixMillis: 1_780_000_000_000)
    func later(_ ms: Int64) -> Instant { Instant(unixMillis: now.unixMillis + ms) }

    @Test func spans() {
        #expect(StatusText.span(milliseconds: 0) == "0 ms")
        #expect(StatusText.span(milliseconds: 850) == "850 ms")
        #expect(StatusText.span(milliseconds: 12_400) == "12 s")
        #expect(StatusText.span(milliseconds: 245_000) == "4 min 5 s")
        #expect(StatusText.span(milliseconds: 240_000) == "4 min")
        #expect(StatusText.span(milliseconds: 725_000) == "12 min")
        #expect(StatusText.span(milliseconds: 7_500_000) == "2 h 5 min")
        #expect(StatusText.span(milliseconds: 7_200_000) == "2 h")
        #expect(StatusText.span(milliseconds: 3 * 86_400_000 + 4 * 3_600_000 + 59_000) == "3 d 4 h")
        #expect(StatusText.span(milliseconds: -5) == "0 ms")
    }

    @Test func relativeTimesTruncate() {
        #expect(StatusText.relative(later(4 * 60_000 + 59_000), now: now) == "in 4 min")
        #expect(StatusText.relative(later(-2 * 3_600_000 - 1000), now: now) == "2 h ago")
        #expect(StatusText.relative(later(-(2 * 3_600_000 + 30 * 60_000)), now: now) == "2 h 30 min ago")
        #expect(StatusText.relative(later(45_000), now: now) == "in 45 s")
        #expect(StatusText.relative(later(400), now: now) == "now")
        #expect(StatusText.relative(later(-999), now: now) == "now")
        #expect(StatusText.relative(later(26 * 3_600_000), now: now) == "in 1 d 2 h")
    }

    @Test func nextColumnShowsPausedHeldAndDisabled() {
        var job = StatusReport.Job(id: "backup", schedule: "30 2 * * *", next: later(4 * 60_000))
        #expect(StatusText.next(job, now: now) == "in 4 min")
        job.paused = true
        #expect(StatusText.next(job, now: now) == "paused (skips the fire in 4 min)")
        job.paused = false
        job.held = true
        job.next = nil
        #expect(StatusText.next(job, now: now) == "held (clock not synchronised)")
        job.enabled = false
        #expect(StatusText.next(job, now: now) == "disabled")
        #expect(StatusText.next(.init(id: "after", schedule: "after backup"), now: now) == "-")
    }

    @Test func lastColumnShowsOutcomeDurationAndAge() {
        let id = RunID(rawValue: "01JAAAAAAAAAAAAAAAAAAAAAAA")
        let done = RunSummary(
            id: id, job: "backup", trigger: .schedule, scheduledFor: nil, startedAt: later(-2 * 3_600_000 - 12_000),
            finishedAt: later(-2 * 3_600_000), outcome: .success(exitCode: 0), attempts: 1)
        #expect(StatusText.last(done, now: now) == "success in 12 s, 2 h ago")
        var failed = done
        failed.outcome = .failure(exitCode: 3)
        #expect(StatusText.last(failed, now: now) == "failure (exit 3) in 12 s, 2 h ago")
        let running = RunSummary(id: id, job: "backup", trigger: .manual, scheduledFor: nil, startedAt: later(-3 * 60_000 - 10_000))
        #expect(StatusText.last(running, now: now) == "running for 3 min")
        #expect(StatusText.last(nil, now: now) == "-")
    }

    @Test func zoneColumn() {
        #expect(StatusText.zone(.init(id: "a", schedule: "30 2 * * *", zone: "Europe/Paris")) == "Europe/Paris")
        #expect(StatusText.zone(.init(id: "a", schedule: "30 2 * * *")) == "local")
        #expect(StatusText.zone(.init(id: "a", schedule: "every 30s")) == "-")
        #expect(StatusText.zone(.init(id: "a", schedule: "after backup")) == "-")
    }

    @Test func statusJSONCarriesPausedZoneAndNowAndReadsOlderReplies() throws {
        let report = StatusReport(
            version: "0.1.0", pid: 1, revision: "r", startedAt: now,
            jobs: [.init(id: "a", schedule: "30 2 * * *", paused: true, zone: "UTC")], active: [], now: later(5))
        let back = try StatusReport(json: report.json)
        #expect(back == report)
        // An older agent's reply has none of the new fields.
        var old = report.json
        guard case var .object(o) = old, case var .array(jobs) = o["jobs"], case var .object(j) = jobs[0] else {
            Issue.record("unexpected shape")
            return
        }
        j["paused"] = nil
        j["zone"] = nil
        jobs[0] = .object(j)
        o["jobs"] = .array(jobs)
        o["now"] = nil
        old = .object(o)
        let decoded = try StatusReport(json: old)
        #expect(decoded.jobs[0].paused == false && decoded.jobs[0].zone == nil && decoded.now == nil)
    }

    /// `status`, `history`, `why` and `trigger --wait` print a launch failure's reason, which may
    /// quote a job file's text (a command path written with `\e` in YAML).
    @Test func aLaunchFailuresReasonIsShownEscaped() {
        let text = StatusText.outcomeText(.launchFailed(reason: "cannot run /opt/\u{1B}]0;PWNED\u{07}x: not found"))
        #expect(text == "launch failed: cannot run /opt/\\x1b]0;PWNED\\x07x: not found")
    }
}
