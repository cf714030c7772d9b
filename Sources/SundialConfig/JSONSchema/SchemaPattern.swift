import Synchronization

/// A compiled `pattern` / `patternProperties` regular expression.
///
/// JSON Schema patterns are ECMA-262 regular expressions; Swift's `Regex` is close enough for
/// the patterns config schemas use, once configured like ECMA-262's `u` mode:
/// - `.matchingSemantics(.unicodeScalar)`: `.` and classes match one code point, as in ECMA-262
///   with `u` (Swift's default matches whole grapheme clusters, so `^.$` would accept `e\u{301}`);
/// - `.asciiOnlyDigits()` / `.asciiOnlyWordCharacters()`: ECMA-262 `\d`, `\w` and `\b` are ASCII
///   only (Swift's are Unicode-aware). `\s` is Unicode whitespace in both.
/// - `$` without the `m` flag matches only at the very end in both (no "before a final newline"
///   as in PCRE), and `.` does not match `\n` in either.
/// Remaining differences: Swift accepts some syntax ECMA-262 rejects (possessive quantifiers,
/// `\Q…\E`, inline `(?i)`, POSIX `[[:alpha:]]`), and ECMA-262's `\cX` and `[^]` are not supported.
/// Patterns are searched, not anchored (`"a+"` matches `"xxaayy"`), as the spec requires.
///
/// Most patterns run on ``PatternProgram`` instead (exact ECMA-262 semantics for its subset);
/// `Regex` handles the rest and vets their syntax. For a pattern in that subset the `Regex` is
/// built only if a match ever needs it (``PatternProgram`` gives up on a pathological input):
/// building one for each of the schema's patterns was 30 % of the instructions of a loader
/// child with nothing to parse, which every reload starts (docs/benchmarks.md).
///
/// Why the hand-written matcher stays (issue 15 asked to drop it unless a measurement says it
/// matters; it does): `sundial validate` of 10,000 jobs makes about 52,500 pattern matches.
/// `PatternProgram` costs about 4,000 instructions (≈ 0.4 µs) per match, 21 ms in all; `Regex`
/// took 0.8–2.9 µs per match on the same values (`sundial-bench patterns`: job id 0.8 µs,
/// duration 2.9 µs, zone 1.2 µs), about 80–100 ms in all, which alone would be half of the
/// 0.2 s target for that command (docs/benchmarks.md, "Configuration path speed").
final class SchemaPattern: Sendable, Hashable {
    // A class so that copying a check that holds it costs one retain.
    let source: String
    private let program: PatternProgram?
    /// The `Regex`, configured as above: built in `init` when there is no program, else on
    /// first need. Behind a lock: `Regex` is not Sendable, and validations run on several
    /// threads at once (a pattern outside the fast subset is rare: none of Sundial's is).
    private let regex: Mutex<Regex<AnyRegexOutput>?>

    init?(_ source: String) {
        self.source = source
        program = PatternProgram(source)
        if program == nil {
            guard let r = Self.regex(source) else { return nil }
            regex = Mutex(r)
        } else {
            regex = Mutex(nil)
        }
    }

    private static func regex(_ source: String) -> Regex<AnyRegexOutput>? {
        (try? Regex(source))?.matchingSemantics(.unicodeScalar).asciiOnlyDigits().asciiOnlyWordCharacters()
    }

    /// Whether this pattern runs on the fast matcher (for tests).
    var usesFastMatcher: Bool { program != nil }

    func matches(_ s: String) -> Bool {
        if let program, let result = program.matches(s) { return result }
        return regex.withLock { regex in
            if regex == nil { regex = Self.regex(source) }
            // ECMA-262 syntax that `Regex` does not parse (`[]`), on an input the program gave
            // up on: no match, rather than a guess.
            guard let regex else { return false }
            return s.contains(regex)
        }
    }

    static func == (a: SchemaPattern, b: SchemaPattern) -> Bool { a.source == b.source }
    func hash(into h: inout Hasher) { h.combine(source) }
}
