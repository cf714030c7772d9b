import SundialCore
import SundialRuntime
import SundialTesting
import Testing

/// `why` for a job started only by its needs: each run and skip paired with the upstream run
/// whose end caused it (the scheduler decides in the same step, at the same instant).
@Suite("Why for needs-only jobs", .offPool)
struct NeedsExplanationTests {
    let t = Instant(unixMillis: 1_780_000_000_000)
    func at(_ s: Int64) -> Instant { t + .seconds(s) }
    func run(
        _ id: String, _ job: JobID, trigger: RunTrigger = .schedule, scheduled: Instant? = nil, start: Int64, end: Int64?,
        _ outcome: RunOutcome? = .success(exitCode: 0)
    ) -> RunSummary {
        RunSummary(
            id: RunID(rawValue: id), job: job, trigger: trigger, scheduledFor: scheduled, startedAt: at(start),
            finishedAt: end.map(at), outcome: end == nil ? nil : outcome, attempts: 1)
    }

    @Test func runsAndSkipsArePairedWithTheUpstreamRunThatEndedThen() throws {
        let upstream = [
            run("b1", "backup", start: 0, end: 10),
            run("b2", "backup", start: 100, end: 110, .failure(exitCode: 2)),
            run("b3", "backup", start: 200, end: 210),
            // Another job upstream ended in the same millisecond as b3: the direct need wins.
            run("x3", "extract", start: 205, end: 210),
        ]
        let mine = [
            run("v1", "verify", trigger: .needs, scheduled: at(10), start: 10, end: 12),
            run("v3", "verify", trigger: .needs, scheduled: at(210), start: 211, end: nil),
            run("m1", "verify", trigger: .manual, scheduled: at(50), start: 50, end: 51),
        ]
        let ledger = [LedgerEntry(job: "verify", scheduledFor: at(110), disposition: .skipped(.upstream), at: at(110))]
        let got = NeedsExplanation.explain(runs: mine, ledger: ledger, upstream: upstream, direct: ["backup"], since: at(-1))
        #expect(got.map(\.at) == [at(10), at(110), at(210)])
        #expect(got[0].what == .ran(RunID(rawValue: "v1"), .success(exitCode: 0)) && got[0].upstream?.id.rawValue == "b1")
        #expect(got[1].what == .skipped(.upstream) && got[1].upstream?.id.rawValue == "b2")
        #expect(got[2].what == .ran(RunID(rawValue: "v3"), nil) && got[2].upstream?.id.rawValue == "b3")
        // Round trip through the wire form.
        for e in got { #expect(try NeedsExplanation(json: e.json) == e) }
        let report = WhyReport(job: "verify", since: at(-1), entries: ledger, next: nil, after: [Need(job: "backup")], upstream: got)
        #expect(try WhyReport(json: report.json) == report)
    }

    @Test func olderEntriesAndUnmatchedOnesAreHandled() {
        let mine = [
            run("v0", "verify", trigger: .needs, scheduled: at(-100), start: -100, end: -99),
            run("v1", "verify", trigger: .needs, scheduled: at(10), start: 10, end: 11),
        ]
        let got = NeedsExplanation.explain(runs: mine, ledger: [], upstream: [], direct: ["backup"], since: at(0))
        #expect(got.count == 1)
        #expect(got.first?.upstream == nil)
    }
}
