import Foundation
import OrderedCollections
import SundialCore
import SundialTesting
import Testing

/// The event log is a user interface (users parse it; docs/reference.md describes it): every
/// case of ``LogRecord`` renders byte for byte as the old bag-of-fields code did
/// (Fixtures/log-records.jsonl, written from the old implementation by
/// LogRecordOldCodeGoldenTests in its first version).
@Suite(.offPool) struct LogRecordGoldenTests {
    static let t = Instant(unixMillis: 1_767_225_600_123)
    static let due = Instant(unixMillis: 1_767_225_600_000)

    /// One record of every case, in the golden file's order (some cases twice, for their
    /// optional fields).
    static let samples: [LogRecord] = {
        let t = Self.t
        let due = Self.due
        let delivery = LogRecord.NotifyDelivery(
            job: "backup", on: .failure, entry: 1, target: "webhook hooks.example.com:443",
            runID: RunID(rawValue: "r-2"), attempts: 1, at: t)
        var failed = LogRecord.RunFinished(
            job: "backup", runID: RunID(rawValue: "r-2"), attempt: 1, outcome: .failure(exitCode: 3),
            exitCode: 3, signal: nil, durationMs: 20, at: t)
        failed.outputDroppedBytes = 10
        failed.outputTruncatedLines = 2
        return [
            .agentStarted(.init(version: "1.2.3", pid: 4242, config: ["/etc/sundial/jobs.yaml", "/etc/sundial/jobs.d"], state: "/var/lib/sundial", at: t)),
            .agentStopping(.init(version: "1.2.3", pid: 4242, cause: .signal("SIGTERM"), activeRuns: 2, at: t)),
            .agentStopping(.init(version: "1.2.3", pid: 4242, cause: .fatal, activeRuns: 0, at: t)),
            .agentStopped(.init(version: "1.2.3", pid: 4242, exitCode: 0, at: t)),
            .agentFatal(.init(version: "1.2.3", pid: 4242, reason: "the state directory was removed", state: "/var/lib/sundial", at: t)),
            .configLoaded(.init(revision: "abc123", files: 2, jobs: 3, added: ["a", "b"], removed: [], changed: [], reason: nil, at: t)),
            .configLoaded(.init(revision: "def456", files: 1, jobs: 2, added: [], removed: ["old"], changed: ["b"], reason: "SIGHUP", at: t)),
            .configRejected(
                .init(
                    reason: "file changed", errors: [.init(file: "jobs.yaml", line: 3, column: 5, message: "unknown key \"shedule\"")],
                    runningRevision: "abc123", at: t)),
            .configUnchanged(reason: "SIGHUP", revision: "abc123", at: t),
            .configReloadAbandoned(reason: "sundial reload", runningMs: 95000, runningRevision: "abc123", at: t),
            .configWatchPolling(reason: "inotify: too many watches", at: t),
            .configWatchFailed(reason: "cannot watch /etc/sundial", at: t),
            .runStarted(.init(job: "backup", runID: RunID(rawValue: "r-1"), attempt: 1, scheduledFor: due, trigger: .schedule, pid: 321, at: t)),
            .runStarted(.init(job: "backup", runID: RunID(rawValue: "r-1"), attempt: 2, scheduledFor: due, trigger: .retry, pid: nil, at: t)),
            .runOutput(.init(job: "backup", runID: RunID(rawValue: "r-1"), attempt: 1, stream: .stdout, line: "copied 3 files", truncated: false, at: t)),
            .runOutput(
                .init(
                    job: "backup", runID: RunID(rawValue: "r-1"), attempt: 1, stream: .stderr, line: "caf\u{e9}\t\"x\"\u{1}",
                    truncated: true, at: t)),
            .runFinished(
                .init(
                    job: "backup", runID: RunID(rawValue: "r-1"), attempt: 1, outcome: .success(exitCode: 0), exitCode: 0,
                    signal: nil, durationMs: 1500, at: t)),
            .runFinished(failed),
            .runFinished(
                .init(
                    job: "backup", runID: RunID(rawValue: "r-3"), attempt: 1, outcome: .launchFailed(reason: "no such file"),
                    exitCode: nil, signal: nil, durationMs: 0, at: t)),
            .runFinished(
                .init(
                    job: "backup", runID: RunID(rawValue: "r-4"), attempt: 2, outcome: .interrupted, exitCode: nil, signal: nil,
                    durationMs: nil, adopted: true, at: t)),
            .runFinished(
                .init(
                    job: "backup", runID: RunID(rawValue: "r-5"), attempt: 1, outcome: .timeout, exitCode: nil, signal: 9,
                    durationMs: 60000, at: t)),
            .runRetryScheduled(.init(job: "backup", runID: RunID(rawValue: "r-2"), attempt: 2, delayMs: 30000, at: t)),
            .runSkipped(.init(job: "backup", scheduledFor: due, reason: .overlap, count: nil, at: t)),
            .runSkipped(.init(job: "backup", scheduledFor: due, reason: .missed, count: 5, at: t)),
            .runAdopted(
                .init(
                    job: "backup", runID: RunID(rawValue: "r-6"), attempt: 1, scheduledFor: due, trigger: .schedule, pid: 555,
                    policy: .adopt, at: t)),
            .runAdopted(
                .init(
                    job: "backup", runID: RunID(rawValue: "r-7"), attempt: 1, scheduledFor: due, trigger: .schedule, pid: 555,
                    policy: .kill, at: t)),
            .jobPaused(job: "backup", at: t),
            .jobResumed(job: "backup", at: t),
            .clockStepped(from: Instant(unixMillis: t.unixMillis + 3_600_000), to: t, deltaMs: -3_600_000, at: t),
            .clockUnsynced(detail: ["wall_clock": .string(due.description)], at: t),
            .clockSynced(detail: ["held_ms": .int(1200)], at: t),
            .stateError(message: "cannot record state: disk I/O error", at: t),
            .stateReset(reason: "the state database was removed", state: "/var/lib/sundial", at: t),
            .stateWatchFailed(reason: "inotify_init1: EMFILE", at: t),
            .limitsUnenforced(job: "backup", reason: "no cgroup v2", at: t),
            .logDropped(lines: 17, at: t),
            .logReopenFailed(message: "permission denied", at: t),
            .metricsError(message: "cannot write /run/sundial.prom", at: t),
            .metricsListening(address: "127.0.0.1:9464", at: t),
            .notifySent(delivery, detail: "HTTP 204"),
            .notifyRetrying(delivery, reason: "HTTP 503", delayMs: 2000),
            .notifyFailed(
                .init(job: "backup", on: .missed, entry: 1, target: "webhook hooks.example.com:443", runID: nil, attempts: 3, at: t),
                reason: "connection refused"),
            .notifyAbandoned(count: 2, message: "kept in state.db; delivered after the restart", at: t),
            .notifyQueueError(message: "cannot record a delivery", at: t),
            // `lock: fleet` (docs/fleet.md): the token on run.started, the holder on run.skipped.
            .runStarted(
                .init(
                    job: "report", runID: RunID(rawValue: "r-9"), attempt: 1, scheduledFor: due, trigger: .schedule, pid: 42,
                    at: t, fleet: .init(token: 17, rerunOf: 12))),
            .runStarted(
                .init(
                    job: "report", runID: RunID(rawValue: "r-10"), attempt: 1, scheduledFor: due, trigger: .schedule, pid: 43,
                    at: t, fleet: .init(token: nil))),
            {
                var r = LogRecord.RunSkipped(job: "report", scheduledFor: due, reason: .fleetClaimed, count: nil, at: t)
                r.detail = ["fleet_token": .int(18), "box": .string("box-b")]
                return .runSkipped(r)
            }(),
            .fleet(
                .init(
                    .leaseLost, at: t, level: .warn,
                    [
                        "job": .string("report"), "run_id": .string("r-9"), "scheduled_for": .string(due.description),
                        "fleet_token": .int(17), "by_box": .string("box-b"), "by_token": .int(19), "reason": .string("taken over or marked lost"),
                    ])),
        ]
    }()

