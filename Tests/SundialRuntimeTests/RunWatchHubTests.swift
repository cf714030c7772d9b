import Foundation
import OrderedCollections
import SundialCore
import SundialTesting
import Synchronization
import Testing

@testable import SundialRuntime

/// Who follows which run: binding a waiting follower to the next run, output only when asked,
/// the end of the run (not of an attempt), the follower limit.
@Suite("Run watch hub", .offPool)
struct RunWatchHubTests {
    func messages(_ stream: ControlStream) throws -> [ControlStreamMessage] {
        let bytes = stream.drain().bytes
        return try bytes.split(separator: UInt8(ascii: "\n")).map { try ControlStreamMessage(line: Array($0)) }
    }

    let t = Instant(unixMillis: 1_780_000_000_000)
    func line(_ run: String, _ text: String) -> OutputLine { OutputLine(runID: RunID(rawValue: run), stream: .stdout, text: text) }
    func started(_ job: String, _ run: String, attempt: Int, at: Instant) -> LogRecord {
        .runStarted(.init(job: job, runID: RunID(rawValue: run), attempt: attempt, scheduledFor: at, trigger: .manual, pid: 42, at: at))
    }

    @Test func aWaitingFollowerTakesTheNextRunNotAnExcludedOne() throws {
        let hub = RunWatchHub()
        let stream = ControlStream(wake: {})
        _ = try #require(hub.subscribe(job: "a", runID: nil, excluding: [RunID(rawValue: "old")], output: true, stream: stream))
        hub.output(line("old", "from the active run"), job: "a", attempt: 1)
        hub.output(line("x", "another job"), job: "b", attempt: 1)
        #expect(try messages(stream).isEmpty)
        hub.observe(started("a", "new", attempt: 1, at: t))
        hub.output(line("new", "secret-token here"), job: "a", attempt: 1, mask: { $0.replacingOccurrences(of: "secret-token", with: "***") })
        hub.output(line("old", "still the old run"), job: "a", attempt: 1)
        // An attempt's end is not the run's end: a retry follows.
        hub.observe(started("a", "new", attempt: 2, at: t + .seconds(5)))
        hub.runEnded(RunID(rawValue: "new"), outcome: .success(exitCode: 0), at: t + .seconds(7))
        let got = try messages(stream)
        let id = RunID(rawValue: "new")
        #expect(
            got == [
                .started(runID: id, attempt: 1),
                .output(runID: id, attempt: 1, stream: "stdout", line: "*** here", truncated: false),
                .started(runID: id, attempt: 2),
                .ended(.init(runID: id, job: "a", outcome: .success(exitCode: 0), attempts: 2, durationMs: 7000)),
            ])
        #expect(!stream.isOpen)
        #expect(hub.followerCount == 0)
    }

    @Test func waitOnlyFollowersGetNoOutputAndBoundFollowersIgnoreOtherRuns() throws {
        let hub = RunWatchHub()
        let stream = ControlStream(wake: {})
        let token = try #require(hub.subscribe(job: "a", runID: nil, output: false, stream: stream))
        hub.bind(token, to: RunID(rawValue: "mine"), startedAt: t)
        hub.output(line("other", "x"), job: "a", attempt: 1)
        hub.output(line("mine", "y"), job: "a", attempt: 1)
        hub.runEnded(RunID(rawValue: "other"), outcome: .failure(exitCode: 1), at: t)
        #expect(stream.isOpen)
        hub.runEnded(RunID(rawValue: "mine"), outcome: .failure(exitCode: 2), at: t + .milliseconds(30))
        #expect(
            try messages(stream) == [
                .started(runID: RunID(rawValue: "mine"), attempt: 1),
                .ended(.init(runID: RunID(rawValue: "mine"), job: "a", outcome: .failure(exitCode: 2), attempts: 1, durationMs: 30)),
            ])
    }

    @Test func followersAreBoundedAndClosedOnesAreForgotten() {
        let hub = RunWatchHub()
        var streams: [ControlStream] = []
        for _ in 0..<RunWatchHub.maxFollowers {
            let s = ControlStream(wake: {})
            streams.append(s)
            #expect(hub.subscribe(job: "a", runID: nil, output: true, stream: s) != nil)
        }
        #expect(hub.subscribe(job: "a", runID: nil, output: true, stream: ControlStream(wake: {})) == nil)
        streams[0].close()
        #expect(hub.subscribe(job: "a", runID: nil, output: true, stream: ControlStream(wake: {})) != nil)
        #expect(hub.followerCount == RunWatchHub.maxFollowers)
        #expect(hub.subscribe(job: "b", runID: nil, output: true, stream: ControlStream(wake: {})) == nil)
    }

    /// 64 `logs -f` of a manual job that never runs, kept alive by keepalives, refused every
    /// `trigger --wait` (found by probing the release binary). The oldest one still waiting for
    /// a run to start makes room; a follower of a started run never does.
    @Test func waitingFollowersMakeRoomForANewcomer() throws {
        let hub = RunWatchHub()
        var waiting: [ControlStream] = []
        for i in 0..<RunWatchHub.maxFollowers {
            let s = ControlStream(wake: {})
            waiting.append(s)
            // Every other one follows a started run: those stay.
            let started = i % 2 == 1
            #expect(
                hub.subscribe(
                    job: "m", runID: started ? RunID(rawValue: "r\(i)") : nil, output: true, stream: s, yields: !started)
                    != nil)
        }
        let trigger = ControlStream(wake: {})
        #expect(hub.subscribe(job: "other", runID: nil, output: false, stream: trigger) != nil)
        #expect(hub.followerCount == RunWatchHub.maxFollowers)
        // The oldest waiter was told why and closed.
        guard case let .dropped(reason)? = try messages(waiting[0]).last else {
            Issue.record("the oldest waiting follower was not dropped")
            return
        }
        #expect(reason.contains("made room"))
        #expect(try messages(waiting[1]).isEmpty && waiting[1].isOpen)
        // Once the 32 waiters are gone, a newcomer is refused again.
        for _ in 1..<(RunWatchHub.maxFollowers / 2) {
            #expect(hub.subscribe(job: "other", runID: nil, output: false, stream: ControlStream(wake: {})) != nil)
        }
        #expect(hub.subscribe(job: "other", runID: nil, output: false, stream: ControlStream(wake: {})) == nil)
    }
}
