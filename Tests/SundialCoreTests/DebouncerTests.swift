import SundialCore
import SundialTesting
import Testing

/// The debouncer on virtual time: milliseconds are plain numbers, nothing sleeps.
@Suite(.offPool) struct DebouncerTests {
    @Test func nothingPendingNeverFires() {
        var d = Debouncer(quiet: .milliseconds(250))
        #expect(!d.isPending)
        #expect(d.deadline == nil)
        #expect(d.timeout(at: 1_000) == nil)
        #expect(!fire(&d, 1_000_000))
    }

    @Test func firesOnceAQuietPeriodAfterTheLastChange() {
        var d = Debouncer(quiet: .milliseconds(250))
        d.noteChange(at: 1_000)
        #expect(d.deadline == 1_250)
        #expect(d.timeout(at: 1_100) == 150)
        #expect(!fire(&d, 1_249))
        #expect(fire(&d, 1_250))
        #expect(!d.isPending)
        #expect(!fire(&d, 2_000))
    }

    @Test func aBurstOfChangesIsOneNotification() {
        var d = Debouncer(quiet: .milliseconds(250), maxWait: .seconds(5))
        var fired = 0
        // Ten files written 20 ms apart, the loop checking every millisecond.
        var now: Int64 = 0
        while now < 2_000 {
            if now <= 180 && now % 20 == 0 { d.noteChange(at: now) }
            if d.fire(at: now) {
                fired += 1
                #expect(now == 180 + 250)
            }
            now += 1
        }
        #expect(fired == 1)
    }

    @Test func continuingChangesFireAfterMaxWait() {
        var d = Debouncer(quiet: .milliseconds(250), maxWait: .seconds(1))
        var fires: [Int64] = []
        for now in stride(from: Int64(0), through: 3_000, by: 100) {
            d.noteChange(at: now)  // never quiet for 250 ms
            if d.fire(at: now) { fires.append(now) }
        }
        #expect(fires == [1_000, 2_100])
    }

    @Test func maxWaitIsNeverShorterThanQuiet() {
        let d = Debouncer(quiet: .milliseconds(500), maxWait: .milliseconds(100))
        #expect(d.maxWaitMillis == 500)
    }

    @Test func timeoutIsNeverNegative() {
        var d = Debouncer(quiet: .milliseconds(250))
        d.noteChange(at: 0)
        #expect(d.timeout(at: 10_000) == 0)
    }

    @Test func outOfOrderTimesDoNotMoveTheDeadlineBack() {
        var d = Debouncer(quiet: .milliseconds(100))
        d.noteChange(at: 500)
        d.noteChange(at: 400)
        #expect(d.deadline == 600)
    }

    @Test func resetDropsThePendingChange() {
        var d = Debouncer(quiet: .milliseconds(100))
        d.noteChange(at: 0)
        d.reset()
        #expect(!fire(&d, 1_000))
    }

    /// `fire(at:)` is mutating, which `#expect` cannot take directly.
    private func fire(_ d: inout Debouncer, _ now: Int64) -> Bool { d.fire(at: now) }
}
