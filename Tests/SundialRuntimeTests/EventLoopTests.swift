import CSundialShim
import SundialTesting
import Synchronization
import Testing

@testable import SundialRuntime

#if canImport(Glibc)
import Glibc
#endif

@Suite("Event loop (real epoll, bounded)", .offPool)
struct EventLoopTests {
    /// A pipe whose read end is non-blocking, closed by `close()`.
    struct Pipe {
        let read: Int32
        let write: Int32
        init() throws {
            var fds: [Int32] = [-1, -1]
            try #require(sundial_pipe_cloexec(&fds) == 0)
            _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
            read = fds[0]
            write = fds[1]
        }
        func send(_ byte: UInt8 = 1) {
            var b = byte
            _ = Glibc.write(write, &b, 1)
        }
        func drain() -> Int {
            var buf = [UInt8](repeating: 0, count: 64)
            var total = 0
            while true {
                let n = Glibc.read(read, &buf, buf.count)
                if n <= 0 { return total }
                total += n
            }
        }
        func close() {
            Glibc.close(read)
            Glibc.close(write)
        }
    }

    /// The kernel's name of the calling thread (`/proc/thread-self/comm`).
    static func currentThreadName() -> String {
        guard let f = fopen("/proc/thread-self/comm", "r") else { return "?" }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 64)
        guard fgets(&line, Int32(line.count), f) != nil else { return "?" }
        return String(String(cString: line).prefix { $0 != "\n" })
    }

    static func waitUntil(_ limit: Duration = .seconds(10), _ condition: () -> Bool) async throws -> Bool {
        let clock = ContinuousClock()
        let end = clock.now + limit
        while clock.now < end {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(2))
        }
        return condition()
    }

    @Test func callsTheHandlerOfEachReadableDescriptorOnItsThread() async throws {
        let loop = try EventLoop(name: "test-loop")
        defer { loop.stop() }
        let pipes = try (0..<3).map { _ in try Pipe() }
        defer { pipes.forEach { $0.close() } }
        let seen = Mutex<[Int]>([])
        let threads = Mutex<Set<String>>([])
        for (i, p) in pipes.enumerated() {
            let r = loop.add(p.read) {
                _ = p.drain()
                threads.withLock { _ = $0.insert(Self.currentThreadName()) }
                seen.withLock { $0.append(i) }
            }
            #expect(r != nil)
        }
        pipes[2].send()
        pipes[0].send()
        pipes[1].send()
        #expect(try await Self.waitUntil { seen.withLock { Set($0) } == [0, 1, 2] })
        #expect(threads.withLock { $0 } == ["test-loop"])
    }

    /// `sundial run` runs the loop on its main thread: handlers run on the thread that called
    /// `runOnCurrentThread`, and `stop` from elsewhere makes it return (and waits for that).
    @Test func aLoopRunByItsCreatorsThread() async throws {
        let loop = try EventLoop(name: "unused", startsThread: false)
        let p = try Pipe()
        defer { p.close() }
        let seen = Mutex<[String]>([])
        // The second call is slow (100 ms) and marks its end: `stop`, called while it runs, must
        // return only after it (and the loop) have ended. Marked inside the loop, so the check
        // cannot race with the thread's own return from `runOnCurrentThread`.
        let handlerEnded = Atomic<Bool>(false)
        _ = loop.add(p.read) {
            _ = p.drain()
            let calls = seen.withLock {
                $0.append(Self.currentThreadName())
                return $0.count
            }
            if calls == 2 {
                usleep(100_000)
                handlerEnded.store(true, ordering: .releasing)
            }
        }
        let returned = Atomic<Bool>(false)
        let thread = try #require(
            JoinableThread(name: "test-main") {
                loop.runOnCurrentThread()
                returned.store(true, ordering: .releasing)
            })
        p.send()
        #expect(try await Self.waitUntil { seen.withLock { $0 } == ["test-main"] })
        let runningBefore = returned.load(ordering: .acquiring)
        #expect(!runningBefore)
        p.send()
        #expect(try await Self.waitUntil { seen.withLock { $0.count } == 2 })
        loop.stop()
        let endedFirst = handlerEnded.load(ordering: .acquiring)
        #expect(endedFirst, "stop returned while a handler was still running")
        thread.join()
        let returnedAfterJoin = returned.load(ordering: .acquiring)
        #expect(returnedAfterJoin)
        // Stopped: running it again returns at once.
        loop.runOnCurrentThread()
    }

    /// An actor whose executor is the loop, as the agent's is.
    actor OnLoop {
        nonisolated let loop: EventLoop
        var order: [Int] = []
        init(_ loop: EventLoop) { self.loop = loop }
        nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }
        func record(_ i: Int) -> String {
            order.append(i)
            return EventLoopTests.currentThreadName()
        }
        func recorded() -> [Int] { order }
    }

    /// The loop is the executor of an actor and of tasks that prefer it: their code runs on the
    /// loop's thread, interleaved with its handlers, in the order the jobs were enqueued, from
    /// the loop's thread (no wake-up needed) and from others (through its eventfd).
    @Test func anActorAndTasksRunOnTheLoopsThread() async throws {
        let loop = try EventLoop(name: "test-exec")
        defer { loop.stop() }
        let actor = OnLoop(loop)
        #expect(await actor.record(0) == "test-exec")
        let onLoop = await Task.detached(executorPreference: loop) { () -> (String, Bool) in
            (Self.currentThreadName(), loop.inLoopThread)
        }.value
        #expect(onLoop == ("test-exec", true))
        #expect(!loop.inLoopThread)
        // From a handler (the loop's own thread): enqueued without a wake-up, run in order.
        let p = try Pipe()
        defer { p.close() }
        let reg = loop.add(p.read) {
            _ = p.drain()
            for i in 1...100 { Task(executorPreference: loop) { _ = await actor.record(i) } }
        }
        defer { if let reg { loop.remove(reg, fd: p.read) } }
        p.send()
        var order = await actor.recorded()
        let end = ContinuousClock.now + .seconds(10)
        while order.count < 101, ContinuousClock.now < end {
            try await Task.sleep(for: .milliseconds(2))
            order = await actor.recorded()
        }
        #expect(order == Array(0...100), "\(order)")
        // From other threads at once: every job runs, none is lost while the loop sleeps.
        await withTaskGroup(of: Void.self) { g in
            for t in 0..<4 {
                g.addTask { for i in 0..<250 { _ = await actor.record(1000 + t * 1000 + i) } }
            }
        }
        #expect(await actor.recorded().count == 1101)
    }

    /// A stopped loop's thread no longer counts as the loop's: glibc hands a joined thread's
    /// handle to the next thread it creates, which must not pass for the loop.
    @Test func aThreadAfterTheLoopsIsNotTheLoop() throws {
        let loop = try EventLoop(name: "test-gone")
        let old = try #require(loop.thread)
        loop.stop()
        let sameHandle = Atomic<Bool>(false)
        let onLoop = Atomic<Bool>(true)
        let next = try #require(
            JoinableThread(name: "test-next") {
                sameHandle.store(pthread_equal(old, pthread_self()) != 0, ordering: .relaxed)
                onLoop.store(loop.inLoopThread, ordering: .relaxed)
            })
        next.join()
        let passed = onLoop.load(ordering: .relaxed)
        let reused = sameHandle.load(ordering: .relaxed)
        #expect(!passed, "a new thread (same handle as the loop's: \(reused)) passed for the loop")
    }

    @Test func aRemovedRegistrationIsNotCalledAgain() async throws {
        let loop = try EventLoop(name: "test-loop")
        defer { loop.stop() }
        let a = try Pipe()
        let b = try Pipe()
        defer {
            a.close()
            b.close()
        }
        let calls = Mutex<[String]>([])
        let ra = try #require(
            loop.add(a.read) {
                _ = a.drain()
                calls.withLock { $0.append("a") }
            })
        _ = loop.add(b.read) {
            _ = b.drain()
            calls.withLock { $0.append("b") }
        }
        loop.remove(ra, fd: a.read)
        // `a` becomes readable after its removal, then `b` does: once b's handler ran, the loop
        // has been through a wait that would have reported `a` had it still been registered.
        a.send()
        b.send()
        #expect(try await Self.waitUntil { calls.withLock { $0.contains("b") } })
        #expect(calls.withLock { $0 } == ["b"])
    }

    @Test func stopEndsTheThreadAndRefusesNewRegistrations() throws {
        let loop = try EventLoop(name: "test-loop")
        let p = try Pipe()
        defer { p.close() }
        loop.stop()
        loop.stop()  // idempotent
        #expect(loop.thread == nil)
        #expect(loop.add(p.read) {} == nil)
    }

    @Test func aHandlerMayStopTheLoop() async throws {
        let loop = try EventLoop(name: "test-loop")
        let p = try Pipe()
        defer { p.close() }
        let stopped = Mutex(false)
        _ = loop.add(p.read) {
            loop.stop()
            stopped.withLock { $0 = true }
        }
        p.send()
        #expect(try await Self.waitUntil { stopped.withLock { $0 } })
        #expect(loop.thread == nil)
    }

    /// `remove` from another thread returns only after a handler call in progress has ended,
    /// so its owner may close the descriptor at once (ConfigWatcher.stop relies on it).
    @Test func removeWaitsForAHandlerCallInProgress() async throws {
        let loop = try EventLoop(name: "test-loop")
        defer { loop.stop() }
        let p = try Pipe()
        defer { p.close() }
        let inHandler = Mutex(false)
        let handlerDone = Mutex(false)
        let r = try #require(
            loop.add(p.read) {
                _ = p.drain()
                inHandler.withLock { $0 = true }
                var pause = timespec(tv_sec: 0, tv_nsec: 300_000_000)
                nanosleep(&pause, nil)
                handlerDone.withLock { $0 = true }
            })
        p.send()
        #expect(try await Self.waitUntil { inHandler.withLock { $0 } })
        loop.remove(r, fd: p.read)
        #expect(handlerDone.withLock { $0 }, "remove returned while the handler was still running")
    }
}
