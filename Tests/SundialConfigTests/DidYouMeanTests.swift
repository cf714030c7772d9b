import Foundation
import SundialTesting
import Synchronization
import Testing

@testable import SundialConfig

/// "Did you mean" suggestions: what they find, and that a word of hostile length costs nothing.
@Suite("Did you mean", .offPool)
struct DidYouMeanTests {
    @Test func theClosestCandidateWithinReachIsSuggested() {
        #expect(DidYouMean.suggest("timeuot", from: ["timeout", "retry"]) == "timeout")
        #expect(DidYouMean.suggest("hourli", from: ["hourly", "hour"]) == "hourly")
        // Three insertions away from a nine-letter word: still in reach (limit 3).
        #expect(DidYouMean.suggest("abcdefghi", from: ["abcdefghijkl"]) == "abcdefghijkl")
        #expect(DidYouMean.suggest("abcdefghi", from: ["abcdefghijklm"]) == nil)
        #expect(DidYouMean.suggest("zzz", from: ["hourly"]) == nil)
    }

    /// A 60-byte job id with one typo still finds its job among thousands of others.
    @Test func aLongIDFindsItsJobAmongMany() {
        let ids = (0..<5_000).map { "job-\($0)" } + [String(repeating: "x", count: 59) + "y"]
        #expect(DidYouMean.suggest(String(repeating: "x", count: 59) + "z", from: ids) == ids.last)
    }

    /// The edit-distance table is |word| × |candidate| cells per candidate: a megabyte-long word
    /// against 10,000 ids was some 10^11 cells (hours) before words that long were refused and
    /// candidates out of reach by length skipped. It now answers at once. The search runs on a
    /// thread of its own with a deadline (generous, for debug builds on a busy machine), so a
    /// regression fails the test instead of holding the suite.
    @Test func aWordOfHostileLengthIsAnsweredAtOnce() async throws {
        let answered = Mutex<[String?]?>(nil)
        let thread = Thread {
            let ids = (0..<10_000).map { "job-number-\($0)" }
            let answers = [
                DidYouMean.suggest(String(repeating: "a", count: 1_000_000), from: ids),
                // A word short enough to be looked for, against long candidates: out of reach by
                // length, skipped (120 × 20,000 cells each for 2,000 of them, minutes, before).
                DidYouMean.suggest(String(repeating: "a", count: 120), from: Array(repeating: String(repeating: "b", count: 20_000), count: 2_000)),
            ]
            answered.withLock { $0 = answers }
        }
        thread.start()
        let deadline = ContinuousClock.now + .seconds(20)
        while answered.withLock({ $0 }) == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        let answers = try #require(answered.withLock { $0 }, "no answer within 20 s")
        #expect(answers == [nil, nil])
    }
}
