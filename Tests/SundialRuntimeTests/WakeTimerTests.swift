import CSundialShim
import SundialCore
import SundialTesting
import Testing

@testable import SundialRuntime

#if canImport(Glibc)
import Glibc
#endif

@Suite("Wake timer (real timerfd, bounded)", .offPool)
struct WakeTimerTests {
    static func wallNow() -> Instant {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Instant(unixMillis: Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000)
    }

    /// Waits for the first reason the timer reports, up to `limit` (a hang guard); returns it
    /// with the time from arming to the timer thread's callback (measured on that thread, so a
    /// busy test pool does not distort it).
    static func firstWake(arm: (WakeTimer) -> Void, limit: Duration = .seconds(30)) async throws -> (WakeTimer.Reason, Duration)? {
        let (stream, continuation) = AsyncStream<(WakeTimer.Reason, ContinuousClock.Instant)>.makeStream()
        let clock = ContinuousClock()
        let loop = try EventLoop(name: "test-loop")
        defer { loop.stop() }
        let timer = try WakeTimer(loop: loop) { continuation.yield(($0, clock.now)) }
        defer { timer.stop() }
        let start = clock.now
        arm(timer)
        return try await withThrowingTaskGroup(of: (WakeTimer.Reason, ContinuousClock.Instant)?.self) { group in
            group.addTask {
                for await r in stream { return r }
                return nil
            }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            let r = try await group.next() ?? nil
            group.cancelAll()
            continuation.finish()
            return r.map { ($0.0, $0.1 - start) }
        }
    }

    @Test func firesAtTheArmedWallTime() async throws {
        let target = Self.wallNow() + .milliseconds(80)
        let result = try #require(try await Self.firstWake { $0.arm(at: target) })
        #expect(result.0 == .due)
        #expect(Self.wallNow() >= target)
        #expect(result.1 < .seconds(2))
    }

    @Test func aPastInstantFiresAtOnce() async throws {
        let result = try #require(try await Self.firstWake { $0.arm(at: Self.wallNow() - .seconds(10)) })
        #expect(result.0 == .due)
        #expect(result.1 < .milliseconds(500))
    }

    @Test func rearmingReplacesTheEarlierInstant() async throws {
        let result = try await Self.firstWake(
            arm: { timer in
                timer.arm(at: Self.wallNow() + .milliseconds(50))
                timer.arm(at: nil)
            }, limit: .milliseconds(600))
        #expect(result == nil)
    }

    /// Issue 16: `arm` after `stop` touched a descriptor the timer thread had already closed,
    /// whose number the next `open` could reuse. The descriptor now lives until `deinit`.
    @Test func armingAfterStopTouchesOnlyTheTimersOwnDescriptor() throws {
        let loop = try EventLoop(name: "test-loop")
        defer { loop.stop() }
        let timer = try WakeTimer(loop: loop) { _ in }
        let fd = timer.descriptorForTesting
        timer.stop()
        // Descriptors opened now must not reuse the timer's number while the timer lives.
        var opened: [Int32] = []
        defer { for f in opened { close(f) } }
        for _ in 0..<8 { opened.append(open("/dev/null", O_RDONLY | O_CLOEXEC)) }
        #expect(!opened.contains(fd))
        timer.arm(at: Self.wallNow() + .seconds(60))
        var link = [CChar](repeating: 0, count: 256)
        let n = readlink("/proc/self/fd/\(fd)", &link, link.count - 1)
        #expect(n > 0 && String(cString: link).contains("timerfd"))
    }
}
