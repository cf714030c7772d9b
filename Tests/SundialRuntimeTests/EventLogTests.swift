import CSundialShim
import Foundation
import OrderedCollections
import SundialCore
import SundialTesting
import Synchronization
import Testing

@testable import SundialRuntime

@Suite(.offPool) struct EventLogTests {
    let t0 = Instant(unixMillis: 1_767_225_600_123)

    @Test func linesHaveTheStableShape() throws {
        let sink = MemoryEventSink()
        let log = EventLog(sink: sink, clock: VirtualClock(wall: t0))
        log.log(Event("run.started", at: t0, ["job": "a", "attempt": 1]))
        #expect(sink.lines == [#"{"ts":"2026-01-01T00:00:00.123Z","level":"info","event":"run.started","job":"a","attempt":1}"# + "\n"])
    }

    @Test func runEventsHaveTheDesignFields() {
        let id = RunID(rawValue: "01RUN")
        let started = LogRecord.runStarted(.init(job: "a", runID: id, attempt: 1, scheduledFor: t0, trigger: .schedule, pid: 42, at: t0))
        #expect(
            String(decoding: started.jsonLine(), as: UTF8.self)
                == #"{"ts":"2026-01-01T00:00:00.123Z","level":"info","event":"run.started","job":"a","run_id":"01RUN","attempt":1,"scheduled_for":"2026-01-01T00:00:00.123Z","trigger":"schedule","pid":42}"#
                + "\n")
        let output = LogRecord.runOutput(OutputLine(runID: id, stream: .stderr, text: "x", truncated: true), job: "a", attempt: 2, at: t0).event
        #expect(output.fields.keys.elementsEqual(["job", "run_id", "attempt", "stream", "line", "truncated"]))
        let done = LogRecord.runFinished(
            RunCompletion(runID: id, pid: 42, outcome: .failure(exitCode: 3), exitCode: 3, durationMs: 1500, droppedBytes: 10),
            job: "a", attempt: 1, at: t0)
        #expect(
            String(decoding: done.jsonLine(), as: UTF8.self)
                == #"{"ts":"2026-01-01T00:00:00.123Z","level":"warn","event":"run.finished","job":"a","run_id":"01RUN","attempt":1,"outcome":"failure","exit_code":3,"signal":null,"duration_ms":1500,"output_dropped_bytes":10}"#
                + "\n")
        // `warn`, as the agent has always logged a launch failure (the scheduler's line); only
        // the runner-side builder this replaced said `error`.
        let failed = LogRecord.runFinished(
            RunCompletion(runID: id, pid: nil, outcome: .launchFailed(reason: "command not found: x")), job: "a", attempt: 1, at: t0)
        #expect(failed.level == .warn)
        #expect(failed.event["reason"] == "command not found: x")
    }

    @Test func levelsBelowTheMinimumAreNotWritten() {
        let sink = MemoryEventSink()
        let log = EventLog(sink: sink, clock: VirtualClock(wall: t0), minimumLevel: .info)
        log.log(Event("x.debug", at: t0, level: .debug))
        log.log(Event("x.warn", at: t0, level: .warn))
        #expect(sink.lines.count == 1)
        #expect(sink.lines[0].contains("x.warn"))
    }

    // MARK: - Degradation

    @Test func failedWritesAreCountedAndReportedFirst() throws {
        let sink = MemoryEventSink()
        let clock = VirtualClock(wall: t0)
        let log = EventLog(sink: sink, clock: clock)
        log.log(Event("before", at: t0))
        sink.failing = ENOSPC
        for i in 0..<5 { log.log(Event("lost", at: t0, ["i": .int(Int64(i))])) }
        #expect(log.pendingDroppedLines == 5)
        sink.failing = EIO
        log.retryPending()
        #expect(log.pendingDroppedLines == 5)
        sink.failing = nil
        clock.advance(by: .seconds(2))
        log.log(Event("after", at: clock.wallNow()))
        let lines = sink.lines.compactMap(parseJSON)
        #expect(lines.map { $0["event"] as? String } == ["before", "log.dropped", "after"])
        #expect(lines[1]["lines"] as? Int == 5)
        #expect(lines[1]["level"] as? String == "warn")
        #expect(lines[1]["ts"] as? String == "2026-01-01T00:00:02.123Z")
        #expect(log.pendingDroppedLines == 0)
        #expect(log.totalDroppedLines == 5)
    }

    @Test func retryPendingReportsWithoutANewEvent() {
        let sink = MemoryEventSink()
        let log = EventLog(sink: sink, clock: VirtualClock(wall: t0))
        sink.failing = ENOSPC
        log.log(Event("lost", at: t0))
        sink.failing = nil
        log.retryPending()
        #expect(sink.lines.count == 1)
        #expect(sink.lines.first?.contains(#""event":"log.dropped","lines":1"#) == true)
        log.retryPending()
        #expect(sink.lines.count == 1)
    }

    @Test(.enabled(if: geteuid() == 0, "mounting a tmpfs needs root"))
    func fullFileSystemDegradesAndRecovers() throws {
        let dir = try temporaryDirectory()
        guard mountTmpfs(at: dir, sizeKiB: 32) else { return }  // no mount in this sandbox: covered by the injected sink
        defer { _ = umount2(dir, 0) }
        // A filler takes half the space; the log fills the rest, then the filler goes away.
        let filler = dir + "/filler"
        #expect(FileManager.default.createFile(atPath: filler, contents: Data(count: 16 * 1024)))
        let sink = try FileEventSink(path: dir + "/sundial.log")
        let log = EventLog(sink: sink, clock: VirtualClock(wall: t0))
        let payload = String(repeating: "x", count: 250)
        for i in 0..<200 { log.log(Event("fill", at: t0, ["i": .int(Int64(i)), "payload": .string(payload)])) }
        let dropped = log.pendingDroppedLines
        #expect(dropped > 100 && dropped < 200, "dropped \(dropped)")
        try FileManager.default.removeItem(atPath: filler)
        log.log(Event("after", at: t0))
        #expect(log.pendingDroppedLines == 0)

        let text = try String(contentsOfFile: dir + "/sundial.log", encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        let parsed = lines.map(parseJSON)
        // At most one fragment (the line cut by the full disk), terminated so later lines parse.
        #expect(parsed.filter { $0 == nil }.count <= 1)
        let events = parsed.compactMap { $0 }
        #expect(events.suffix(2).map { $0["event"] as? String } == ["log.dropped", "after"])
        #expect(events.suffix(2).first?["lines"] as? Int == dropped)
        // The cut line counts as dropped: it never became a valid line.
        #expect(events.filter { $0["event"] as? String == "fill" }.count + dropped == 200)
    }

    // MARK: - Files

    @Test(arguments: [false, true])
    func concurrentWritersNeverInterleave(separateDescriptors: Bool) async throws {
        let dir = try temporaryDirectory()
        let path = dir + "/concurrent.log"
        let shared = try FileEventSink(path: path)
        let logs = try (0..<8).map { _ in
            EventLog(sink: separateDescriptors ? try FileEventSink(path: path) : shared, clock: VirtualClock(wall: t0))
        }
        let payload = String(repeating: "z", count: 180)
        try await withDeadline(60) {
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                let remaining = Countdown(8)
                for thread in 0..<8 {
                    let log = logs[thread]
                    let t = Thread {
                        for i in 0..<10_000 {
                            log.log(
                                Event(
                                    "bench.line", at: Instant(unixMillis: 0), ["thread": .int(Int64(thread)), "i": .int(Int64(i)), "payload": .string(payload)])
                            )
                        }
                        if remaining.decrement() { done.resume() }
                    }
                    t.start()
                }
            }
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let lines = data.split(separator: UInt8(ascii: "\n"))
        #expect(lines.count == 80_000)
        var seen = [Set<Int>](repeating: [], count: 8)
        var invalid = 0
        for line in lines {
            guard let obj = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any],
                let thread = obj["thread"] as? Int, let i = obj["i"] as? Int
            else {
                invalid += 1
                continue
            }
            seen[thread].insert(i)
        }
        #expect(invalid == 0)
        #expect(seen.allSatisfy { $0.count == 10_000 })
    }

    @Test func rotationKeepsTheConfiguredNumberOfFiles() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/sundial.log"
        let sink = try FileEventSink(path: path, maxBytes: 1000, keep: 2)
        let log = EventLog(sink: sink, clock: VirtualClock(wall: t0))
        for i in 0..<100 { log.log(Event("rot", at: t0, ["i": .int(Int64(i)), "pad": .string(String(repeating: "p", count: 30))])) }
        let fm = FileManager.default
        #expect(fm.fileExists(atPath: path))
        #expect(fm.fileExists(atPath: path + ".1"))
        #expect(fm.fileExists(atPath: path + ".2"))
        #expect(!fm.fileExists(atPath: path + ".3"))
        var indexes: [[Int]] = []
        for file in [path + ".2", path + ".1", path] {
            let text = try String(contentsOfFile: file, encoding: .utf8)
            #expect(text.utf8.count <= 1000)
            let objs = text.split(separator: "\n").compactMap { parseJSON(String($0)) }
            #expect(objs.count == text.split(separator: "\n").count)
            indexes.append(objs.compactMap { $0["i"] as? Int })
        }
        // Oldest to newest, contiguous, ending with the last line written.
        let all = indexes.flatMap { $0 }
        #expect(all == Array((100 - all.count)..<100))
        #expect(indexes.allSatisfy { !$0.isEmpty })
    }

    @Test func zeroKeepTruncatesInPlace() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/sundial.log"
        let log = EventLog(sink: try FileEventSink(path: path, maxBytes: 500, keep: 0), clock: VirtualClock(wall: t0))
        for i in 0..<50 { log.log(Event("rot", at: t0, ["i": .int(Int64(i))])) }
        #expect(!FileManager.default.fileExists(atPath: path + ".1"))
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.utf8.count <= 500)
        #expect(text.hasSuffix(#""i":49}"# + "\n"))
    }

    @Test func reopenFollowsAnExternalRotation() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/sundial.log"
        let clock = VirtualClock(wall: t0)  // not advanced: the sink's own check (each second) never runs
        let sink = try FileEventSink(path: path, clock: clock)
        let log = EventLog(sink: sink, clock: clock)
        log.log(Event("first", at: t0))
        #expect(rename(path, path + ".old") == 0)  // what logrotate does
        log.log(Event("second", at: t0))  // still the open (renamed) file
        try sink.reopen()
        log.log(Event("third", at: t0))
        let old = try String(contentsOfFile: path + ".old", encoding: .utf8)
        let new = try String(contentsOfFile: path, encoding: .utf8)
        #expect(old.split(separator: "\n").compactMap { parseJSON(String($0))?["event"] as? String } == ["first", "second"])
        #expect(new.split(separator: "\n").compactMap { parseJSON(String($0))?["event"] as? String } == ["third"])
    }

    @Test func fileSinkReportsAnUnopenablePath() {
        #expect(throws: SinkError(code: ENOENT)) { _ = try FileEventSink(path: "/nonexistent-dir/x.log") }
    }
}

