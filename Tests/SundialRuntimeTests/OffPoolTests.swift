import Foundation
import SundialTesting
import Synchronization
import Testing

/// ``offPool(_:)``, which the suite relies on to run in parallel on two cooperative threads.
@Suite("offPool: blocking test code off the cooperative pool", .offPool)
struct OffPoolTests {
    /// The body runs on one of ``TestThreads``' threads, not on a pool thread.
    @Test func theBodyRunsOnATestThread() async throws {
        let name = await offPool { () -> String in
            let comm = try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)
            return (comm ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(name == TestThreads.threadName)
    }

    /// More bodies than the machine has CPUs (so more than the cooperative pool has threads)
    /// block at the same time, each until all have started: on the pool they would wait for
    /// each other until the deadline.
    @Test func blockingBodiesDoNotWaitForEachOther() async throws {
        let parties = ProcessInfo.processInfo.activeProcessorCount + 3
        let arrived = Counter()
        let all = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<parties {
                group.addTask {
                    await offPool { () -> Bool in
                        arrived.value.add(1, ordering: .sequentiallyConsistent)
                        let deadline = ContinuousClock.now + .seconds(20)
                        while arrived.value.load(ordering: .sequentiallyConsistent) < parties, ContinuousClock.now < deadline {
                            usleep(1000)
                        }
                        return arrived.value.load(ordering: .sequentiallyConsistent) == parties
                    }
                }
            }
            return try await group.reduce(true) { $0 && $1 }
        }
        #expect(all, "only \(arrived.value.load(ordering: .sequentiallyConsistent)) of \(parties) bodies ran at once")
    }

    final class Counter: Sendable { let value = Atomic<Int>(0) }

    /// A failing expectation inside the body is the test's own (it runs in the test's task).
    @Test func anIssueInsideIsRecordedForTheTest() async {
        await withKnownIssue {
            await offPool { #expect(Bool(false), "recorded inside offPool") }
        }
    }
}

@Suite("offPool trait", .offPool)
struct OffPoolTraitTests {
    static func threadName() -> String {
        let comm = try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)
        return (comm ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A synchronous test of a suite with the trait runs on a test thread.
    @Test func aSynchronousBodyRunsOnATestThread() {
        #expect(Self.threadName() == TestThreads.threadName)
    }

    /// So does an asynchronous one, after it slept too.
    @Test func anAsynchronousBodyStaysOnTestThreads() async throws {
        #expect(Self.threadName() == TestThreads.threadName)
        try await Task.sleep(for: .milliseconds(10))
        #expect(Self.threadName() == TestThreads.threadName)
    }
}

/// ``TestSlots``: at most `width` tests at once, in arrival order; a time-limited test waits a
/// bounded time, since swift-testing counts that wait against its limit.
@Suite("test slots", .offPool)
struct TestSlotsTests {
    @Test func aBoundedWaitEndsBeyondTheWidthAndFreesNothing() async {
        let slots = TestSlots(width: 1)
        let first = await slots.acquire()
        #expect(first == .held)
        let start = ContinuousClock.now
        let second = await slots.acquire(waitingAtMost: .milliseconds(200))
        #expect(second == .beyondWidth)
        #expect(ContinuousClock.now - start >= .milliseconds(200))
        #expect(slots.waiting == 0)
        slots.release(second)
        #expect(slots.free == 0)
        slots.release(first)
        #expect(slots.free == 1)
    }

    @Test func aSlotReleasedWithinTheWaitIsHandedOver() async throws {
        let slots = TestSlots(width: 1)
        let first = await slots.acquire()
        let start = ContinuousClock.now
        async let second = slots.acquire(waitingAtMost: .seconds(30))
        let deadline = ContinuousClock.now + .seconds(5)
        while slots.waiting == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
        #expect(slots.waiting == 1)
        slots.release(first)
        #expect(await second == .held)
        #expect(ContinuousClock.now - start < .seconds(10))
        #expect(slots.free == 0)
        slots.release(.held)
        #expect(slots.free == 1)
    }

    @Test(.timeLimit(.minutes(1))) func aTimeLimitedTestWaitsAQuarterOfItsLimit() throws {
        #expect(OffPoolTrait.longestSlotWait(for: try #require(Test.current)) == .seconds(15))
    }

    @Test func aTestWithoutATimeLimitWaitsForItsTurn() throws {
        #expect(OffPoolTrait.longestSlotWait(for: try #require(Test.current)) == nil)
    }
}
