import Foundation
import SundialCore

/// Zones for core tests, read from the system's tz database (the CI installs `tzdata`).
/// Core stays pure; the tests may read files.
enum TestZones: TimeZoneProvider {
    case system

    static let cache = NSLock()
    nonisolated(unsafe) static var loaded: [String: TimeZoneRules] = [:]  // guarded by `cache`

    static func zone(_ name: String) throws -> TimeZoneRules {
        try TestZones.system.rules(named: name)
    }

    func rules(named name: String?) throws -> TimeZoneRules {
        let name = name ?? "UTC"
        Self.cache.lock()
        defer { Self.cache.unlock() }
        if let hit = Self.loaded[name] { return hit }
        let path = "/usr/share/zoneinfo/" + name
        guard let data = FileManager.default.contents(atPath: path) else {
            if name == "UTC" { return .utc }
            throw TimeZoneError(name: name, message: "no file \(path)")
        }
        let rules = try TimeZoneRules(name: name, tzif: Array(data))
        Self.loaded[name] = rules
        return rules
    }
}

/// Parses an RFC 3339 time or fails the test with the parser's message.
func instant(_ text: String) throws -> Instant {
    try RFC3339.parse(text).instant
}