@Suite(.offPool) struct SecretMaskerTests {
    @Test func masksEveryStringFieldDeeply() {
        let masker = SecretMasker(["hunter2", ""])
        let e = Event(
            "run.output", at: Instant(unixMillis: 0),
            [
                "line": "password=hunter2 and again hunter2!",
                "argv": ["--pass", "hunter2"],
                "nested": ["k": "xhunter2x"],
                "n": 7,
            ])
        let m = masker.mask(e)
        #expect(m["line"] == "password=*** and again ***!")
        #expect(m["argv"] == ["--pass", "***"])
        #expect(m["nested"] == ["k": "x***x"])
        #expect(m["n"] == 7)
        #expect(m.name == "run.output")
    }

    @Test func longestSecretWins() {
        let masker = SecretMasker(["abc", "abcdef"])
        #expect(masker.mask("xxabcdefyy abc") == "xx***yy ***")
    }

    @Test func unicodeAndOverlaps() {
        let masker = SecretMasker(["pässwörd"])
        #expect(masker.mask("é pässwörd ü") == "é *** ü")
        #expect(SecretMasker(["aa"]).mask("aaa") == "***a")
    }

    @Test func noSecretsLeavesEventsUntouched() {
        let e = Event("x", at: Instant(unixMillis: 0), ["a": "b"])
        #expect(SecretMasker().mask(e) == e)
        #expect(SecretMasker().isEmpty)
    }

