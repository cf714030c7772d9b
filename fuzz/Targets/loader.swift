import SundialConfig
import SundialCore

/// Fuzzes the whole config loader on one job file: YAML reading with its limits, the JSON
/// Schema, decoding and the cross-file checks, then diagnostic rendering (which quotes the
/// source line under each error). The environment does no I/O: every zone and file "exists".
/// Nothing may trap; a valid set must diff as empty against itself (a reload of an unchanged
/// file must not restart anything) and as all-added against an empty set.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let result = loader.load([.init(path: "f.yaml", bytes: bytes)])
    if let set = result.jobSet {
        guard JobSetDiff(old: set, new: set).isEmpty else { fatalError("a job set differs from itself") }
        guard JobSetDiff(old: JobSet(), new: set).added.count == set.jobs.count else { fatalError("diff against nothing lost jobs") }
    }
    // One format per input, picked by its length, so every format is rendered across the run
    // without tripling each execution's cost (rendering was half of it with all three).
    let formats = DiagnosticFormat.allCases
    let format = formats[size % formats.count]
    _ = DiagnosticFormatter(format: format, sources: result.sources).render(result.diagnostics)
    return 0
}

let loader = ConfigLoader(environment: ConfigEnvironment(zoneExists: { _ in true }, fileReadable: { _ in true }))

/// Builds the loader's lazily made shared state (the compiled schema, tables) once before
/// fuzzing, with LeakSanitizer looking away: Swift keeps enum tags in the spare bits of
/// pointers, so LSan cannot see that a long-lived `JSONValue` tree is still referenced and
/// would report the schema as leaked on the first input. Leaks made by an input still count.
@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutableRawPointer, _ argv: UnsafeMutableRawPointer) -> CInt {
    lsanDisable()
    defer { lsanEnable() }
    // The job schema ships compiled; its JSON document is parsed on first use (by some
    // diagnostics), and kept for the process's life like the program.
    _ = JobSchema.shared.schema.document
    for text in warmUpFiles { _ = loader.load([.init(path: "warm.yaml", bytes: Array(text.utf8))]) }
    return 0
}

@_silgen_name("__lsan_disable") func lsanDisable()
@_silgen_name("__lsan_enable") func lsanEnable()

/// Valid and invalid files that between them reach every stage of the loader.
let warmUpFiles = [
    """
    version: 1
    defaults: { timezone: Europe/Berlin, timeout: 1h, retry: { attempts: 3, backoff: exponential, delay: 10s } }
    jobs:
      backup:
        schedule: { cron: "30 2 * * MON-FRI", dst: { gap: skip, overlap: last } }
        command: [/usr/bin/backup, --all]
        env: { A: b }
      report: { every: 5m, shell: "echo hi", needs: [backup], jitter: 30s }
      once: { at: ["2026-03-08T02:30:00Z"], shell: x }
    """,
    "version: 1\njobs:\n  a: { shedule: x, every: 0s, shell: y, needs: [b, a] }\n  b: { cron: '61 * * * *', shell: 1 }\n",
    "version: 2\njobs: [1, 2]\n",
    "{ jobs: &a { x: *a } }",
]
