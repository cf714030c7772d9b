import SundialRuntime

/// Fuzzes the metrics endpoint's request parser (``HTTPRequestHead``), which reads whatever a
/// local client sends. Any bytes must give `incomplete`, a request or a 4xx, never trap; the
/// server feeds it a growing buffer, so every prefix is tried too (cheap: heads are small).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let limit = MetricsHTTPServer.maxRequestBytes
    let whole = HTTPRequestHead.parse(bytes, limit: limit)
    switch whole {
    case .incomplete:
        guard bytes.count < limit else { fatalError("\(bytes.count) bytes without a head end are still 'incomplete'") }
    case let .invalid(status, _):
        guard status == 400 || status == 431 else { fatalError("unexpected status \(status)") }
    case let .request(method, target):
        guard !method.isEmpty, target.hasPrefix("/") else { fatalError("bad request accepted: \(method) \(target)") }
    }
    // Like the server: parse after each chunk until the answer is no longer `incomplete`.
    // Once a prefix decides, the decision must be the one the whole input gives.
    var end = 1
    while end < bytes.count {
        let partial = HTTPRequestHead.parse(Array(bytes[..<end]), limit: limit)
        if partial != .incomplete {
            guard partial == whole else { fatalError("prefix of \(end) bytes gives \(partial), the whole \(whole)") }
            break
        }
        end += max(1, bytes.count / 16)
    }
    return 0
}
