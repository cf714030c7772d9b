/// "did you mean `timeout`?" suggestions by edit distance.
public enum DidYouMean {
    /// The longest word a suggestion is looked for: the longest name a job file has (a job id)
    /// is 63 bytes.
    static let maxWordBytes = 128

    /// The closest candidate within a distance that scales with the word's length, if any.
    public static func suggest(_ word: String, from candidates: some Sequence<String>) -> String? {
        // Bounded whatever the word: a word of hostile length (a key in a job file, a job id on
        // the control socket) is no typo, and the table below costs |word| × |candidate| cells
        // per candidate, for every candidate.
        guard word.utf8.count <= maxWordBytes else { return nil }
        let w = Array(word.lowercased().unicodeScalars)
        let limit = max(1, min(3, w.count / 3))
        var best: (String, Int)?
        for c in candidates {
            let candidate = Array(c.lowercased().unicodeScalars)
            // The distance is at least the difference in length: skip those out of reach.
            guard abs(candidate.count - w.count) <= limit else { continue }
            let d = distance(w, candidate)
            if d <= limit, d < (best?.1 ?? .max) { best = (c, d) }
        }
        return best?.0
    }

    /// A hint sentence, or nil.
    public static func hint(_ word: String, from candidates: some Sequence<String>) -> String? {
        suggest(word, from: candidates).map { "did you mean `\($0)`?" }
    }

    /// Damerau-Levenshtein distance (optimal string alignment), so `timeuot` is one edit away.
    static func distance(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var prev2 = [Int](repeating: 0, count: b.count + 1)
        var prev = Array(0...b.count)
        var cur = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            cur[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { cur[j] = min(cur[j], prev2[j - 2] + 1) }
            }
            (prev2, prev, cur) = (prev, cur, prev2)
        }
        return prev[b.count]
    }
}
