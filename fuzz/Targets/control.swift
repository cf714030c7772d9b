import SundialCore
import SundialRuntime

/// Fuzzes the control protocol's line decoder, on both ends of the socket: the agent decodes
/// requests from any local client, the CLI decodes the agent's replies. Both must throw a
/// `ControlProtocolError` on bad input, never trap; a decoded message must re-encode to a line
/// that decodes (a request: to the same request). A reply's body also goes through every
/// report reader the CLI uses (`status`, `trigger`, `history`, `why`, `reload`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let line = Array(UnsafeBufferPointer(start: data, count: size))
    if let request = try? ControlRequest(line: line) {
        let wire = request.line
        guard wire.last == UInt8(ascii: "\n"), let back = try? ControlRequest(line: Array(wire.dropLast())) else {
            fatalError("a decoded request does not survive its own encoding: \(String(decoding: wire, as: UTF8.self))")
        }
        guard back == request else { fatalError("request round trip changed it: \(request) -> \(back)") }
    }
    if let response = try? ControlResponse(line: line) {
        let wire = response.line
        guard let back = try? ControlResponse(line: Array(wire.dropLast())) else {
            fatalError("a decoded reply does not survive its own encoding: \(String(decoding: wire, as: UTF8.self))")
        }
        _ = back
        // The CLI reads the reply's body as the report of the op it sent; try each reader.
        _ = try? StatusReport(json: response.body)
        _ = try? TriggerReport(json: response.body)
        _ = try? HistoryReport(json: response.body)
        _ = try? WhyReport(json: response.body)
        _ = try? ReloadReport(json: response.body)
    }
    return 0
}
