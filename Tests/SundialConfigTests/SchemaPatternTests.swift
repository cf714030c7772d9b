import SundialTesting
import Testing

@testable import SundialConfig

/// The hand-written matcher (`PatternProgram`) must agree with Swift's `Regex` (configured as
/// `SchemaPattern` configures it) wherever it accepts a pattern.
@Suite(.offPool) struct SchemaPatternTests {
    static let patterns = [
        "^a*$", "a+", "^[a-z0-9][a-z0-9_.-]{0,62}$", "^([0-9]+(w|d|h|m|s|ms))+$", "^(?:[0-9]+(?:w|d|h|m|s|ms))+$",
        #"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"#,
        "^0?[0-7]{3}$", "^[A-Za-z_][A-Za-z0-9_]*$", "f.*o", #"\bfoo\b"#, #"\Bb"#, #"^\s*$"#, "[^abc]+", "^.$",
        "a{2,3}", "^a{2,}$", "^a{2}$", "x|y|", "^(a|ab)(c|bcd)(d*)$", #"^\d+$"#, #"\w+"#, #"^[\d-]+$"#, #"\u00e9"#,
        #"\u{1F600}"#, "é+", "😀", "^[😀-😂]$", #"\."#, "a.c", "^(a|a)*b$", "^$", "", "(?:)", #"^\D\W\S$"#,
        "^[a-c-]$", #"^[\]\\]+$"#, "^a+?b*?c??$", #"\x41"#, #"^\t\n$"#, "^(ab|cd)+$", "^(a{1,2}){2}$",
    ]
    static let inputs = [
        "", "a", "aa", "aaa", "abc", "xxaayy", "job-1", "Job", "1h30m", "5 minutes", "2030-01-01T10:00:00Z",
        "2030-01-01T10:00:00.5+01:00", "foo", "foo bar", "xfoo", " \t", "é", "e\u{301}", "😀", "😁", "\n", "a\nb",
        "abcd", "abcbcd", "0755", "755", "PATH", "x-y", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "ab", "1-2", "A", "ab\u{7f}",
        "]\\", "!_ ", "x.c", "axc", "abcabc", "ababcd", "aaaa", "aab", "\t\n", "ac", "abbbc", "١٢", "ب",
    ]

    @Test func fastMatcherAgreesWithRegex() throws {
        var fast = 0
        for source in Self.patterns {
            let pattern = try #require(SchemaPattern(source), "\(source)")
            if pattern.usesFastMatcher { fast += 1 }
            let regex = try Regex(source).matchingSemantics(.unicodeScalar).asciiOnlyDigits().asciiOnlyWordCharacters()
            for input in Self.inputs {
                #expect(pattern.matches(input) == input.contains(regex), "pattern \(source) on \(input.debugDescription)")
            }
        }
        #expect(fast == Self.patterns.count, "every pattern above is in the fast matcher's subset")
    }

    @Test func unsupportedSyntaxFallsBackToRegex() throws {
        for (source, input, expected) in [
            (#"^\p{Letter}+$"#, "π", true), ("^(?=a)ab$", "ab", true), (#"^(a)\1$"#, "aa", true),
            ("^(?<x>a)$", "a", true), ("(a*)*b", "aaab", true), ("(a*)*b", "aaa", false),
        ] {
            let p = try #require(SchemaPattern(source))
            #expect(!p.usesFastMatcher, "\(source)")
            #expect(p.matches(input) == expected, "\(source)")
        }
    }

    /// A pattern in the fast matcher's subset does not need a `Regex` to compile: ECMA-262's
    /// `[]` (a class that matches nothing), which Swift's `Regex` does not parse, is accepted.
    /// (The `Regex` is built only if a match ever needs it.)
    @Test func aPatternInTheFastSubsetNeedsNoRegex() throws {
        #expect((try? Regex("^[]$")) == nil, "the premise: Regex refuses `[]`")
        let p = try #require(SchemaPattern("^[]$"))
        #expect(p.usesFastMatcher)
        #expect(!p.matches("a") && !p.matches(""))
    }

    @Test func emptyClasses() throws {
        let none = try #require(PatternProgram("^[]$"))
        #expect(none.matches("a") == false)
        let all = try #require(PatternProgram("^[^]$"))
        #expect(all.matches("\n") == true)
    }

    @Test func pathologicalPatternStaysPolynomial() throws {
        let p = try #require(PatternProgram("^(a|a|aa)*c$"))
        let input = String(repeating: "a", count: 5000)
        let clock = ContinuousClock()
        var result: Bool?
        let elapsed = clock.measure { result = p.matches(input) }
        #expect(result == false)
        #expect(elapsed < .seconds(2))  // exponential backtracking would never finish
    }

    @Test func veryLongInputFallsBack() throws {
        let p = try #require(SchemaPattern("^a+$"))
        #expect(p.matches(String(repeating: "a", count: 5_000_000)))
    }

    @Test func invalidPatternsAreRejected() {
        for source in ["(", "a{2,1}", "[z-a]", "*"] {
            #expect(SchemaPattern(source) == nil, "\(source)")
        }
    }
}
