import CSundialShim

#if canImport(Glibc)
import Glibc
#endif

/// `sundial-bench patterns [N]`: what the schema's patterns would cost on the standard library's
/// `Regex` (configured as `SchemaPattern` configures it), per match, on the values a generated
/// job set holds. Issue 15 asked to replace the hand-written `PatternProgram` by `Regex` unless
/// a measurement shows it matters; `sundial validate` of 10,000 jobs makes about 52,500
/// pattern matches (5.25 per job, counted with callgrind), so this figure times 52,500 is what
/// `Regex` would add, against `PatternProgram`'s measured cost (docs/benchmarks.md).
func benchmarkPatterns(_ args: [String]) {
    let n = max(1000, args.first.flatMap { Int($0) } ?? 200_000)
    let cases: [(String, [String])] = [
        ("^[a-z0-9][a-z0-9_.-]{0,62}$", ["job-12-34", "job-99-1", "backup.db-nightly"]),
        ("^([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$", ["10m", "25s", "1h30m", "500ms"]),
        ("^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$", ["Europe/Berlin", "UTC", "America/Los_Angeles"]),
        ("^[A-Za-z_][A-Za-z0-9_]*$", ["APP_ENV", "REGION"]),
    ]
    for (source, values) in cases {
        guard let plain = try? Regex(source) else {
            print("patterns: \(source) does not compile")
            continue
        }
        let regex = plain.matchingSemantics(.unicodeScalar).asciiOnlyDigits().asciiOnlyWordCharacters()
        var hits = 0
        let t0 = cpuNanoseconds()
        for i in 0..<n where values[i % values.count].contains(regex) { hits += 1 }
        let perMatch = Double(cpuNanoseconds() - t0) / Double(n)
        print("patterns: Regex \(source): \(Int(perMatch)) ns per match (\(hits) of \(n) matched)")
    }
}

private func cpuNanoseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}
