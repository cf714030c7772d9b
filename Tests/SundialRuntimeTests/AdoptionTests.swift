import Foundation
import SundialCore
import SundialRuntime
import SundialTesting
import Synchronization
import Testing

/// The runtime side of surviving the agent's own crash: process identities from `/proc`, the
/// pidfd watcher, the identity column of the state store, the state directory's guards.
@Suite("Adoption after an agent restart: identities, watcher, state directory", .offPool)
struct AdoptionTests {
    /// A `sleep` started as a real job (so with `SUNDIAL_RUN_ID` in its environment).
    func startSleeper(_ seconds: String = "30") async throws -> (RunID, RunHandle) {
        let id = nextRunID()
        var spec = JobSpec(id: "adopt-probe", command: .argv(["sleep", seconds]))
        spec.workdir = "/tmp"
        let handle = await (try TestRunner.shared()).start(job: spec, runID: id, attempt: 1) { _ in }
        let pid = try #require(handle.pid)
        // The spawn returns before the child has called exec: until then its environment and
        // process group are still the parent's copy (under load that window is long enough for
        // a scan of /proc to miss it). An agent restarting after a crash only ever scans
        // processes that exec'd long before.
        let execd = await eventuallyAsync {
            let cmdline = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
            return cmdline.starts(with: Array("sleep\0".utf8))
        }
        try #require(execd, "the sleeper did not exec within 5 s")
        return (id, handle)
    }

    func adopted(_ id: RunID, _ identity: ProcessIdentity, timeoutMs: Int64? = nil) -> AdoptedRun {
        AdoptedRun(
            runID: id, job: "adopt-probe", attempt: 1, identity: identity, startedAt: Instant(unixMillis: 0),
            timeoutMs: timeoutMs, killGraceMs: 200)
    }

    /// Collects what the watcher reports.
    final class Ends: Sendable {
        let list = Mutex<[RunCompletion]>([])
        var handler: @Sendable (RunCompletion) -> Void { { c in self.list.withLock { $0.append(c) } } }
        var outcomes: [RunOutcome] { list.withLock { $0.map(\.outcome) } }
    }

    @Test func identityOfALiveProcessAndWhatDefeatsPIDReuse() throws {
        let me = try #require(ProcessProbe.identity(of: getpid()))
        #expect(me.processGroup == getpgrp())
        #expect(me.bootID == ProcessProbe.bootID && me.bootID.count >= 32)
        #expect(ProcessProbe.isAlive(me))
        var otherStart = me
        otherStart.startTicks += 1
        #expect(!ProcessProbe.isAlive(otherStart), "a pid with another start time is another process")
        var otherBoot = me
        otherBoot.bootID = "00000000-0000-0000-0000-000000000000"
        #expect(!ProcessProbe.isAlive(otherBoot), "a process of another boot is never ours")
        #expect(ProcessProbe.identity(of: Int32.max) == nil)
        // The command name may hold spaces and parentheses: fields are read after the last ')'.
        let stat = ProcessProbe.parseStat(Array("42 (a) b (c) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 987654 0 0".utf8))
        #expect(stat?.processGroup == 42 && stat?.startTicks == 987_654 && stat?.parent == 1)
    }

    @Test func aRunIsFoundByItsRunIDWhenItsIdentityWasNeverRecorded() async throws {
        let (id, handle) = try await startSleeper()
        defer { try? TestRunner.shared().terminate(id, grace: .zero) }
        let found = ProcessProbe.findRuns([id, RunID(rawValue: "NOT-A-RUN")])
        #expect(found.count == 1)
        #expect(found[id]?.pid == handle.pid && found[id]?.processGroup == handle.pid)
        #expect(found[id] == ProcessProbe.identity(of: handle.pid!))
        let record = RunRecord(id: id, job: "adopt-probe", trigger: .manual, scheduledFor: nil, startedAt: Instant(unixMillis: 0))
        let survivors = ProcessProbe.survivors(of: [record])
        #expect(survivors.alive[id] == found[id] && survivors.discovered[id] == found[id])
        try TestRunner.shared().terminate(id, grace: .zero)
        _ = try await withDeadline { await handle.completion() }
    }

