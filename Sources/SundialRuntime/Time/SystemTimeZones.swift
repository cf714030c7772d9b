import SundialCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Time zone rules from the system's tz database: the TZif files under `/usr/share/zoneinfo`
/// (or `$TZDIR`), read the way glibc and Go read them.
///
/// Why not Foundation's `TimeZone`: on Linux it takes its rules from ICU's compiled-in data,
/// which changes only when Swift itself is rebuilt, so a `tzdata` package update (a country
/// dropping DST at a month's notice, as Paraguay did in 2024) would never reach Sundial. The
/// system files are what `date`, cron and systemd use, and a reload re-reads them.
public final class SystemTimeZones: TimeZoneProvider {
    /// The directory holding the TZif files.
    public let directory: String
    /// `TZ` as given at creation (`nil` when unset).
    let tzVariable: String?
    let localtimePath: String
    /// Parsed zones by name; `reload()` empties it. Guarded: several tasks may ask at once.
    private let cache = Mutex<[String: TimeZoneRules]>([:])

    /// - Parameters:
    ///   - directory: defaults to `$TZDIR`, else `/usr/share/zoneinfo`.
    ///   - tz: the `TZ` variable; defaults to the process environment's.
    ///   - localtime: the system zone link, `/etc/localtime`.
    public init(directory: String? = nil, tz: String?? = .none, localtime: String = "/etc/localtime") {
        self.directory = directory ?? Self.environment("TZDIR").flatMap { $0.isEmpty ? nil : $0 } ?? "/usr/share/zoneinfo"
        self.tzVariable = tz ?? Self.environment("TZ")
        self.localtimePath = localtime
    }

    /// The rules of `name`, or of the system zone for `nil`.
    /// - Throws: `TimeZoneError` for an unknown zone, an unsafe name or an unreadable file.
    public func rules(named name: String?) throws -> TimeZoneRules {
        let key = name ?? "\u{0}system"
        if let hit = cache.withLock({ $0[key] }) { return hit }
        let rules = try name.map(load(named:)) ?? systemZone()
        cache.withLock { $0[key] = rules }
        return rules
    }

    /// Drops every cached zone, so the next lookup re-reads the files (on config reload).
    public func reload() {
        cache.withLock { $0.removeAll() }
    }

    // MARK: - Loading

    func load(named name: String) throws -> TimeZoneRules {
        if name == "UTC" || name == "Etc/UTC" || name == "Z" {
            if let bytes = Self.readFile(directory + "/" + name) {
                return try TimeZoneRules(name: name, tzif: bytes)
            }
            return TimeZoneRules(name: name, fixedOffset: 0)
        }
        try Self.checkName(name)
        guard let bytes = Self.readFile(directory + "/" + name) else {
            throw TimeZoneError(name: name, message: "unknown time zone (no file \(directory)/\(name)); use an IANA name such as Europe/Berlin")
        }
        return try TimeZoneRules(name: name, tzif: bytes)
    }

    /// Refuses names that would read outside the zone directory.
    static func checkName(_ name: String) throws(TimeZoneError) {
        guard !name.isEmpty else { throw TimeZoneError(name: name, message: "empty time zone name") }
        guard !name.hasPrefix("/") else { throw TimeZoneError(name: name, message: "absolute paths are not zone names") }
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard !parts.contains(where: { $0 == ".." || $0 == "." || $0.isEmpty }) else {
            throw TimeZoneError(name: name, message: "'.', '..' and empty parts are not allowed in zone names")
        }
        guard name.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else {
            throw TimeZoneError(name: name, message: "zone names are printable ASCII")
        }
    }

    /// The system zone: `TZ` (a zone name, `:name`, an absolute file, or a POSIX rule such as
    /// `EST5EDT`), else the target of the `/etc/localtime` link, else that file itself, else UTC.
    func systemZone() throws -> TimeZoneRules {
        if var tz = tzVariable, !tz.isEmpty {
            if tz.hasPrefix(":") { tz.removeFirst() }
            if tz.hasPrefix("/"), let bytes = Self.readFile(tz) {
                return try TimeZoneRules(name: Self.zoneName(fromPath: tz) ?? tz, tzif: bytes)
            }
            if let rules = try? load(named: tz) { return rules }
            if let rules = try? TimeZoneRules(name: tz, posixTZ: tz) { return rules }
            // glibc falls back to UTC for a TZ it cannot read; so do we.
            return TimeZoneRules(name: "UTC", fixedOffset: 0)
        }
        if let target = Self.readLink(localtimePath), let name = Self.zoneName(fromPath: target),
            let rules = try? load(named: name)
        {
            return rules
        }
        if let bytes = Self.readFile(localtimePath), let rules = try? TimeZoneRules(name: "localtime", tzif: bytes) {
            return rules
        }
        return TimeZoneRules(name: "UTC", fixedOffset: 0)
    }

    /// `Europe/Berlin` from `/usr/share/zoneinfo/Europe/Berlin` or `../usr/share/zoneinfo/...`.
    static func zoneName(fromPath path: String) -> String? {
        let bytes = Array(path.utf8)
        let marker = Array("zoneinfo/".utf8)
        guard bytes.count > marker.count,
            let at = (0...(bytes.count - marker.count)).last(where: { bytes[$0..<($0 + marker.count)].elementsEqual(marker) })
        else { return nil }
        var name = String(decoding: bytes[(at + marker.count)...], as: UTF8.self)
        for prefix in ["posix/", "right/"] where name.hasPrefix(prefix) { name.removeFirst(prefix.count) }
        return name.isEmpty ? nil : name
    }

    // MARK: - Files (plain POSIX calls: small reads, no Foundation needed)

    static func environment(_ key: String) -> String? {
        getenv(key).map { String(cString: $0) }
    }

    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The whole file, or `nil` if it cannot be opened or is not a regular file of sane size
    /// (``FileSystem/read(_:limit:)``: a FIFO named by `TZ` or put in the zone database must
    /// not block the agent).
    static func readFile(_ path: String) -> [UInt8]? {
        try? FileSystem.read(path, limit: 1 << 20)
    }
}
