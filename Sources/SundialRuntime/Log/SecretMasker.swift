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
/// Empty values are ignored (they would match everywhere). Values added without an owner stay
/// until ``replaceAll(with:)``. A job's values (``add(_:for:)``) are read from its `env_file`
/// at each launch, and a rotated credential is a new value each time: the masker keeps the
/// values of the job's last ``launchesKeptPerOwner`` distinct sets (runs started with an older
/// one may still be printing it), so a credential rotated every few minutes cannot grow the set
/// and the cost of every masked line without bound. A removed job's values stay masked until
/// the agent has no run of it left (``keepOwners(_:)``, after each reload): an agent whose jobs
/// are renamed over the years keeps only the values of the jobs it still has.
public final class SecretMasker: Sendable {
    public static let mask = "***"
    /// Distinct secret sets kept per owner (job).
    public static let launchesKeptPerOwner = 8
    private let secrets = ReadMostly<[[UInt8]]>([])
    /// Lets the common case (no secrets at all) skip even the read lock.
    private let empty = Atomic<Bool>(true)
    /// Where ``secrets`` comes from: the values without an owner, and each owner's latest sets.
    private let sources = Mutex<Sources>(Sources())

    private struct Sources {
        var unowned: Set<[UInt8]> = []
        var byOwner: [String: [[[UInt8]]]] = [:]

        /// Every value, longest first (so a secret containing another is masked whole).
        var flattened: [[UInt8]] {
            var all = unowned
            for sets in byOwner.values { for set in sets { all.formUnion(set) } }
            return all.sorted { $0.count != $1.count ? $0.count > $1.count : $0.lexicographicallyPrecedes($1) }
        }
    }

    public init(_ values: some Sequence<String> = [String]()) { add(values) }

    /// Adds secret values that stay masked for the agent's life (e.g. the fleet's password).
    public func add(_ values: some Sequence<String>) {
        let new = Self.bytes(values)
        guard !new.isEmpty else { return }
        publish { s in
            let before = s.unowned.count
            s.unowned.formUnion(new)
            return s.unowned.count != before
        }
    }

    /// Sets `owner`'s current values (a job's ``LaunchSpec/secretValues`` before a launch); its
    /// previous sets stay masked until ``launchesKeptPerOwner`` newer ones replace them.
    public func add(_ values: some Sequence<String>, for owner: String) {
        let new = Self.bytes(values)
        guard !new.isEmpty else { return }
        publish { s in
            var sets = s.byOwner[owner] ?? []
            guard sets.last != new else { return false }
            sets.removeAll { $0 == new }
            sets.append(new)
            if sets.count > Self.launchesKeptPerOwner { sets.removeFirst(sets.count - Self.launchesKeptPerOwner) }
            s.byOwner[owner] = sets
            return true
        }
    }

    /// Forgets the values of every owner that `keep` refuses (after a reload: the jobs neither
    /// in the running set nor with a run still going); values without an owner stay.
    public func keepOwners(where keep: (String) -> Bool) {
        publish { s in
            let before = s.byOwner.count
            s.byOwner = s.byOwner.filter { keep($0.key) }
            return s.byOwner.count != before
        }
    }

    /// Replaces the whole set.
    public func replaceAll(with values: some Sequence<String>) {
        let new = Self.bytes(values)
        publish { s in
            s = Sources(unowned: Set(new))
            return true
        }
    }

    /// How many values are masked (tests; the bound on the cost of each masked string).
    public var count: Int { secrets.read { $0.count } }

    private static func bytes(_ values: some Sequence<String>) -> [[UInt8]] {
        var seen = Set<[UInt8]>()
        return values.filter { !$0.isEmpty }.map { Array($0.utf8) }.filter { seen.insert($0).inserted }.sorted { $0.lexicographicallyPrecedes($1) }
    }

    /// Applies `change` to the sources and, when it says they changed, publishes the new list.
    private func publish(_ change: (inout Sources) -> Bool) {
        sources.withLock { s in
            guard change(&s) else { return }
            let list = s.flattened
            secrets.write { $0 = list }
            empty.store(list.isEmpty, ordering: .releasing)
        }
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
