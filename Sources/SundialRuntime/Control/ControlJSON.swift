import Foundation
import SundialCore

/// JSON text → ``JSONValue`` for the control protocol.
///
/// Foundation's `JSONSerialization` for now, behind this one function, so it can be swapped for
/// the core's own parser when that lands (the core must not use Foundation; the runtime may).
enum ControlJSON {
    struct ParseError: Error, CustomStringConvertible {
        var description: String
    }

    static func parse(_ bytes: [UInt8]) throws(ParseError) -> JSONValue {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        } catch {
            throw ParseError(description: "not valid JSON")
        }
        return try convert(object)
    }

    private static func convert(_ any: Any) throws(ParseError) -> JSONValue {
        switch any {
        case is NSNull: return .null
        case let s as String: return .string(s)
        case let n as NSNumber:
            // Booleans arrive as NSNumber too; the type code tells them apart ('c' for Bool,
            // 'd'/'f' for numbers written with a fraction or exponent).
            switch UInt8(bitPattern: n.objCType.pointee) {
            case UInt8(ascii: "c"): return .bool(n.boolValue)
            case UInt8(ascii: "d"), UInt8(ascii: "f"): return .double(n.doubleValue)
            default: return .int(n.int64Value)
            }
        case let a as [Any]:
            var out: [JSONValue] = []
            out.reserveCapacity(a.count)
            for v in a { out.append(try convert(v)) }
            return .array(out)
        case let d as [String: Any]:
            var out: JSONValue = [:]
            // Sorted for a deterministic order; the protocol never depends on key order.
            for k in d.keys.sorted() { out.setField(k, try convert(d[k]!)) }
            return out
        default:
            throw ParseError(description: "unsupported JSON value")
        }
    }
}
