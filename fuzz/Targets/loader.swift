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
    // TEMPORARY, until the libyaml-based YAMLReader lands: the current reader (Yams) overflows
    // the stack on deeply nested flow collections (e.g. 700 `[`), a known bug being fixed by
    // the reader's replacement. Skip such inputs so the fuzzer can find everything else.
    // Remove this guard when YAMLReader no longer uses Yams.
    if bytes.lazy.filter({ $0 == UInt8(ascii: "[") || $0 == UInt8(ascii: "{") }).count > 200 { return 0 }

    let result = loader.load([.init(path: "f.yaml", bytes: bytes)])
    if let set = result.jobSet {
        guard JobSetDiff(old: set, new: set).isEmpty else { fatalError("a job set differs from itself") }
        guard JobSetDiff(old: JobSet(), new: set).added.count == set.jobs.count else { fatalError("diff against nothing lost jobs") }
    }
    for format in DiagnosticFormat.allCases {
        _ = DiagnosticFormatter(format: format, sources: result.sources).render(result.diagnostics)
    }
    return 0
}

let loader = ConfigLoader(environment: ConfigEnvironment(zoneExists: { _ in true }, fileReadable: { _ in true }))
