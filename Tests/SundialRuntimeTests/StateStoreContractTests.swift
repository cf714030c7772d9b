import Foundation
import SundialCore
import SundialRuntime
import SundialTesting
import Testing

/// The ``StateStore`` contract, run against both implementations so that scenario tests using the
/// memory store say something true about the agent's SQLite store.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible {
    case memory, sqlite
    var testDescription: String { rawValue }

    /// A fresh store and a cleanup closure.
    func make(retention: StateRetention = .default) throws -> (any StateStore, () -> Void) {
        switch self {
        case .memory:
            return (MemoryStateStore(retention: retention), {})
        case .sqlite:
            let dir = TempDir("store")
            let store = try SQLiteStateStore(path: dir.path + "/state.db", retention: retention)
            return (
                store,
                {
                    try? store.close()
                    dir.remove()
                }
            )
        }
    }
}

@Suite("StateStore contract", .offPool)
struct StateStoreContractTests {
    @Test(arguments: StoreKind.allCases)
    func emptyStoreRestoresNothing(kind: StoreKind) throws {
        let (store, done) = try kind.make()
        defer { done() }
        #expect(try store.restore() == RestoredState())
        #expect(try store.history(job: "a", limit: 10) == [])
        #expect(try store.latestRuns() == [:])
        #expect(try store.ledger(job: "a", since: t0) == [])
    }

    @Test(arguments: StoreKind.allCases)
    func pausedJobsAreRestored(kind: StoreKind) throws {
        let (store, done) = try kind.make()
        defer { done() }
        try store.apply([.pauseChanged(job: "a", paused: true), .pauseChanged(job: "b", paused: true)])
        try store.apply([.pauseChanged(job: "a", paused: false), .pauseChanged(job: "b", paused: true)])
        #expect(try store.restore().paused == ["b"])
    }

    @Test("fires owed by a clean stop are restored oldest first, per job, until the job's are settled", arguments: StoreKind.allCases)
    func owedFiresAreRestoredUntilSettled(kind: StoreKind) throws {
        let (store, done) = try kind.make()
        defer { done() }
        try store.apply([
            .owed(job: "a", scheduledFor: at(120)), .owed(job: "a", scheduledFor: at(60)), .owed(job: "b", scheduledFor: at(60)),
            .owed(job: "a", scheduledFor: at(60)),
        ])
        try store.flush()
        #expect(try store.restore().owed == ["a": [at(60), at(120)], "b": [at(60)]])
        try store.apply([.owedSettled(job: "a")])
        #expect(try store.restore().owed == ["b": [at(60)]])
    }

    @Test(arguments: StoreKind.allCases)
    func theLastBootRecordedIsRestored(kind: StoreKind) throws {
        let (store, done) = try kind.make()
        defer { done() }
        try store.apply([.bootRecorded(bootID: "b1")])
        #expect(try store.restore().bootID == "b1")
        try store.apply([.bootRecorded(bootID: "b2")])
        #expect(try store.restore().bootID == "b2")
    }