    static var goldenPath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/log-records.jsonl").path
    }

    @Test func everyRecordRendersAsTheGoldenLine() throws {
        let golden = try String(contentsOfFile: Self.goldenPath, encoding: .utf8).split(separator: "\n").map(String.init)
        let rendered = Self.samples.map { String(decoding: $0.jsonLine().dropLast(), as: UTF8.self) }
        #expect(rendered.count == golden.count)
        for (r, g) in zip(rendered, golden) { #expect(r == g) }
    }

    /// Every case has a sample: the switch has no `default`, so a new case fails to compile
    /// here until it gets one (and a golden line).
    @Test func everyCaseHasASample() {
        func tag(_ r: LogRecord) -> Int {
            switch r {
            case .agentStarted: 0
            case .agentStopping: 1
            case .agentStopped: 2
            case .agentFatal: 3
            case .configLoaded: 4
            case .configRejected: 5
            case .configUnchanged: 6
            case .configReloadAbandoned: 7
            case .configWatchPolling: 8
            case .configWatchFailed: 9
            case .runStarted: 10
            case .runOutput: 11
            case .runFinished: 12
            case .runRetryScheduled: 13
            case .runSkipped: 14
            case .runAdopted: 15
            case .jobPaused: 16
            case .jobResumed: 17
            case .clockStepped: 18
            case .clockUnsynced: 19
            case .clockSynced: 20
            case .stateError: 21
            case .stateReset: 22
            case .stateWatchFailed: 23
            case .limitsUnenforced: 24
            case .logDropped: 25
            case .logReopenFailed: 26
            case .metricsError: 27
            case .notifySent: 28
            case .notifyRetrying: 29
            case .notifyFailed: 30
            case .notifyAbandoned: 31
            case .notifyQueueError: 32
            case .fleet: 33
            case .metricsListening: 34
            }
        }
        #expect(Set(Self.samples.map(tag)) == Set(0...34))
    }
}
