import SundialConfig

/// Fuzzes `sundial import-crontab`: any crontab text must convert without trapping, and the
/// YAML it writes must load with the real loader without errors, as the importer promises
/// (lines it cannot convert are reported as problems and left out, not written broken).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    // The first byte picks the format: a user's crontab or /etc/crontab (with a user column).
    let system = size > 0 && data[0] & 1 == 1
    let result = CrontabImport.convert(text, options: .init(system: system, fileName: "fuzz.crontab"))
    let loaded = ConfigLoader().load([.init(path: "imported.yaml", bytes: Array(result.yaml.utf8))])
    let errors = loaded.diagnostics.filter { $0.severity == .error }
    guard errors.isEmpty else {
        fatalError("import wrote YAML the loader rejects: \(errors.map(\.description))\n--- YAML ---\n\(result.yaml)")
    }
    return 0
}

/// Builds the importer's and the loader's lazily made shared state (the compiled schema, tables) once before
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
    _ = CrontabImport.convert("SHELL=/bin/sh\nCRON_TZ=UTC\n@daily x\n0 1 * * * y%z\n", options: .init(system: false))
    for text in warmUpFiles { _ = ConfigLoader().load([.init(path: "warm.yaml", bytes: Array(text.utf8))]) }
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
