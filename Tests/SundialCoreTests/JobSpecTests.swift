import OrderedCollections
import Testing

@testable import SundialCore

/// `JobSpec` keeps its fields behind one shared reference (copy on write): value semantics for
/// every user, one copy of each job in memory however many places hold it.
@Suite struct JobSpecTests {
    func sample() -> JobSpec {
        var spec = JobSpec(id: "backup", schedule: .cron("@daily"), command: .argv(["/usr/bin/backup"]))
        spec.env = ["A": "1"]
        spec.retry.attempts = 3
        spec.location = SourceLocation(file: "a.yaml", line: 3, column: 3)
        return spec
    }

    @Test func aChangedCopyLeavesTheOriginalAsItWas() {
        let original = sample()
        var copy = original
        #expect(copy.sharesFields(with: original))
        copy.env["B"] = "2"
        copy.retry.attempts = 5
        copy.timeoutMs = 1_000
        #expect(!copy.sharesFields(with: original))
        #expect(original.env == ["A": "1"])
        #expect(original.retry.attempts == 3)
        #expect(original.timeoutMs == nil)
        #expect(copy.env == ["A": "1", "B": "2"])
        #expect(copy.retry.attempts == 5)
        #expect(copy.timeoutMs == 1_000)
    }

    /// Jobs that leave the rarely changed fields (workdir, user, limits, notify, fleet settings…)
    /// at their defaults share one box of them; a job that sets one gets its own.
    @Test func rarelyChangedFieldsAreSharedWhileAtTheirDefaults() {
        var a = JobSpec(id: "a", command: .shell("true"))
        var b = JobSpec(id: "b", command: .shell("true"))
        b.killGraceMs = 10_000  // the default: as a decoder that sets every field does
        b.successExitCodes = [0]
        #expect(a.sharesRareFields(with: b))
        a.workdir = "/srv"
        a.notify = [NotifySpec(on: [.failure], target: .command(["/bin/true"]))]
        #expect(!a.sharesRareFields(with: b))
        #expect(a.workdir == "/srv" && b.workdir == nil)
        #expect(b.notify.isEmpty && a.notify.count == 1)
        let before = a
        a.leaseMs = 5_000
        #expect(before.leaseMs == 30_000 && a.leaseMs == 5_000)
        a.workdir = nil
        a.notify = []
        a.leaseMs = 30_000
        #expect(a.sharesRareFields(with: b))
        #expect(a.killGraceMs == 10_000 && a.successExitCodes == [0])
    }

    /// A job's own box of rare fields is changed in place, never under a copy that shares it.
    @Test func rareFieldsChangedInPlaceStayApartFromCopies() {
        var a = JobSpec(id: "a", command: .shell("true"))
        a.workdir = "/srv"
        let copy = a
        #expect(a.sharesRareFields(with: copy))
        a.user = "nobody"
        a.killGraceMs = 5_000
        #expect(!a.sharesRareFields(with: copy))
        #expect(copy.user == nil && copy.killGraceMs == 10_000 && copy.workdir == "/srv")
        #expect(a.user == "nobody" && a.killGraceMs == 5_000 && a.workdir == "/srv")
        var b = JobSpec(id: "a", command: .shell("true"))
        b.workdir = "/srv"
        b.user = "nobody"
        b.killGraceMs = 5_000
        #expect(a == b)
        a.user = nil
        a.killGraceMs = 10_000
        #expect(a == copy)
    }

    /// A retry policy lives in a box that equal policies can share (the loader's answer is
    /// decoded with one per distinct policy); a change gives the job a box of its own.
    @Test func retryPoliciesAreSharedOnlyWhileEqual() {
        var a = JobSpec(id: "a", command: .shell("true"))
        var b = JobSpec(id: "b", command: .shell("true"))
        #expect(a.sharesRetry(with: b))  // both at the default
        a.retry.attempts = 3
        #expect(!a.sharesRetry(with: b) && b.retry.attempts == 1)
        b.shareRetry(with: a)  // not equal: nothing changes
        #expect(!a.sharesRetry(with: b) && b.retry.attempts == 1)
        b.retry.attempts = 3
        #expect(!a.sharesRetry(with: b))
        b.shareRetry(with: a)
        #expect(a.sharesRetry(with: b) && a == b.withID("a"))
        let before = b
        b.retry.delayMs = 1
        #expect(!b.sharesRetry(with: before) && before.retry.delayMs == 10_000 && a.retry.delayMs == 10_000)
        b.retry = RetryPolicy()
        #expect(b.sharesRetry(with: JobSpec(id: "c", command: .shell("true"))))
    }

