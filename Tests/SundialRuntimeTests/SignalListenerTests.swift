import Foundation
@testable import SundialRuntime
import Testing
import SundialTesting

@Suite(.offPool) struct SignalListenerTests {
    @Test func deliversABlockedSignal() async throws {
        // In the agent, prepareProcess() blocks the signals in every thread, so a signal sent to
        // the process stays pending for the listener. A test process already has threads that
        // do not block them, so the test aims the signal at the thread that reads the signalfd:
        // the event loop's.
        let loop = try EventLoop(name: "test-loop")
        defer { loop.stop() }
        let listener = try SignalListener([SIGWINCH, SIGUSR2], loop: loop)
        defer { listener.stop() }
        let thread = try #require(loop.thread)
        let got = try await withDeadline(10) {
            #expect(pthread_kill(thread, SIGUSR2) == 0)
            for await sig in listener.signals { return sig }
            return Int32(-1)
        }
        #expect(got == SIGUSR2)
    }
}
