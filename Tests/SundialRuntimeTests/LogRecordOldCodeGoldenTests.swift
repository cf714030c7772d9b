import Foundation
import OrderedCollections
@testable import SundialCore
@testable import SundialRuntime
import Testing

/// Renders one line of every event of the log contract with the bag-of-fields code that wrote
/// them before ``LogRecord`` (the scheduler's builders, `Event.runOutput`, and the field
/// literals of the runtime's call sites, copied as they were), so the golden file
/// Tests/SundialCoreTests/Fixtures/log-records.jsonl comes from the old implementation.
/// `SUNDIAL_WRITE_GOLDEN=1` (re)writes it.
@Suite struct LogRecordOldCodeGoldenTests {
    static let t0 = Instant(unixMillis: 1_767_225_600_123)
    static var goldenPath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("SundialCoreTests/Fixtures/log-records.jsonl").path
    }

    static func oldLines() -> [Event] {
        let t = t0
        let due = Instant(unixMillis: 1_767_225_600_000)
        func e(_ name: String, _ level: LogLevel, _ f: OrderedDictionary<String, JSONValue>) -> Event { Event(name, at: t, level: level, f) }
        func decorated(_ base: Event, _ c: RunCompletion) -> Event {
            var e = base
            if c.droppedBytes > 0 { e["output_dropped_bytes"] = .int(Int64(c.droppedBytes)) }
            if c.truncatedLines > 0 { e["output_truncated_lines"] = .int(Int64(c.truncatedLines)) }
            if case let .launchFailed(reason) = c.outcome, e["reason"] == nil { e["reason"] = .string(reason) }
            if e["exit_code"] == .null, let code = c.exitCode { e["exit_code"] = .int(Int64(code)) }
            if e["signal"] == .null, let signal = c.signal { e["signal"] = .int(Int64(signal)) }
            return e
        }
        func notify(_ on: String, run: String?, attempts: Int, _ extra: OrderedDictionary<String, JSONValue>) -> OrderedDictionary<String, JSONValue> {
            var f: OrderedDictionary<String, JSONValue> = ["job": .string("backup"), "on": .string(on), "entry": .string("notify[1]")]
            f["target"] = .string("webhook hooks.example.com:443")
            if let run { f["run_id"] = .string(run) }
            f["attempts"] = .int(Int64(attempts))
            for (k, v) in extra { f[k] = v }
            return f
        }
        var failed = RunCompletion(runID: RunID(rawValue: "r-2"), pid: 77, outcome: .failure(exitCode: 3))
        failed.droppedBytes = 10
        failed.truncatedLines = 2
        var timedOut = RunCompletion(runID: RunID(rawValue: "r-5"), pid: 78, outcome: .timeout)
        timedOut.signal = 9
        let started: (String, String, Int, String, Int32?) -> Event = { job, run, attempt, trigger, pid in
            Event("run.started", at: t, level: .info, OrderedDictionary(
                uncheckedUniqueKeys: ["job", "run_id", "attempt", "scheduled_for", "trigger", "pid"],
                values: [.string(job), .string(run), .int(Int64(attempt)), .string(due.description), .string(trigger),
                         pid.map { .int(Int64($0)) } ?? .null]))
        }
        let adopted: (String, AgentRestartPolicy) -> Event = { run, policy in
            Event("run.adopted", at: t, level: policy == .adopt ? .info : .warn, OrderedDictionary(
                uncheckedUniqueKeys: ["job", "run_id", "attempt", "scheduled_for", "trigger", "pid", "on_agent_restart"],
                values: [.string("backup"), .string(run), .int(1), .string(due.description), .string("schedule"), .int(555),
                         .string(policy.rawValue)]))
        }
        return [
            e("agent.started", .info, ["version": "1.2.3", "pid": .int(4242), "config": .array(["/etc/sundial/jobs.yaml", "/etc/sundial/jobs.d"]),
                                       "state": "/var/lib/sundial"]),
            e("agent.stopping", .info, ["version": "1.2.3", "pid": .int(4242), "signal": "SIGTERM", "active_runs": .int(2)]),
            e("agent.stopping", .info, ["version": "1.2.3", "pid": .int(4242), "reason": "fatal", "active_runs": .int(0)]),
            e("agent.stopped", .info, ["version": "1.2.3", "pid": .int(4242), "exit_code": .int(0)]),
            e("agent.fatal", .error, ["version": "1.2.3", "pid": .int(4242), "reason": "the state directory was removed", "state": "/var/lib/sundial"]),
            e("config.loaded", .info, ["revision": "abc123", "files": .int(2), "jobs": .int(3), "added": ["a", "b"], "removed": [], "changed": []]),
            e("config.loaded", .info, ["revision": "def456", "files": .int(1), "jobs": .int(2), "added": [], "removed": ["old"], "changed": ["b"],
                                       "reason": "SIGHUP"]),
            e("config.rejected", .error, ["reason": "file changed", "errors": .array([[
                "file": "jobs.yaml", "line": .int(3), "column": .int(5), "message": "unknown key \"shedule\"",
            ]]), "running_revision": "abc123"]),
            e("config.unchanged", .info, ["reason": "SIGHUP", "revision": "abc123"]),
            e("config.reload_abandoned", .error, ["reason": "sundial reload", "running_ms": .int(95000), "running_revision": "abc123"]),
            e("config.watch_polling", .warn, ["reason": "inotify: too many watches"]),
            e("config.watch_failed", .warn, ["reason": "cannot watch /etc/sundial"]),
            started("backup", "r-1", 1, "schedule", 321),
            started("backup", "r-1", 2, "retry", nil),
            Event.runOutput(OutputLine(runID: RunID(rawValue: "r-1"), stream: .stdout, text: "copied 3 files"), job: "backup", attempt: 1, at: t),
            Event.runOutput(OutputLine(runID: RunID(rawValue: "r-1"), stream: .stderr, text: "caf\u{e9}\t\"x\"\u{1}", truncated: true),
                            job: "backup", attempt: 1, at: t),
            Scheduler.runFinishedEvent(job: "backup", runID: RunID(rawValue: "r-1"), attempt: 1, outcome: .success(exitCode: 0), durationMs: 1500, at: t),
            decorated(Scheduler.runFinishedEvent(job: "backup", runID: RunID(rawValue: "r-2"), attempt: 1, outcome: .failure(exitCode: 3),
                                                 durationMs: 20, at: t), failed),
            Scheduler.runFinishedEvent(job: "backup", runID: RunID(rawValue: "r-3"), attempt: 1, outcome: .launchFailed(reason: "no such file"),
                                       durationMs: 0, at: t),
            Scheduler.runFinishedEvent(job: "backup", runID: RunID(rawValue: "r-4"), attempt: 2, outcome: .interrupted, durationMs: nil,
                                       adopted: true, at: t),
            decorated(Scheduler.runFinishedEvent(job: "backup", runID: RunID(rawValue: "r-5"), attempt: 1, outcome: .timeout,
                                                 durationMs: 60000, at: t), timedOut),
            Scheduler.retryScheduledEvent(job: "backup", runID: RunID(rawValue: "r-2"), attempt: 2, delayMs: 30000, at: t),
            Scheduler.runSkippedEvent(job: "backup", scheduledFor: due, reason: .overlap, count: nil, at: t),
            Scheduler.runSkippedEvent(job: "backup", scheduledFor: due, reason: .missed, count: 5, at: t),
            adopted("r-6", .adopt),
            adopted("r-7", .kill),
            e("job.paused", .info, OrderedDictionary(uncheckedUniqueKeys: ["job"], values: [.string("backup")])),
            e("job.resumed", .info, OrderedDictionary(uncheckedUniqueKeys: ["job"], values: [.string("backup")])),
            e("clock.stepped", .warn, ["from": .string(Instant(unixMillis: t.unixMillis + 3_600_000).description), "to": .string(t.description),
                                       "delta_ms": .int(-3_600_000)]),
            e("clock.unsynced", .warn, ["wall_clock": .string(due.description)]),
            e("clock.synced", .info, ["held_ms": .int(1200)]),
            e("state.error", .error, ["message": "cannot record state: disk I/O error"]),
            e("state.reset", .warn, ["reason": "the state database was removed", "state": "/var/lib/sundial"]),
            e("state.watch_failed", .warn, ["reason": "inotify_init1: EMFILE"]),
            e("limits.unenforced", .warn, ["job": "backup", "reason": "no cgroup v2"]),
            e("log.dropped", .warn, ["lines": .int(17)]),
            e("log.reopen_failed", .error, ["message": "permission denied"]),
            e("metrics.error", .warn, ["message": "cannot write /run/sundial.prom"]),
            e("notify.sent", .info, notify("failure", run: "r-2", attempts: 1, ["detail": "HTTP 204"])),
            e("notify.retrying", .info, notify("failure", run: "r-2", attempts: 1, ["reason": "HTTP 503", "delay_ms": .int(2000)])),
            e("notify.failed", .warn, notify("missed", run: nil, attempts: 3, ["reason": "connection refused"])),
            e("notify.abandoned", .warn, ["count": .int(2), "message": "kept in state.db; delivered after the restart"]),
            e("notify.queue_error", .warn, ["message": "cannot record a delivery"]),
        ]
    }

    @Test func goldenLinesComeFromTheOldCode() throws {
        let text = Self.oldLines().map { String(decoding: $0.jsonLine(), as: UTF8.self) }.joined()
        if ProcessInfo.processInfo.environment["SUNDIAL_WRITE_GOLDEN"] == "1" {
            try text.write(toFile: Self.goldenPath, atomically: true, encoding: .utf8)
        }
        #expect(try String(contentsOfFile: Self.goldenPath, encoding: .utf8) == text)
    }
}