    /// `==` takes -0.0 for 0.0; a shared box must not: the job keeps the jitter it was given.
    @Test func aNegativeZeroJitterIsKeptAndNotShared() {
        var a = JobSpec(id: "a", command: .shell("true"))
        a.retry.jitter = -0.0
        #expect(a.retry.jitter.sign == .minus)
        #expect(!a.sharesRetry(with: JobSpec(id: "b", command: .shell("true"))))
        var b = JobSpec(id: "b", command: .shell("true"))
        b.shareRetry(with: a)
        #expect(b.retry.jitter.sign == .plus && !b.sharesRetry(with: a))
    }

    /// `timeoutMs` is stored without an optional (see `noTimeout`); every value round-trips.
    @Test func timeoutsRoundTrip() {
        var j = JobSpec(id: "a", command: .shell("true"))
        #expect(j.timeoutMs == nil)
        for t: Int64? in [1, 0, -5, .max, .min, nil, 60_000] {
            j.timeoutMs = t
            if t == .min {
                #expect(j.timeoutMs == .min + 1)  // never taken for "none"
            } else {
                #expect(j.timeoutMs == t)
            }
        }
    }

    /// Line and column are stored in 32 bits, clamped, and still order a file's positions.
    @Test func sourceLocationsClampAndOrder() {
        let far = SourceLocation(file: "a.yaml", line: Int.max, column: Int.min)
        #expect(far.line == Int(Int32.max) && far.column == Int(Int32.min))
        var l = SourceLocation(file: "a.yaml", line: 2, column: 9)
        #expect(l < SourceLocation(file: "a.yaml", line: 3, column: 1))
        #expect(SourceLocation(file: "a.yaml", line: 9, column: 9) < SourceLocation(file: "b.yaml", line: 1, column: 1))
        l.column = 10
        #expect(l.description == "a.yaml:2:10")
    }

    @Test func equalityIgnoresTheLocationOnly() {
        let a = sample()
        var moved = a
        moved.location = SourceLocation(file: "b.yaml", line: 9, column: 3)
        #expect(a == moved)
        var changed = a
        changed.killGraceMs = 1
        #expect(a != changed)
        var rareChanged = a
        rareChanged.user = "backup"
        #expect(a != rareChanged)
    }

    /// The point of the layout: a job set, the scheduler's job table and every launch order
    /// hold one pointer to the same fields (with 10,000 jobs, 4.7 MB of duplicates before).
    @Test func theSchedulerAndItsLaunchOrdersShareTheSetsJobs() throws {
        let spec = sample()
        #expect(MemoryLayout<JobSpec>.size == MemoryLayout<Int>.size)
        var set = JobSet()
        set.jobs[spec.id] = spec
        var scheduler = Scheduler(jobs: set, calculator: FakeCalculator(), random: SeededRandom(seed: 1))
        let t0 = Instant(unixMillis: 1_000_000)
        _ = scheduler.handle(.start(restored: RestoredState(), reboot: false), at: t0)
        let actions = scheduler.handle(.trigger("backup"), at: t0)
        let order = try #require(actions.compactMap { if case let .launch(o) = $0 { o } else { nil } }.first)
        #expect(order.job.sharesFields(with: spec))
        #expect(try #require(set.jobs["backup"]).sharesFields(with: spec))
    }
}

extension JobSpec {
    fileprivate func withID(_ id: JobID) -> JobSpec {
        var j = self
        j.id = id
        return j
    }
}
