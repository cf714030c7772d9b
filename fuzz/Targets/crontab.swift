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