    @Test func replaceAllForgetsOldValues() {
        let masker = SecretMasker(["old-secret"])
        masker.replaceAll(with: ["new-secret"])
        #expect(masker.mask("old-secret new-secret") == "old-secret ***")
    }

    /// A job's secret comes from its `env_file` at each launch; a credential rotated every few
    /// minutes was a new value each time, kept forever: the set (and the cost of masking each
    /// logged line against all of it) grew without bound. A job keeps its latest sets only.
    @Test func aRotatedSecretDoesNotGrowTheSetWithoutBound() {
        let masker = SecretMasker(["fleet-password"])
        for i in 0..<1_000 { masker.add(["token-\(i)", "static-key"], for: "sync") }
        masker.add(["other-job-key"], for: "backup")
        // The unowned value, the static key, the latest 8 tokens, the other job's key.
        #expect(masker.count == 1 + 1 + SecretMasker.launchesKeptPerOwner + 1)
        #expect(masker.mask("token-999 token-992 static-key") == "*** *** ***")
        #expect(masker.mask("token-991 fleet-password other-job-key") == "token-991 *** ***")
        // The same values again change nothing; a value seen before comes back to the front.
        masker.add(["token-992", "static-key"], for: "sync")
        masker.add(["token-1000", "static-key"], for: "sync")
        #expect(masker.mask("token-992 token-993") == "*** token-993")
    }

    /// Jobs renamed over an agent's life: each removed job's values were kept forever, so the
    /// set grew with every rename. After a reload only the jobs still there (or still running)
    /// keep theirs; values without an owner (the fleet's password) stay.
    @Test func aRemovedJobsValuesAreForgotten() {
        let masker = SecretMasker(["fleet-password"])
        for i in 0..<100 { masker.add(["key-of-job-\(i)"], for: "job-\(i)") }
        #expect(masker.count == 101)
        masker.keepOwners { $0 == "job-7" || $0 == "job-42" }
        #expect(masker.count == 3)
        #expect(masker.mask("key-of-job-7 key-of-job-42 key-of-job-8 fleet-password") == "*** *** key-of-job-8 ***")
    }
}

/// Counts finished threads; `decrement` is true for the last one.
final class Countdown: Sendable {
    private let left: Atomic<Int>
    init(_ n: Int) { left = Atomic(n) }
    func decrement() -> Bool { left.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 }
}

/// Mounts a small tmpfs (a real full disk); false if this environment forbids mounting.
func mountTmpfs(at dir: String, sizeKiB: Int) -> Bool {
    mount("tmpfs", dir, "tmpfs", 0, "size=\(sizeKiB)k") == 0
}
