import Testing
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import SundialCore
@testable import SundialRuntime

@Suite("Wake timer (real timerfd, bounded)")
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
        let timer = try WakeTimer { continuation.yield(($0, clock.now)) }
        defer { timer.stop() }
        let start = clock.now
        arm(timer)
        return try await withThrowingTaskGroup(of: (WakeTimer.Reason, ContinuousClock.Instant)?.self) { group in
            group.addTask { for await r in stream { return r }; return nil }
            group.addTask { try await Task.sleep(for: limit); return nil }
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

    @Test func theEarlyActionRunsBeforeALongSleepEndsAndNotBeforeAShortOne() async throws {
        let earlyAt = Mutex<ContinuousClock.Instant?>(nil)
        let early = WakeTimer.Early(lead: .milliseconds(150), minimumSleep: .milliseconds(200)) {
            earlyAt.withLock { $0 = $0 ?? .now }
        }
        let (stream, continuation) = AsyncStream<ContinuousClock.Instant>.makeStream()
        let timer = try WakeTimer(early: early) { _ in continuation.yield(.now) }
        defer { timer.stop() }

        // A sleep of 400 ms (>= 200): the early action runs about 150 ms before the wake-up.
        let start = ContinuousClock.now
        timer.arm(at: Self.wallNow() + .milliseconds(400))
        var due: ContinuousClock.Instant?
        for await t in stream { due = t; break }
        let e = try #require(earlyAt.withLock { $0 }, "the early action did not run")
        let d = try #require(due)
        #expect(e < d)
        #expect(e - start >= .milliseconds(150), "early action after \(e - start)")
        #expect(d - e >= .milliseconds(50), "early action only \(d - e) before the wake-up")

        // A sleep of 100 ms (< 200): no early action.
        earlyAt.withLock { $0 = nil }
        timer.arm(at: Self.wallNow() + .milliseconds(100))
        for await _ in stream { break }
        #expect(earlyAt.withLock { $0 } == nil)
        continuation.finish()
    }

    @Test func rearmingReplacesTheEarlierInstant() async throws {
        let result = try await Self.firstWake(arm: { timer in
            timer.arm(at: Self.wallNow() + .milliseconds(50))
            timer.arm(at: nil)
        }, limit: .milliseconds(600))
        #expect(result == nil)
    }
}
