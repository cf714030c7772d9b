import SundialConfig
import SundialCore

/// Fuzzes the agent's decoder of the loader child's answer (`LoaderWire`): whatever a crashed
/// or compromised child sends, decoding must not trap, and an answer that decodes must survive
/// its own round trip (encode what was decoded, decode it again, get the same set back).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let result = try? LoaderWire.decode(bytes, maxBytes: 1 << 20) else { return 0 }
    guard let again = try? LoaderWire.decode(LoaderWire.encode(result), maxBytes: 1 << 22) else {
        fatalError("a decoded answer does not decode after encoding it again")
    }
    guard again.jobSet == result.jobSet else { fatalError("the job set changed in a round trip") }
    guard again.jobSet?.jobs.values.map(\.location) == result.jobSet?.jobs.values.map(\.location) else {
        fatalError("positions changed in a round trip")
    }
    return 0
}
