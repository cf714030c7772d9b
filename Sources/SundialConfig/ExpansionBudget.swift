import Synchronization

/// What a document may still expand to, asked by ``YAMLComposer`` each time the document's
/// scalar bytes (aliases expanded) pass the last answer.
enum ExpansionGrant: Equatable {
    /// Go on, up to this many bytes in all (at least the bytes counted so far).
    case upTo(Int)
    /// Stop here: the files before this one and this one so far hold more than the load's
    /// total. `exact` when every file before it was counted, so "here" is where the total is
    /// crossed; otherwise the loader reads the file again once it knows what the files before
    /// it hold.
    case stop(exact: Bool)
    /// Stop: an earlier file crosses the total, so this one's result is not wanted.
    case abandon
}

/// The running total of the expanded text of one load's files (``ConfigLoader/maxExpandedBytes``),
/// in file order, while the files are parsed on several threads.
///
/// Why a running budget: the total was summed once every file had been parsed, so it bounded
/// the loader's answer but not its work: ten thousand files, each expanding through aliases to
/// just under a document's 16 MiB, were all parsed before the set was refused. Now a document
/// stops once it is known to cross what the files before it leave, and a file after one known
/// to cross is not read.
///
/// Deterministic whatever the threads do: only what is certain is acted on. A file counts
/// against what the files before it are known to hold so far (each file's count as last
/// reported, final once it finished: a lower bound of what they hold), so a file told to stop
/// does cross (the first file that crosses is it or one before it), and so does any file
/// recorded as `stopAt`. The loader then settles the outcome in file order (``ConfigLoader``):
/// the first file whose running total crosses is the one reported, read again with exactly what
/// is left when its stop was not exact.
///
/// The bound counts the later files that finished or got far while an earlier one is slow,
/// not only the finished run of files at the front: with one file stalled, the other threads
/// stop once the files they read cross the total, not after reading the whole set.
final class ExpansionBudget: Sendable {
    /// The load's total.
    let limit: Int
    /// How far past the bytes counted a grant goes: each document asks again at least every
    /// `chunk` bytes, so what the others know of it is at most that far behind, and it learns
    /// within that many that an earlier file crossed the total.
    static let chunk = 1 << 20

    private struct State {
        /// Each file's bytes as last reported (final once it finished), and their sums by
        /// prefix (a Fenwick tree, so that each question costs log(files), not files).
        var reported: [Int]
        var tree: [Int]
        /// The finished files: files `0..<frontier` are all finished.
        var finished: [Bool]
        var frontier = 0
        /// A file known to cross the total (its running total is over it): files after it
        /// are not wanted.
        var stopAt = Int.max

        mutating func report(_ i: Int, _ bytes: Int) {
            var k = i + 1
            let delta = bytes - reported[i]
            reported[i] = bytes
            guard delta != 0 else { return }
            while k < tree.count {
                tree[k] += delta
                k += k & -k
            }
        }

        /// The bytes reported by files `0..<i`.
        func before(_ i: Int) -> Int {
            var k = i
            var sum = 0
            while k > 0 {
                sum += tree[k]
                k -= k & -k
            }
            return sum
        }
    }

    private let state: Mutex<State>

    init(limit: Int, files: Int) {
        self.limit = limit
        state = Mutex(
            State(
                reported: Array(repeating: 0, count: files), tree: Array(repeating: 0, count: files + 1),
                finished: Array(repeating: false, count: files)))
    }

    /// Whether file `i` is still wanted: no earlier file is known to cross the total.
    func wants(_ i: Int) -> Bool { state.withLock { i <= $0.stopAt && $0.before(i) <= limit } }

    /// What file `i`, unfinished, may expand to having counted `used` bytes.
    func grant(file i: Int, used: Int) -> ExpansionGrant {
        state.withLock { s in
            s.report(i, used)
            let before = s.before(i)
            // An earlier file crosses: this one's result is not wanted.
            if s.stopAt < i || before > limit { return .abandon }
            let left = limit - before
            guard used <= left else {
                s.stopAt = min(s.stopAt, i)
                // Exact when every file before it finished: `before` is then what they hold.
                return .stop(exact: s.frontier == i)
            }
            return .upTo(min(left, used + Self.chunk))
        }
    }

    /// Records that file `i` was counted to the end (parsed, or refused for another reason
    /// after `count` bytes).
    func finish(file i: Int, count: Int) {
        state.withLock { s in
            s.report(i, count)
            s.finished[i] = true
            // The finished files at the front are counted exactly: the first of them whose
            // running total crosses is known to.
            while s.frontier < s.finished.count, s.finished[s.frontier] {
                s.frontier += 1
                if s.frontier - 1 < s.stopAt, s.before(s.frontier) > limit { s.stopAt = s.frontier - 1 }
            }
        }
    }

    /// A fixed allowance of `left` bytes, for a file read alone once the files before it are
    /// known: its stop is exact.
    static func fixed(_ left: Int) -> (Int) -> ExpansionGrant {
        { used in used <= left ? .upTo(left) : .stop(exact: true) }
    }
}
