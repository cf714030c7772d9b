import Foundation
import SundialTesting
import Synchronization
import Testing

@testable import SundialRuntime

@Suite(.offPool) struct SignalListenerTests {
    /// In the agent, prepareProcess() blocks the signals in every thread, so a signal sent to the
    /// process stays pending for the listener. A test process already has threads that do not
    /// block them, so the test aims each signal at the thread that reads the signalfd: the event
    /// loop's. Each signal reaches the handler on that thread, in order, without a buffer between.
    @Test func handsEachSignalToTheHandlerOnTheLoopThread() async throws {
        let loop = try EventLoop(name: "test-loop")
        defer { loop.stop() }
        let seen = Mutex<[(Int32, String)]>([])
        let listener = try SignalListener([SIGWINCH, SIGUSR2], loop: loop) { sig in
            seen.withLock { $0.append((sig, EventLoopTests.currentThreadName())) }
        }
        defer { listener.stop() }
        let thread = try #require(loop.thread)
        for (i, sig) in [SIGUSR2, SIGWINCH, SIGUSR2].enumerated() {
            #expect(pthread_kill(thread, sig) == 0)
            // One at a time: the kernel keeps one pending instance of each standard signal.
            #expect(try await EventLoopTests.waitUntil { seen.withLock { $0.count } == i + 1 })
        }
        let got = seen.withLock { $0 }
        #expect(got.map(\.0) == [SIGUSR2, SIGWINCH, SIGUSR2])
        #expect(got.allSatisfy { $0.1 == "test-loop" }, "\(got.map(\.1))")
        // Stopped: the handler is not called again.
        listener.stop()
        #expect(pthread_kill(thread, SIGUSR2) == 0)
        // A later readiness on the same loop proves a turn after the signal: none reached the handler.
        let marker = try EventLoopTests.Pipe()
        defer { marker.close() }
        let turned = Atomic<Bool>(false)
        _ = loop.add(marker.read) {
            _ = marker.drain()
            turned.store(true, ordering: .releasing)
        }
        marker.send()
        #expect(try await EventLoopTests.waitUntil { turned.load(ordering: .acquiring) })
        #expect(seen.withLock { $0.count } == 3)
    }
}