    @Test(arguments: StoreKind.allCases)
    func roundTripGivesLastFiredInFlightAndHistory(kind: StoreKind) throws {
        let (store, done) = try kind.make()
        defer { done() }
        let r1 = RunRecord(id: rid(1), job: "a", trigger: .schedule, scheduledFor: at(60), startedAt: at(60))
        let r2 = RunRecord(id: rid(2), job: "a", trigger: .schedule, scheduledFor: at(120), startedAt: at(121))
        let r3 = RunRecord(id: rid(3), job: "b", trigger: .manual, scheduledFor: nil, startedAt: at(130))
        try store.apply([.fired(job: "a", scheduledFor: at(60)), .runStarted(r1)])
        try store.apply([.attemptStarted(runID: r1.id, attempt: 1, pid: 42, at: at(60))])
        try store.apply([.attemptFinished(runID: r1.id, attempt: 1, outcome: .failure(exitCode: 3), at: at(61), durationMs: 1000)])
        try store.apply([.attemptStarted(runID: r1.id, attempt: 2, pid: 43, at: at(70))])
        try store.apply([.attemptFinished(runID: r1.id, attempt: 2, outcome: .success(exitCode: 0), at: at(71), durationMs: 900)])
        try store.apply([.runFinished(runID: r1.id, outcome: .success(exitCode: 0), at: at(71))])
        try store.apply([.planned(LedgerEntry(job: "a", scheduledFor: at(60), disposition: .ran(r1.id), at: at(60)))])
        try store.apply([.fired(job: "a", scheduledFor: at(120)), .runStarted(r2)])
        try store.apply([.attemptStarted(runID: r2.id, attempt: 1, pid: 44, at: at(121))])
        try store.apply([.runStarted(r3), .attemptStarted(runID: r3.id, attempt: 1, pid: nil, at: at(130))])
        try store.apply([.runFinished(runID: r3.id, outcome: .launchFailed(reason: "no such file: /bin/nope"), at: at(130))])
        try store.markAlive(now: at(140))

        let restored = try store.restore()
        #expect(restored.lastFired == ["a": at(120)])
        #expect(restored.inFlight == [r2])
        #expect(restored.lastSeen == at(140))

        let history = try store.history(job: "a", limit: 10)
        #expect(history.map(\.id) == [r2.id, r1.id])
        #expect(history[0].outcome == nil && history[0].finishedAt == nil && history[0].attempts == 1)
        #expect(
            history[1]
                == RunSummary(
                    id: r1.id, job: "a", trigger: .schedule, scheduledFor: at(60), startedAt: at(60),
                    finishedAt: at(71), outcome: .success(exitCode: 0), attempts: 2))
        #expect(history[1].exitCode == 0)
        #expect(try store.history(job: "a", limit: 1).map(\.id) == [r2.id])
        let latest = try store.latestRuns()
        #expect(latest.mapValues(\.id) == ["a": r2.id, "b": r3.id])
        #expect(latest["b"]?.outcome == .launchFailed(reason: "no such file: /bin/nope"))
        #expect(try store.history(job: "a", limit: 0) == [])
        let b = try store.history(job: "b", limit: 5)
        #expect(b.count == 1 && b[0].outcome == .launchFailed(reason: "no such file: /bin/nope") && b[0].scheduledFor == nil)
        #expect(b[0].trigger == .manual)
    }

    @Test(arguments: StoreKind.allCases)
    func lastFiredNeverMovesBackward(kind: StoreKind) throws {
        let (store, done) = try kind.make()
        defer { done() }
        try store.apply([.fired(job: "a", scheduledFor: at(600))])
        try store.apply([.fired(job: "a", scheduledFor: at(300))])  // after a backward clock step
        #expect(try store.restore().lastFired["a"] == at(600))
    }

    @Test(arguments: StoreKind.allCases)
    func everyOutcomeRoundTrips(kind: StoreKind) throws {
        let (store, done) = try kind.make()
        defer { done() }
        let outcomes: [RunOutcome] = [
            .success(exitCode: 0), .success(exitCode: 2), .failure(exitCode: 1), .signal(9), .timeout,
            .launchFailed(reason: "bad workdir"), .interrupted,
        ]
        for (i, o) in outcomes.enumerated() {
            let r = RunRecord(
                id: rid(i), job: "j", trigger: RunTrigger.allCases[i % RunTrigger.allCases.count], scheduledFor: at(Int64(i)), startedAt: at(Int64(i)))
            try store.apply([.runStarted(r), .runFinished(runID: r.id, outcome: o, at: at(Int64(i) + 1))])
        }
        let h = try store.history(job: "j", limit: 100)
        #expect(h.reversed().map(\.outcome) == outcomes)
        #expect(h.reversed().map(\.trigger) == (0..<outcomes.count).map { RunTrigger.allCases[$0 % RunTrigger.allCases.count] })
    }

    @Test(arguments: StoreKind.allCases)
    func ledgerKeepsOneFatePerPlannedFireAndFiltersBySince(kind: StoreKind) throws {
        let (store, done) = try kind.make()
        defer { done() }
        try store.apply([
            .planned(LedgerEntry(job: "a", scheduledFor: at(60), disposition: .missed, at: at(500))),
            .planned(LedgerEntry(job: "a", scheduledFor: at(120), disposition: .skipped(.overlap), at: at(120))),
            .planned(LedgerEntry(job: "a", scheduledFor: at(180), disposition: .caughtUp(rid(7)), at: at(500))),
            .planned(LedgerEntry(job: "b", scheduledFor: at(60), disposition: .skipped(.needs), at: at(60))),
            // The same planned fire again: the later fate replaces the earlier one.
            .planned(LedgerEntry(job: "a", scheduledFor: at(60), disposition: .ran(rid(8)), at: at(501))),
        ])
        let all = try store.ledger(job: "a", since: t0)
        #expect(all.map(\.scheduledFor) == [at(60), at(120), at(180)])
        #expect(all.map(\.disposition) == [.ran(rid(8)), .skipped(.overlap), .caughtUp(rid(7))])
        #expect(all[0].at == at(501))
        #expect(try store.ledger(job: "a", since: at(120)).map(\.scheduledFor) == [at(120), at(180)])
        #expect(try store.ledger(job: "b", since: t0).map(\.disposition) == [.skipped(.needs)])
    }

    @Test(arguments: StoreKind.allCases)
    func pruneByAgeAndCountKeepsInFlightAndLastFired(kind: StoreKind) throws {
        let retention = StateRetention(maxAge: .seconds(1000), maxRunsPerJob: 3, maxLedgerEntriesPerJob: 2)
        let (store, done) = try kind.make(retention: retention)
        defer { done() }
        // Job a: 6 runs 100 s apart, the oldest still in flight.
        for i in 0..<6 {
            let r = RunRecord(id: rid(i), job: "a", trigger: .schedule, scheduledFor: at(Int64(i) * 100), startedAt: at(Int64(i) * 100))
            try store.apply([.fired(job: "a", scheduledFor: r.scheduledFor!), .runStarted(r)])
            try store.apply([.attemptStarted(runID: r.id, attempt: 1, pid: 1, at: r.startedAt)])
            if i > 0 { try store.apply([.runFinished(runID: r.id, outcome: .success(exitCode: 0), at: r.startedAt + .seconds(1))]) }
            try store.apply([.planned(LedgerEntry(job: "a", scheduledFor: r.scheduledFor!, disposition: .ran(r.id), at: r.startedAt))])
        }
        // Job b: one old finished run, pruned by age.
        let old = RunRecord(id: rid(100), job: "b", trigger: .manual, scheduledFor: nil, startedAt: at(0))
        try store.apply([.fired(job: "b", scheduledFor: at(0)), .runStarted(old), .runFinished(runID: old.id, outcome: .timeout, at: at(5))])

        try store.prune(now: at(1050))  // cutoff at 50 s
        // Count: the newest 3 of a (5, 4, 3) stay; 2 and 1 go; 0 is in flight (and past the age) but stays.
        #expect(try store.history(job: "a", limit: 10).map(\.id) == [rid(5), rid(4), rid(3), rid(0)])
        #expect(try store.history(job: "b", limit: 10) == [])
        #expect(try store.ledger(job: "a", since: Instant(unixMillis: 0)).map(\.scheduledFor) == [at(400), at(500)])
        let restored = try store.restore()
        #expect(restored.inFlight.map(\.id) == [rid(0)])
        #expect(restored.lastFired == ["a": at(500), "b": at(0)])

        try store.prune(now: at(100_000))  // everything finished is past the age now
        #expect(try store.history(job: "a", limit: 10).map(\.id) == [rid(0)])
        #expect(try store.ledger(job: "a", since: Instant(unixMillis: 0)) == [])
    }

    /// Stored output: by run and attempt; for the newest `maxOutputRunsPerJob` runs of a job
    /// (enforced as it is written); within `maxOutputBytes` in all (enforced by prune, oldest
    /// first); gone with its run.
    @Test(arguments: StoreKind.allCases)
    func storedOutputIsBoundedPerJobAndInTotal(kind: StoreKind) throws {
        let retention = StateRetention(maxRunsPerJob: 100, maxOutputRunsPerJob: 3, maxOutputBytes: 250)
        let (store, done) = try kind.make(retention: retention)
        defer { done() }
        func run(_ i: Int, job: JobID, text: String) throws {
            let r = RunRecord(id: rid(i), job: job, trigger: .schedule, scheduledFor: at(Int64(i)), startedAt: at(Int64(i)))
            try store.apply([.fired(job: job, scheduledFor: r.scheduledFor!), .runStarted(r)])
            try store.apply([
                .outputStored(RunOutputRecord(runID: r.id, attempt: 1, text: text, droppedBytes: 7)),
                .runFinished(runID: r.id, outcome: .success(exitCode: 0), at: r.startedAt + .seconds(1)),
            ])
        }
        for i in 0..<5 { try run(i, job: "a", text: String(repeating: "a", count: 49) + "\n") }
        try store.apply([.outputStored(RunOutputRecord(runID: rid(4), attempt: 2, text: "second\n"))])
        #expect(try store.output(run: rid(4)).map(\.attempt) == [1, 2])
        #expect(try store.output(run: rid(4)).first?.droppedBytes == 7)
        #expect(try store.output(run: rid(4)).last?.text == "second\n")
        // Only the newest 3 runs of `a` keep output.
        #expect(try (0..<5).map { try store.output(run: rid($0)).isEmpty } == [true, true, false, false, false])
        // An output for a run the store does not know is ignored.
        try store.apply([.outputStored(RunOutputRecord(runID: rid(99), attempt: 1, text: "x\n"))])
        #expect(try store.output(run: rid(99)).isEmpty)
        // Job b adds 100 bytes: 257 in all, over 250 at the next prune; the oldest run (2) goes.
        try run(10, job: "b", text: String(repeating: "b", count: 99) + "\n")
        try store.prune(now: at(20))
        #expect(try store.output(run: rid(2)).isEmpty)
        #expect(try !store.output(run: rid(3)).isEmpty)
        #expect(try !store.output(run: rid(10)).isEmpty)
    }

    @Test(arguments: StoreKind.allCases)
    func changesForUnknownRunsAreIgnored(kind: StoreKind) throws {
        let (store, done) = try kind.make()
        defer { done() }
        try store.apply([
            .attemptStarted(runID: rid(9), attempt: 1, pid: 1, at: at(1)),
            .attemptFinished(runID: rid(9), attempt: 1, outcome: .timeout, at: at(2), durationMs: 1000),
            .runFinished(runID: rid(9), outcome: .timeout, at: at(2)),
        ])
        #expect(try store.restore() == RestoredState())
    }

    @Test(arguments: StoreKind.allCases)
    func aRunStartedTwiceIsRecordedOnce(kind: StoreKind) throws {
        let (store, done) = try kind.make()
        defer { done() }
        let r = RunRecord(id: rid(1), job: "a", trigger: .schedule, scheduledFor: at(1), startedAt: at(1))
        try store.apply([.runStarted(r), .runStarted(RunRecord(id: rid(1), job: "a", trigger: .manual, scheduledFor: nil, startedAt: at(9)))])
        #expect(try store.restore().inFlight == [r])
    }

    /// A run restored as in flight carries its latest attempt, so the scheduler records it
    /// `interrupted` under that attempt and retries with the next one (a crash loop uses up
    /// the attempts instead of retrying attempt 2 forever).
    @Test(arguments: StoreKind.allCases)
    func restoredRunsCarryTheirLatestAttempt(kind: StoreKind) throws {
        let (store, done) = try kind.make()
        defer { done() }
        let launched = RunRecord(id: rid(1), job: "a", trigger: .schedule, scheduledFor: at(1), startedAt: at(1))
        let never = RunRecord(id: rid(2), job: "b", trigger: .manual, scheduledFor: nil, startedAt: at(2))
        try store.apply([.runStarted(launched), .runStarted(never)])
        try store.apply([.attemptStarted(runID: launched.id, attempt: 1, pid: 10, at: at(1))])
        try store.apply([.attemptFinished(runID: launched.id, attempt: 1, outcome: .failure(exitCode: 1), at: at(3), durationMs: 2000)])
        try store.apply([.attemptStarted(runID: launched.id, attempt: 2, pid: nil, at: at(5))])
        try store.flush()
        let restored = try store.restore().inFlight
        #expect(restored.map(\.id) == [launched.id, never.id])
        #expect(restored.map(\.attempt) == [2, 1])
    }
}
