import OrderedCollections
import SundialCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Replaces the values of jobs' `secrets` variables with `***` in every string of an event
/// (fields, nested arrays and objects; not keys or the event name), wherever they appear: a
/// command line, an output line, an error message.
///
/// Values are matched as bytes, longest first, so a secret containing another is masked whole.
/// Empty values are ignored (they would match everywhere). The set only grows until
/// ``replaceAll(with:)``, so a secret stays masked after its job is removed.
public final class SecretMasker: Sendable {
    public static let mask = "***"
    private let secrets = ReadMostly<[[UInt8]]>([])
    /// Lets the common case (no secrets at all) skip even the read lock.
    private let empty = Atomic<Bool>(true)

    public init(_ values: some Sequence<String> = [String]()) { add(values) }

    /// Adds secret values (e.g. ``LaunchSpec/secretValues`` before a launch).
    public func add(_ values: some Sequence<String>) {
        let new = values.filter { !$0.isEmpty }.map { Array($0.utf8) }
        guard !new.isEmpty else { return }
        secrets.write { list in
            for v in new where !list.contains(v) { list.append(v) }
            list.sort { $0.count > $1.count }
        }
        empty.store(false, ordering: .releasing)
    }

    /// Replaces the whole set (after a reload, with every job's current values).
    public func replaceAll(with values: some Sequence<String>) {
        secrets.write { $0 = [] }
        empty.store(true, ordering: .releasing)
        add(values)
    }

    public var isEmpty: Bool { empty.load(ordering: .acquiring) }

    public func mask(_ text: String) -> String {
        if isEmpty { return text }
        let list = secrets.read { $0 }
        return list.isEmpty ? text : Self.mask(text, list)
    }

    public func mask(_ event: Event) -> Event {
        if isEmpty { return event }
        let list = secrets.read { $0 }
        guard !list.isEmpty else { return event }
        var e = event
        for (key, value) in event.fields { e[key] = Self.mask(value, list) }
        return e
    }

    private static func mask(_ value: JSONValue, _ list: [[UInt8]]) -> JSONValue {
        switch value {
        case let .string(s): return .string(mask(s, list))
        case let .array(a): return .array(a.map { mask($0, list) })
        case let .object(o): return .object(o.mapValues { mask($0, list) })
        default: return value
        }
    }

    private static func mask(_ text: String, _ list: [[UInt8]]) -> String {
        var bytes = Array(text.utf8)
        var changed = false
        for secret in list {
            if let replaced = replace(secret, in: bytes) {
                bytes = replaced
                changed = true
            }
        }
        return changed ? String(decoding: bytes, as: UTF8.self) : text
    }

    /// `haystack` with every occurrence of `needle` replaced by `***`, or `nil` if none.
    private static func replace(_ needle: [UInt8], in haystack: [UInt8]) -> [UInt8]? {
        guard needle.count <= haystack.count else { return nil }
        var out: [UInt8]? = nil
        var copied = 0
        var i = 0
        let first = needle[0]
        haystack.withUnsafeBytes { h in
            needle.withUnsafeBytes { n in
                while i + needle.count <= haystack.count {
                    guard let p = memchr(h.baseAddress! + i, Int32(first), haystack.count - needle.count + 1 - i) else { break }
                    let at = UnsafeRawPointer(p) - h.baseAddress!
                    if memcmp(h.baseAddress! + at, n.baseAddress!, needle.count) == 0 {
                        if out == nil {
                            out = []
                            out!.reserveCapacity(haystack.count)
                        }
                        out!.append(contentsOf: h[copied..<at])
                        out!.append(contentsOf: mask.utf8)
                        i = at + needle.count
                        copied = i
                    } else {
                        i = at + 1
                    }
                }
            }
        }
        guard var result = out else { return nil }
        result.append(contentsOf: haystack[copied...])
        return result
    }
}
