import Foundation
import Glibc
import SundialCore
import SundialTesting
import Synchronization
import Testing

@testable import SundialRuntime

/// Runners are instances: several live in one process, each reaps only its own children
/// (through pidfds), and one can be stopped and another started after it.
@Suite(.offPool) struct RunnerInstanceTests {
    /// Starts `/bin/sh -c script` the way a test harness does (posix_spawn, then waitpid by
    /// pid), not through any runner.
    static func harnessSpawn(_ script: String) throws -> pid_t {
        var pid: pid_t = 0
        let words: [String] = ["/bin/sh", "-c", script]
        var argv: [UnsafeMutablePointer<CChar>?] = words.map { (w: String) -> UnsafeMutablePointer<CChar>? in strdup(w) }
        argv.append(nil)
        defer { argv.forEach { free($0) } }
        let rc = posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ)
        guard rc == 0 else { throw RunnerError("posix_spawn: \(rc)") }
        return pid
    }

    @Test func twoRunnersEachSeeOnlyTheirOwnChildrenAndLeaveTheHarnessChildAlone() async throws {
        let a = try ProcessRunner()
        let b = try ProcessRunner()
        // Exits at once, while both runners are waiting for their children: a `waitpid(-1)`
        // reaper in either would take its status.
        let harnessChild = try Self.harnessSpawn("exit 7")
        let (ca, cb) = try await withDeadline(20) {
            async let ha = a.start(job: shellJob("sleep 0.3; exit 3"), runID: nextRunID(), attempt: 1) { _ in }
            async let hb = b.start(job: shellJob("sleep 0.3; exit 5"), runID: nextRunID(), attempt: 1) { _ in }
            let (handleA, handleB) = await (ha, hb)
            // Neither lists the other's run (their own may have ended already on a loaded machine).
            #expect(!a.activeRunIDs.contains(handleB.runID))
            #expect(!b.activeRunIDs.contains(handleA.runID))
            return await (handleA.completion(), handleB.completion())
        }
        #expect(ca.outcome == .failure(exitCode: 3))
        #expect(cb.outcome == .failure(exitCode: 5))
        var status: Int32 = 0
        let reaped = waitpid(harnessChild, &status, 0)
        #expect(reaped == harnessChild, "the harness's child was reaped by a runner (errno \(errno))")
        #expect(status & 0x7f == 0 && (status >> 8) & 0xff == 7, "wait status \(status)")
        #expect(a.activeRunIDs.isEmpty && b.activeRunIDs.isEmpty)
        await a.shutdown()
        await b.shutdown()
    }

    /// The agent's runner is served by its event loop (no thread of its own, issue 16): output
    /// and exits arrive through the loop, a timeout is kept by the runner's timerfd in its epoll
    /// set, and `shutdown` takes the runner off the loop, which then stops.
    @Test func aRunnerServedByAnEventLoop() async throws {
        let loop = try EventLoop(name: "test-runloop")
        defer { loop.stop() }
        let runner = try ProcessRunner(loop: loop)
        let lines = Lines()
        let threads = Mutex<Set<String>>([])
        let done = try await withDeadline(15) {
            await runner.start(job: shellJob("echo one; echo two >&2; exit 3"), runID: nextRunID(), attempt: 1) { chunk in
                threads.withLock { _ = $0.insert(EventLoopTests.currentThreadName()) }
                lines.handler(chunk)
            }.completion()
        }
        #expect(done.outcome == RunOutcome.failure(exitCode: 3))
        #expect(lines.stdout == ["one"] && lines.stderr == ["two"])
        #expect(threads.withLock { $0 } == ["test-runloop"], "output was handled on \(threads.withLock { $0 })")

        // Nothing but the deadline wakes the loop here: the timerfd must be armed for it.
        let start = ContinuousClock.now
        let slow = try await withDeadline(15) {
            await runner.start(job: shellJob("sleep 30", timeoutMs: 300), runID: nextRunID(), attempt: 1) { _ in }.completion()
        }
        #expect(slow.outcome == RunOutcome.timeout)
        #expect(ContinuousClock.now - start < .seconds(5), "a 300 ms timeout took \(ContinuousClock.now - start)")

        let long = await runner.start(job: shellJob("sleep 30"), runID: nextRunID(), attempt: 1) { _ in }
        let pid = try #require(long.pid)
        try await withDeadline(15) { await runner.shutdown() }
        #expect(kill(pid, 0) == -1 && errno == ESRCH, "the run's process \(pid) outlived its runner")
        let late = await runner.start(job: shellJob("true"), runID: nextRunID(), attempt: 1) { _ in }
        #expect(late.pid == nil)
    }

    @Test func aRunnerStartedAndStoppedTwice() async throws {
        for round in 1...2 {
            let runner = try ProcessRunner()
            let lines = Lines()
            let done = try await withDeadline(15) {
                await runner.start(job: shellJob("echo round \(round)"), runID: nextRunID(), attempt: 1, onOutput: lines.handler).completion()
            }
            #expect(done.outcome.isSuccess)
            #expect(lines.stdout == ["round \(round)"])
            // A run still going when the runner stops is killed and reaped before `shutdown` returns.
            let long = await runner.start(job: shellJob("sleep 30"), runID: nextRunID(), attempt: 1) { _ in }
            let pid = try #require(long.pid)
            try await withDeadline(15) { await runner.shutdown() }
            #expect(long.completionIfFinished?.outcome == .interrupted)
            #expect(kill(pid, 0) == -1 && errno == ESRCH, "the run's process \(pid) outlived its runner")
            // After the stop: starts fail with a reason, a second shutdown returns at once.
            let late = await runner.start(job: shellJob("true"), runID: nextRunID(), attempt: 1) { _ in }
            #expect(late.pid == nil)
            if case let .launchFailed(reason) = await late.completion().outcome {
                #expect(reason.contains("stopped"))
            } else {
                Issue.record("a start after shutdown did not fail")
            }
            try await withDeadline(5) { await runner.shutdown() }
        }
    }
}

/// ``ChildRegistry``'s rules, without touching any child (the orphan reaper itself runs only in
/// `sundial run`: OrphanReaperTests in SundialCLITests).
@Suite(.offPool) struct ChildRegistryTests {
    @Test func nothingIsReapedWhileASpawnIsInFlight() {
        let registry = ChildRegistry()
        registry.beginSpawn()
        // Returns before looking at any child: a child that exits before its pid is registered
        // must stay for its runner.
        #expect(registry.reapOneOrphan() == .blocked)
        registry.endSpawn(pid: nil)
    }

    @Test func aReusedPidStaysOwnedUntilEveryOwnerReleasedIt() {
        let registry = ChildRegistry()
        registry.beginSpawn()
        registry.endSpawn(pid: 4242)
        // Runner A reaped 4242, the kernel gave the number to runner B's new child before A
        // released it.
        registry.beginSpawn()
        registry.endSpawn(pid: 4242)
        registry.release(4242)
        #expect(registry.owns(4242))
        registry.release(4242)
        #expect(!registry.owns(4242))
        registry.release(4242)  // an extra release is harmless
        #expect(!registry.owns(4242))
    }
}
