import Foundation
import SundialCore
import SundialRuntime
import Testing

/// The PostgreSQL the fleet tests use: `SUNDIAL_TEST_PG_URL` (set by .ci/run through
/// scripts/pg-test-cluster.sh). Without it the tests are skipped on a developer's machine, but
/// under CI (`CI` set) they fail: a missing server must never pass for a green run.
enum PGTest {
    static var url: String? {
        guard let v = ProcessInfo.processInfo.environment["SUNDIAL_TEST_PG_URL"], !v.isEmpty else { return nil }
        return v
    }

    /// Whether the suites run at all: with a server, or under CI (where they then fail).
    static var enabled: Bool { url != nil || ProcessInfo.processInfo.environment["CI"] != nil }

    static func requireURL() throws -> String {
        guard let url else {
            Issue.record("CI is set but SUNDIAL_TEST_PG_URL is not: start a cluster with scripts/pg-test-cluster.sh start")
            throw CancellationError()
        }
        return url
    }

    /// A URL whose connections use a fresh, empty schema of their own (`search_path`), so that
    /// tests never see each other's claims and can create the fleet schema from nothing.
    static func freshURL(base: String? = nil) throws -> String {
        let base = try base ?? requireURL()
        let schema = "t_" + UUID().uuidString.prefix(12).lowercased().filter { $0.isLetter || $0.isNumber }
        let admin = PostgresConnection(settings: PostgresSettings(url: base))
        defer { admin.close() }
        try admin.query("CREATE SCHEMA \(schema)")
        return withSearchPath(base, schema)
    }

    static func withSearchPath(_ base: String, _ schema: String) -> String {
        base + (base.contains("?") ? "&" : "?") + "options=-c%20search_path%3D\(schema)"
    }

    static func coordinator(_ url: String, box: String) -> PostgresFleetCoordinator {
        var s = PostgresSettings(url: url)
        s.connectTimeoutSeconds = 2
        return PostgresFleetCoordinator(settings: s, box: box)
    }

    static var repoRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }
}

/// A PostgreSQL server of the test's own (scripts/pg-test-cluster.sh), for tests that stop and
/// restart it. Deleted by ``destroy()``.
final class PrivatePGCluster {
    let dir: String
    private(set) var url: String = ""

    init() throws {
        dir = NSTemporaryDirectory() + "sundial-pg-\(UUID().uuidString.prefix(8))"
        try start()
    }

    func start() throws {
        let out = try Self.script(["start", dir])
        guard let line = out.split(separator: "\n").last(where: { $0.hasPrefix("export ") }),
            let u = line.split(separator: " ").first(where: { $0.hasPrefix("SUNDIAL_TEST_PG_URL=") })
        else { throw PostgresError(message: "pg-test-cluster.sh start printed no URL: \(out)", sqlState: nil, connectionLost: true) }
        url = String(u.dropFirst("SUNDIAL_TEST_PG_URL=".count))
    }

    func stop() throws { _ = try Self.script(["stop", dir]) }
    func destroy() { _ = try? Self.script(["destroy", dir]) }

    var password: String { (try? String(contentsOfFile: dir + "/password", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "" }

    @discardableResult
    static func script(_ args: [String]) throws -> String {
        // system(3), which waits for its own child by pid: Foundation's Process waits through a
        // SIGCHLD watcher that the runtime's signal handling in this test process can starve.
        // Output to a file, not a pipe: the server that `start` launches must not inherit it.
        let out = NSTemporaryDirectory() + "pg-script-\(UUID().uuidString.prefix(8)).out"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let command = (["/bin/bash", PGTest.repoRoot + "/scripts/pg-test-cluster.sh"] + args).map { "'\($0)'" }.joined(separator: " ")
        let status = system("\(command) </dev/null >'\(out)' 2>&1")
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw PostgresError(message: "pg-test-cluster.sh \(args.joined(separator: " ")) failed (\(status)): \(text)", sqlState: nil, connectionLost: true)
        }
        return text
    }
}

/// Runs `body` on `n` threads at once (released together) and returns their results in order.
func concurrently<T: Sendable>(_ n: Int, _ body: @escaping @Sendable (Int) -> T) -> [T] {
    let results = LockedBox([T?](repeating: nil, count: n))
    let start = DispatchSemaphore(value: 0)
    let group = DispatchGroup()
    for i in 0..<n {
        group.enter()
        Thread.detachNewThread {
            start.wait()
            let r = body(i)
            results.mutate { $0[i] = r }
            group.leave()
        }
    }
    for _ in 0..<n { start.signal() }
    group.wait()
    return results.value.map { $0! }
}

final class LockedBox<T>: @unchecked Sendable {
    private var v: T
    private let lock = NSLock()
    init(_ v: T) { self.v = v }
    var value: T { lock.withLock { v } }
    func mutate(_ f: (inout T) -> Void) { lock.withLock { f(&v) } }
}
