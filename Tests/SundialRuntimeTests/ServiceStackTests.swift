import SundialTesting
import Testing

@testable import SundialRuntime

/// The agent's services stop in the reverse order of their start, each once, on every way out
/// of `AgentHost.run` (ServiceStack replaced eleven hand-ordered `defer`s).
@Suite(.offPool) struct ServiceStackTests {
    final class Journal {
        var lines: [String] = []
    }

    @Test func stopsInReverseOrderOnceEach() {
        let journal = Journal()
        let stack = ServiceStack()
        for name in ["lock", "store", "loop", "timer", "watcher"] {
            stack.started(name) { journal.lines.append(name) }
        }
        #expect(stack.running == ["lock", "store", "loop", "timer", "watcher"])
        stack.stopAll()
        #expect(journal.lines == ["watcher", "timer", "loop", "store", "lock"])
        #expect(stack.stopped == journal.lines)
        stack.stopAll()
        #expect(journal.lines.count == 5, "a second stopAll stopped something again: \(journal.lines)")
    }

    /// A start-up failure half-way: only what started is stopped, dependents first.
    @Test func anEarlyExitStopsWhatStartedAndNothingElse() {
        let journal = Journal()
        func run(failAt: Int) -> Int32 {
            let stack = ServiceStack()
            defer { stack.stopAll() }
            for (i, name) in ["lock", "store", "loop", "timer"].enumerated() {
                if i == failAt { return 1 }
                stack.started(name) { journal.lines.append(name) }
            }
            return 0
        }
        #expect(run(failAt: 2) == 1)
        #expect(journal.lines == ["store", "lock"])
    }

    /// Dropped without `stopAll` (a path that forgot it): the services still stop, in order.
    @Test func deinitStopsWhatIsLeft() {
        let journal = Journal()
        do {
            let stack = ServiceStack()
            stack.started("a") { journal.lines.append("a") }
            stack.started("b") { journal.lines.append("b") }
        }
        #expect(journal.lines == ["b", "a"])
    }
}
