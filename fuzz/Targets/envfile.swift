import SundialRuntime

/// Fuzzes the `env_file` parser with the same decoding `EnvironmentFile.load` applies to the
/// file's bytes. Any content must parse or throw a `LaunchError`, never trap; parsed keys must
/// be valid names and values must be free of NUL (they become a child's environment).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let pairs = try? EnvironmentFile.parse(text, path: "fuzz.env") else { return 0 }
    for (key, value) in pairs {
        guard let first = key.utf8.first, first == UInt8(ascii: "_") || (first | 0x20) >= 97 && (first | 0x20) <= 122,
            key.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || ($0 | 0x20) >= 97 && ($0 | 0x20) <= 122 || $0 >= 48 && $0 <= 57 })
        else { fatalError("env_file parser accepted the invalid name '\(key)'") }
        guard !value.utf8.contains(0) else { fatalError("env_file parser accepted a NUL in \(key)") }
    }
    return 0
}
