import SundialTesting
import Synchronization
import Testing

@testable import SundialRuntime

#if canImport(Glibc)
import Glibc
#endif

/// The state store's background worker: order, delays, `sync`, the idle callback, and a thread
/// that exists only while there is work (an idle agent must keep no thread waiting on a timer).
@Suite("Serial worker", .serialized, .offPool)
struct SerialWorkerTests {
    @Test func runsInSubmissionOrderAndSyncWaitsForEarlierWork() {
        let worker = SerialWorker(name: "sw-order")
        let seen = Mutex<[Int]>([])
        for i in 0..<500 { worker.async { seen.withLock { $0.append(i) } } }
        worker.sync()
        #expect(seen.withLock { $0 } == Array(0..<500))
    }

    @Test func delayedWorkRunsInDeadlineOrderAfterItsDelay() async throws {
        let worker = SerialWorker(name: "sw-delay")
        let seen = Mutex<[(Int, ContinuousClock.Instant)]>([])
        let start = ContinuousClock.now
        worker.asyncAfter(milliseconds: 120) { seen.withLock { $0.append((3, .now)) } }
        worker.asyncAfter(milliseconds: 40) { seen.withLock { $0.append((1, .now)) } }
        worker.asyncAfter(milliseconds: 80) { seen.withLock { $0.append((2, .now)) } }
        worker.async { seen.withLock { $0.append((0, .now)) } }
        #expect(try await waitUntil(timeout: .seconds(10)) { seen.withLock { $0.count } == 4 })
        let got = seen.withLock { $0 }
        #expect(got.map(\.0) == [0, 1, 2, 3])
        for (i, at) in got.dropFirst() {
            #expect(at - start >= .milliseconds(40 * i), "item \(i) ran after \(at - start)")
        }
    }

    @Test func threadEndsWhenIdle() async throws {
        let worker = SerialWorker(name: "sw-idle-test")
        for _ in 0..<2 {
            let ran = Atomic<Int>(0)
            for _ in 0..<10 { worker.async { ran.add(1, ordering: .relaxed) } }
            worker.asyncAfter(milliseconds: 30) { ran.add(1, ordering: .relaxed) }
            #expect(try await waitUntil(timeout: .seconds(10)) { ran.load(ordering: .relaxed) == 11 })
            #expect(
                try await waitUntil(timeout: .seconds(10)) { !threadNames().contains("sw-idle-test") },
                "the worker's thread is still there with nothing to do")
        }
    }
}
