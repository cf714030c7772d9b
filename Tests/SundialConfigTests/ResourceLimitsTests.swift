import OrderedCollections
import SundialCore
import SundialTesting
import Testing

@testable import SundialConfig

/// `limits:` (memory, cpu, tasks): schema, decoding, positions of bad values, the loader wire.
@Suite("Config: resource limits", .offPool)
struct ResourceLimitsTests {
    let loader = ConfigLoader(environment: ConfigEnvironment(zoneExists: { $0 == "UTC" }, fileReadable: { _ in true }))

    func load(_ text: String) -> ConfigLoadResult {
        loader.load([ConfigLoader.SourceFile(path: "a.yaml", bytes: Array(text.utf8))])
    }

    @Test func decodesLimitsAndMergesDefaults() throws {
        let r = load(
            """
            version: 1
            defaults:
              limits: { memory: 1G, tasks: 64 }
            jobs:
              a:
                shell: x
                limits: { cpu: 50%, tasks: 10 }
              b:
                shell: x
                limits: { memory: 2097152 }
              c:
                shell: x
            """)
        #expect(r.diagnostics.isEmpty, "\(r.diagnostics.map(\.description))")
        let jobs = try #require(r.jobSet).jobs
        #expect(jobs["a"]?.limits == ResourceLimits(memoryBytes: 1 << 30, cpuPercent: 50, tasks: 10))
        #expect(jobs["b"]?.limits == ResourceLimits(memoryBytes: 2 << 20, tasks: 64))
        #expect(jobs["c"]?.limits == ResourceLimits(memoryBytes: 1 << 30, tasks: 64))
    }

    /// Schema errors (shapes) and decoder errors (ranges), each at its value. A file with a
    /// schema error is not decoded, hence two files.
    @Test func badLimitsArePositioned() {
        let r = load(
            """
            version: 1
            jobs:
              a:
                shell: x
                limits: {memory: lots}
              c:
                shell: x
                limits:
                  cpu: 50
                  tasks: 0
                  swap: 1G
            """)
        let m = r.diagnostics.map(\.description)
        #expect(r.jobSet == nil)
        #expect(m.contains("a.yaml:5:22: error: `memory`: `lots` does not match the pattern `^[0-9]+([KMGTkmgt]|[KMGT]iB)?$`"), "\(m)")
        #expect(m.contains("a.yaml:9:12: error: `cpu`: expected a string, found an integer"), "\(m)")
        #expect(m.contains("a.yaml:10:14: error: `tasks`: must be at least 1 (found 0)"), "\(m)")
        #expect(m.contains { $0.hasPrefix("a.yaml:11:7: error: unknown key `swap`") }, "\(m)")

        let ranges = load(
            """
            version: 1
            jobs:
              b:
                shell: x
                limits: {memory: 512K, cpu: 0%}
              d:
                shell: x
                limits: {memory: 99999999999T, cpu: 100001%}
            """)
        let n = ranges.diagnostics.map(\.description)
        #expect(ranges.jobSet == nil)
        #expect(n.contains { $0.hasPrefix("a.yaml:5:22: error: invalid memory limit `512K`: must be a size from 1M to 1024P") }, "\(n)")
        #expect(n.contains { $0.hasPrefix("a.yaml:5:33: error: invalid cpu limit `0%`") }, "\(n)")
        #expect(n.contains { $0.hasPrefix("a.yaml:8:22: error: invalid memory limit `99999999999T`") }, "\(n)")
        #expect(n.contains { $0.hasPrefix("a.yaml:8:41: error: invalid cpu limit `100001%`") }, "\(n)")
        #expect(n.count == 4, "\(n)")
    }

    @Test func sizesAndPercents() {
        #expect(ResourceLimits.parseSize("256M") == 256 << 20)
        #expect(ResourceLimits.parseSize("1G") == 1 << 30)
        #expect(ResourceLimits.parseSize("1gib") == 1 << 30)
        #expect(ResourceLimits.parseSize("4096") == 4096)
        #expect(ResourceLimits.parseSize("8T") == 8 << 40)
        for bad in ["", "M", "lots", "1.5G", "-1M", "1 G", "99999999999999999999", "9999999999T"] {
            #expect(ResourceLimits.parseSize(bad) == nil, "\(bad)")
        }
        #expect(ResourceLimits.parseCPUPercent("50%") == 50)
        #expect(ResourceLimits.parseCPUPercent("250%") == 250)
        for bad in ["50", "%", "1.5%", "-5%", "5 %"] { #expect(ResourceLimits.parseCPUPercent(bad) == nil, "\(bad)") }
        #expect(ResourceLimits.formatSize(256 << 20) == "256M")
        #expect(ResourceLimits.formatSize(1000) == "1000")
    }

    @Test func wireRejectsOutOfRangeLimits() throws {
        func roundTrip(_ job: JobSpec) throws(JobWire.DecodeError) -> JobSpec {
            var w = WireWriter()
            JobWire.write(job, into: &w)
            var r = WireReader(w.bytes)
            return try JobWire.decodeJob(&r)
        }
        var job = JobSpec(id: "a", command: .shell("x"))
        job.limits = ResourceLimits(memoryBytes: 4 << 20, cpuPercent: 200, tasks: 5)
        #expect(try roundTrip(job).limits == job.limits)
        for bad in [
            ResourceLimits(memoryBytes: 12), ResourceLimits(cpuPercent: 0), ResourceLimits(tasks: -1), ResourceLimits(tasks: .max),
        ] {
            job.limits = bad
            #expect(throws: JobWire.DecodeError.self, "\(bad)") { try roundTrip(job) }
        }
    }

    @Test func limitsTakePartInEquality() {
        var job = JobSpec(id: "a", command: .shell("x"))
        job.limits = ResourceLimits(memoryBytes: 256 << 20, cpuPercent: 50, tasks: 64)
        let other = JobSpec(id: "a", command: .shell("x"))
        #expect(job != other)
    }
}
