import SundialCore
import SundialTesting
import Testing

@testable import SundialRuntime

/// The `logs` control request and its reply (`sundial logs JOB [--run ID]`): the wire form, which
/// run is picked, and the bound on the reply's text.
@Suite("Logs report", .offPool)
struct LogsReportTests {
    static func run(_ id: String, finished: Bool = true, attempts: Int = 1) -> RunSummary {
        RunSummary(
            id: RunID(rawValue: id), job: "backup", trigger: .manual, scheduledFor: nil, startedAt: Instant(unixMillis: 1_000),
            finishedAt: finished ? Instant(unixMillis: 2_000) : nil, outcome: finished ? .success(exitCode: 0) : nil,
            attempts: attempts)
    }

    @Test func requestRoundTripsAndRejectsBadRunIDs() throws {
        for r in [ControlRequest.logs(job: "backup", run: nil), .logs(job: "backup", run: RunID(rawValue: "01ABC"))] {
            #expect(try ControlRequest(line: r.line) == r)
        }
        #expect(ControlRequest.logs(job: "b", run: nil).json.jsonText == #"{"v":1,"op":"logs","job":"b"}"#)
        for bad in [
            #"{"v":1,"op":"logs","job":"b","run":""}"#, #"{"v":1,"op":"logs","job":"b","run":5}"#,
            #"{"v":1,"op":"logs","job":"b","run":"\#(String(repeating: "x", count: 129))"}"#, #"{"v":1,"op":"logs"}"#,
        ] {
            #expect(throws: ControlProtocolError.self, "\(bad)") { try ControlRequest(line: Array(bad.utf8)) }
        }
    }

    @Test func picksTheNewestRunOrTheNamedOneOfThisJobOnly() throws {
        let runs = [Self.run("new", finished: false, attempts: 2), Self.run("old")]
        let outputs: [RunID: [RunOutputRecord]] = [
            RunID(rawValue: "new"): [RunOutputRecord(runID: RunID(rawValue: "new"), attempt: 1, text: "a\n")],
            RunID(rawValue: "old"): [RunOutputRecord(runID: RunID(rawValue: "old"), attempt: 1, text: "b\n", droppedBytes: 7)],
        ]
        func look(_ run: String?) throws -> LogsReport.Lookup {
            try LogsReport.lookup(
                job: "backup", run: run.map(RunID.init(rawValue:)), history: { _, limit in Array(runs.prefix(limit)) },
                output: { outputs[$0] ?? [] })
        }
        guard case let .found(newest) = try look(nil) else {
            Issue.record("no report")
            return
        }
        #expect(newest.run?.id.rawValue == "new" && newest.attempts.map(\.text) == ["a\n"])
        guard case let .found(old) = try look("old") else {
            Issue.record("no report")
            return
        }
        #expect(old.attempts.first?.droppedBytes == 7)
        #expect(try look("another-jobs-run") == .noSuchRun)
        let none = try LogsReport.lookup(job: "backup", run: nil, history: { _, _ in [] }, output: { _ in [] })
        #expect(none == .found(LogsReport(job: "backup", run: nil, attempts: [])))

        // Through JSON and back, as the CLI reads it.
        #expect(try LogsReport(json: old.json) == old)
    }

    @Test func theReplyKeepsTheNewestBytesInWholeLines() {
        let id = RunID(rawValue: "r")
        let records = [
            RunOutputRecord(runID: id, attempt: 1, text: "one\ntwo\n", droppedBytes: 3),
            RunOutputRecord(runID: id, attempt: 2, text: "three\nfour\n"),
        ]
        #expect(LogsReport.bounded(records, maxBytes: 100) == records)
        // 11 bytes for attempt 2, 4 left: "two\n" fits, "one\n" does not.
        let cut = LogsReport.bounded(records, maxBytes: 15)
        #expect(cut[1] == records[1])
        #expect(cut[0].text == "two\n" && cut[0].droppedBytes == 3 + 4)
        // Less than a line left: nothing of attempt 1, and attempt 2 from a line start.
        let tight = LogsReport.bounded(records, maxBytes: 7)
        #expect(tight[0].text == "" && tight[0].droppedBytes == 3 + 8)
        #expect(tight[1].text == "four\n" && tight[1].droppedBytes == 6)
        let total = tight.reduce(0) { $0 + $1.text.utf8.count }
        #expect(total <= 7)
    }
}
