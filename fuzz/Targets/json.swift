import SundialCore

/// Fuzzes ``JSONParser`` (control replies, schema documents): any bytes must parse or throw,
/// never trap; and what parses must survive an encode → parse round trip unchanged.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let value = try? JSONParser.parse(bytes) else { return 0 }
    var encoded: [UInt8] = []
    value.encode(into: &encoded)
    let again: JSONValue
    do {
        again = try JSONParser.parse(encoded)
    } catch {
        fatalError("encoded JSON does not parse: \(error): \(String(decoding: encoded, as: UTF8.self))")
    }
    guard again.isJSONEqual(to: value) else {
        fatalError("JSON round trip changed the value: \(String(decoding: encoded, as: UTF8.self))")
    }
    return 0
}
