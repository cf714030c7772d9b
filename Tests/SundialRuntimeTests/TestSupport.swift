import Foundation
import SundialCore
import SundialRuntime

/// A fresh directory under the system's temporary directory, removed by `remove()`.
struct TempDir {
    let path: String
    init(_ label: String = "sundial") {
        path = FileManager.default.temporaryDirectory.path + "/\(label)-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Waits for `condition` up to `timeout`, polling; for effects of background queues whose timing
/// the test cannot drive. Returns whether the condition became true.
func eventually(timeout: Duration = .seconds(5), _ condition: () throws -> Bool) rethrows -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: 0.005)
    }
    return try condition()
}

/// ``eventually(timeout:_:)`` for async tests: sleeps between polls instead of blocking one of
/// the few cooperative threads.
func waitUntil(timeout: Duration = .seconds(5), _ condition: () throws -> Bool) async throws -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try condition() { return true }
        try await Task.sleep(for: .milliseconds(5))
    }
    return try condition()
}

/// The names of this process's threads (`/proc/self/task/*/comm`).
func threadNames() -> [String] {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
    return tasks.compactMap { try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8) }
        .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
}

let t0 = Instant(unixSeconds: 1_780_000_000)

func at(_ seconds: Int64) -> Instant { t0 + .seconds(seconds) }

func rid(_ n: Int) -> RunID {
    // ULID-shaped ids sorting by n.
    let digits = String(n)
    return RunID(rawValue: "01J" + String(repeating: "0", count: 23 - digits.count) + digits)
}

/// Reads a state database as another process would (a connection of its own, committed data
/// only), through the store's own SQLite wrapper.
enum SQLiteProbe {
    static func texts(_ path: String, _ sql: String) throws -> [String] {
        let db = try SQLiteConnection(path: path)
        defer { db.close() }
        return try db.rows(sql).map { try $0.text(0) }
    }

    static func int(_ path: String, _ sql: String) throws -> Int {
        let db = try SQLiteConnection(path: path)
        defer { db.close() }
        return Int(try db.rows(sql).first?.int64(0) ?? -1)
    }
}
