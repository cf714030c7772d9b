import OrderedCollections
import SundialCore
import SundialTesting
import Testing

@testable import SundialConfig

/// `lock`, `on_lost`, `fleet_unavailable`, `lease` (docs/fleet.md): decoded, defaulted, checked
/// with positioned errors.
@Suite("Fleet configuration", .offPool)
struct FleetConfigTests {
    let loader = ConfigLoader(environment: ConfigEnvironment(zoneExists: { _ in true }, fileReadable: { _ in true }))

    func load(_ text: String) -> ConfigLoadResult {
        loader.load([.init(path: "a.yaml", bytes: Array(text.utf8))])
    }

    func messages(_ r: ConfigLoadResult) -> [String] { r.diagnostics.map(\.description) }

    @Test func defaultsAreLocalSkipSkip30s() throws {
        let r = load("version: 1\njobs:\n  a: { schedule: \"* * * * *\", command: [x] }\n")
        let a = try #require(r.jobSet?.jobs["a"])
        #expect(a.lock == .local && a.onLost == .skip && a.fleetUnavailable == .skip && a.leaseMs == 30_000)
    }

    @Test func fieldsAndDefaults() throws {
        let r = load(
            """
            version: 1
            defaults: { lock: fleet, fleet_unavailable: wait, lease: 1m }
            jobs:
              a: { schedule: "* * * * *", command: [x], on_lost: rerun }
              b: { every: 10s, offset: 0s, command: [x], lock: local }
            """)
        #expect(r.diagnostics.isEmpty, "\(messages(r))")
        let a = try #require(r.jobSet?.jobs["a"])
        #expect(a.lock == .fleet && a.onLost == .rerun && a.fleetUnavailable == .wait && a.leaseMs == 60_000)
        #expect(r.jobSet?.jobs["b"]?.lock == .local)
    }

    @Test func fleetNeedsWallClockInstants() {
        let r = load(
            """
            version: 1
            jobs:
              a: { every: 10s, command: [x], lock: fleet }
              b: { command: [x], lock: fleet }
            """)
        let m = messages(r)
        #expect(r.jobSet == nil)
        #expect(m.contains { $0.hasPrefix("a.yaml:3:40: error: `lock: fleet` needs instants every box computes alike") }, "\(m)")
        #expect(m.contains { $0.hasPrefix("a.yaml:4:28: error: `lock: fleet` applies to scheduled instants") }, "\(m)")
    }

    @Test func inheritedFleetLockLeavesManualJobsLocalWithAWarning() throws {
        let r = load(
            """
            version: 1
            defaults: { lock: fleet }
            jobs:
              a: { schedule: "@hourly", command: [x] }
              m: { command: [x] }
            """)
        #expect(r.diagnostics.map(\.severity) == [.warning], "\(messages(r))")
        #expect(r.jobSet?.jobs["m"]?.lock == .local && r.jobSet?.jobs["a"]?.lock == .fleet)
    }

    @Test func badValuesAreRefusedWithTheirPosition() {
        let r = load(
            """
            version: 1
            jobs:
              a: { schedule: "* * * * *", command: [x], lock: cluster, fleet_unavailable: maybe, lease: 1s }
            """)
        let m = messages(r)
        #expect(r.jobSet == nil)
        #expect(
            m == [
                "a.yaml:3:51: error: `lock`: must be one of: local, fleet",
                "a.yaml:3:79: error: `fleet_unavailable`: must be one of: skip, run-locally, wait",
                "a.yaml:3:93: error: `lease` must be at least 3s",
            ], "\(m)")
    }

    @Test func diffShowsFleetFields() throws {
        let old = try #require(load("version: 1\njobs:\n  a: { schedule: \"@hourly\", command: [x] }\n").jobSet)
        let new = try #require(load("version: 1\njobs:\n  a: { schedule: \"@hourly\", command: [x], lock: fleet, lease: 40s }\n").jobSet)
        let fields = JobSetDiff(old: old, new: new).changed.first?.fields ?? []
        #expect(fields.contains(.init(field: "lock", old: "local", new: "fleet")), "\(fields)")
        #expect(fields.contains(.init(field: "lease", old: "30s", new: "40s")), "\(fields)")
    }
}