    @Test func aStrangerWithTheRecordedPIDButAnotherStartTimeIsNeitherAdoptedNorKilled() async throws {
        let (id, handle) = try await startSleeper()
        defer { try? TestRunner.shared().terminate(id, grace: .zero) }
        var fake = try #require(ProcessProbe.identity(of: handle.pid!))
        fake.startTicks -= 7  // what a recycled pid looks like
        let record = RunRecord(
            id: RunID(rawValue: "OLD-RUN"), job: "x", trigger: .manual, scheduledFor: nil,
            startedAt: Instant(unixMillis: 0), process: fake)
        #expect(ProcessProbe.survivors(of: [record]).alive.isEmpty)
        let watcher = AdoptionWatcher()
        let ends = Ends()
        watcher.watch(adopted(record.id, fake), ended: ends.handler)
        #expect(ends.outcomes == [.unknown], "reported gone at once")
        watcher.terminate(record.id, grace: .zero)
        try await Task.sleep(for: .milliseconds(100))
        #expect(ProcessProbe.isAlive(try #require(ProcessProbe.identity(of: handle.pid!))), "the stranger was signalled")
        #expect(handle.completionIfFinished == nil)
    }

    @Test func anAdoptedProcessIsWatchedToItsEndAndCanBeKilled() async throws {
        let watcher = AdoptionWatcher()
        // Ends without the watcher's doing (here: someone else's SIGTERM): reported unknown.
        let (quickID, quick) = try await startSleeper()
        let ends = Ends()
        watcher.watch(adopted(quickID, try #require(ProcessProbe.identity(of: quick.pid!))), ended: ends.handler)
        #expect(watcher.watchedRunIDs == [quickID])
        try await Task.sleep(for: .milliseconds(50))
        #expect(ends.outcomes.isEmpty, "reported while the process lives")
        kill(quick.pid!, SIGTERM)
        #expect(try await waitUntil { ends.outcomes == [.unknown] })
        #expect(ends.list.withLock { $0.first?.pid } == quick.pid)
        // Killed: the process group gets SIGKILL.
        let (slowID, slow) = try await startSleeper()
        let killed = Ends()
        watcher.watch(adopted(slowID, try #require(ProcessProbe.identity(of: slow.pid!))), ended: killed.handler)
        watcher.terminate(slowID, grace: .zero)
        #expect(try await waitUntil { killed.outcomes == [.unknown] })
        let end = try await withDeadline { await slow.completion() }
        #expect(end.signal == SIGKILL)
        // The job's timeout holds for an adopted run too: SIGTERM, reported `timeout`.
        let (limitedID, limited) = try await startSleeper()
        let timedOut = Ends()
        watcher.watch(adopted(limitedID, try #require(ProcessProbe.identity(of: limited.pid!)), timeoutMs: 300), ended: timedOut.handler)
        #expect(try await waitUntil { timedOut.outcomes == [.timeout] })
        #expect(try await withDeadline { await limited.completion() }.signal == SIGTERM)
        #expect(try await waitUntil { watcher.watchedRunIDs.isEmpty })
    }

    @Test func theStoreKeepsAProcessIdentityWhileItsAttemptRuns() throws {
        let dir = TempDir("adopt-store")
        defer { dir.remove() }
        let store = try SQLiteStateStore(path: dir.path + "/state.db")
        let identity = ProcessIdentity(pid: 321, startTicks: 9_876_543_210, processGroup: 321, bootID: "b-1")
        let (a, b) = (rid(1), rid(2))
        try store.apply([
            .runStarted(RunRecord(id: a, job: "j", trigger: .manual, scheduledFor: nil, startedAt: at(0))),
            .runStarted(RunRecord(id: b, job: "j", trigger: .manual, scheduledFor: nil, startedAt: at(1))),
            .processStarted(runID: a, attempt: 1, identity: identity),
            .processStarted(runID: b, attempt: 2, identity: identity),
        ])
        var restored = try store.restore()
        #expect(restored.inFlight.map(\.process) == [identity, identity])
        #expect(restored.inFlight.map(\.attempt) == [1, 2])
        try store.apply([.attemptFinished(runID: b, attempt: 2, outcome: .failure(exitCode: 1), at: at(2), durationMs: 5)])
        try store.apply([.runFinished(runID: a, outcome: .unknown, at: at(3))])
        restored = try store.restore()
        #expect(restored.inFlight.map(\.id) == [b])
        #expect(restored.inFlight.first?.process == nil, "a finished attempt's process is forgotten")
        #expect(try store.history(job: "j", limit: 5).first { $0.id == a }?.outcome == .unknown)
        try store.close()
    }

    @Test func deletingTheStateDirectoryDoesNotLetASecondAgentIn() throws {
        let dir = TempDir("adopt-lock")
        defer { dir.remove() }
        let state = dir.path + "/state"
        let first = try StateDirectory.acquire(path: state)
        try FileManager.default.removeItem(atPath: state)
        do {
            _ = try StateDirectory.acquire(path: state)
            Issue.record("a second holder got in after the directory was deleted")
        } catch let error as StateError {
            #expect(error.code == .locked)
            #expect(error.holderPID == getpid(), "the holder is named through the instance socket")
        }
        first.release()
        let again = try StateDirectory.acquire(path: state)
        again.release()
    }

    @Test func anEmptyOrMissingDatabaseInAUsedDirectoryIsReportedAsLost() throws {
        let dir = TempDir("adopt-reset")
        defer { dir.remove() }
        let state = try StateDirectory.acquire(path: dir.path + "/state")
        defer { state.release() }
        #expect(state.lostDatabase() == nil, "a fresh directory lost nothing")
        state.writeMarker(now: at(0))
        #expect(FileManager.default.fileExists(atPath: state.markerPath))
        #expect(state.lostDatabase()?.contains("is missing") == true)
        _ = FileManager.default.createFile(atPath: state.databasePath, contents: Data())
        let lost = try #require(state.lostDatabase())
        #expect(lost.contains("is empty (0 bytes)") && lost.contains("state.id"))
        let store = try SQLiteStateStore(path: state.databasePath)
        try store.close()
        #expect(state.lostDatabase() == nil)
    }

    /// Removed while the agent starts, before the watch exists: reported at once, not a
    /// start-up failure that would leave the agent running unguarded.
    @Test func aDirectoryRemovedBeforeTheWatchStartsIsReportedAtOnce() throws {
        let dir = TempDir("adopt-guard-early")
        defer { dir.remove() }
        let loop = try EventLoop(name: "test-loop")
        defer { loop.stop() }
        let path = dir.path + "/state"
        let state = try StateDirectory.acquire(path: path)
        defer { state.release() }
        try FileManager.default.removeItem(atPath: path)
        let reasons = Mutex<[String]>([])
        let watch = try StateDirectoryWatch(directory: state, loop: loop) { r in reasons.withLock { $0.append(r) } }
        defer { watch.stop() }
        #expect(reasons.withLock { $0 }.count == 1)
        #expect(reasons.withLock { $0.first ?? "" }.contains("state"), "\(reasons.withLock { $0 })")
    }

    @Test func removingTheLockFileOrTheDirectoryIsNoticed() async throws {
        let dir = TempDir("adopt-guard")
        defer { dir.remove() }
        let loop = try EventLoop(name: "test-loop")
        defer { loop.stop() }
        for victim in ["sundial.lock", "", "state.db"] {
            let path = dir.path + "/state-\(victim.isEmpty ? "dir" : victim)"
            let state = try StateDirectory.acquire(path: path)
            defer { state.release() }
            _ = FileManager.default.createFile(atPath: state.databasePath, contents: Data())
            let reasons = Mutex<[String]>([])
            let watch = try StateDirectoryWatch(directory: state, loop: loop) { r in reasons.withLock { $0.append(r) } }
            defer { watch.stop() }
            // What the agent itself does there is not a loss.
            _ = FileManager.default.createFile(atPath: path + "/state.db-wal", contents: Data([1]))
            try FileManager.default.removeItem(atPath: path + "/state.db-wal")
            _ = FileManager.default.createFile(atPath: path + "/sundial.sock", contents: Data())
            try await Task.sleep(for: .milliseconds(50))
            #expect(reasons.withLock { $0 }.isEmpty)
            try FileManager.default.removeItem(atPath: victim.isEmpty ? path : path + "/" + victim)
            #expect(try await waitUntil { reasons.withLock { $0.count } == 1 }, "\(victim)")
            let reason = reasons.withLock { $0.first ?? "" }
            #expect(reason.contains(victim.isEmpty ? "was removed" : victim), "\(reason)")
            #expect(state.lossReason() != nil || victim == "state.db")
        }
    }
}
