/// `limits:` of a job: what one run (all its processes together) may use, enforced through the
/// run's own cgroup (memory.max, cpu.max, pids.max) where the agent manages a cgroup v2 sub-tree.
/// `nil` fields are not limited. Where the agent cannot enforce a limit it logs
/// `limits.unenforced` once per job and runs the job anyway (docs/runtime.md, "Containment").
public struct ResourceLimits: Hashable, Sendable {
    /// `memory`: bytes, written to `memory.max` (swap is not limited).
    public var memoryBytes: Int64?
    /// `cpu`: percent of one CPU (200 = two CPUs), written to `cpu.max` as a quota per 100 ms.
    public var cpuPercent: Int?
    /// `tasks`: processes and threads together, written to `pids.max`.
    public var tasks: Int?

    public init(memoryBytes: Int64? = nil, cpuPercent: Int? = nil, tasks: Int? = nil) {
        self.memoryBytes = memoryBytes
        self.cpuPercent = cpuPercent
        self.tasks = tasks
    }

    /// No limit set: the run needs no controller (it is still contained when it can be).
    public var isEmpty: Bool { memoryBytes == nil && cpuPercent == nil && tasks == nil }

    /// Bounds the decoder enforces (and the loader wire re-checks, the child being untrusted):
    /// below a mebibyte a run is OOM-killed at exec; the kernel's smallest CPU quota is 1 ms per
    /// 100 ms period (1%); `pids.max` cannot usefully exceed the kernel's pid limit (2^22).
    public static let minMemoryBytes: Int64 = 1 << 20
    public static let maxMemoryBytes: Int64 = 1 << 60
    public static let cpuPercentRange = 1...100_000
    public static let tasksRange = 1...4_194_304

    /// Parses a size as written in `limits.memory`: digits and an optional 1024-based unit
    /// `K`, `M`, `G`, `T` (also `KiB`... and lower case), e.g. `256M`, `1G`, `1048576`.
    /// `nil` when it is not such a size or does not fit in 63 bits.
    public static func parseSize(_ text: String) -> Int64? {
        var digits = Substring(text)
        var unitShift: Int64 = 0
        let units: [(String, Int64)] = [
            ("kib", 10), ("mib", 20), ("gib", 30), ("tib", 40),
            ("k", 10), ("m", 20), ("g", 30), ("t", 40),
        ]
        let lower = text.lowercased()
        for (suffix, shift) in units where lower.hasSuffix(suffix) {
            digits = digits.dropLast(suffix.count)
            unitShift = shift
            break
        }
        guard !digits.isEmpty, digits.utf8.count <= 19, digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
            let n = Int64(digits)
        else { return nil }
        let (value, overflow) = n.multipliedReportingOverflow(by: Int64(1) << unitShift)
        return overflow ? nil : value
    }

    /// Parses `limits.cpu`: a whole number of percent of one CPU, `50%` (the `%` is required,
    /// so `cpu: 2` cannot be mistaken for two CPUs). `nil` when malformed.
    public static func parseCPUPercent(_ text: String) -> Int? {
        guard text.hasSuffix("%") else { return nil }
        let digits = text.dropLast()
        guard !digits.isEmpty, digits.utf8.count <= 9, digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return Int(digits)
    }

    /// A size in the largest 1024-based unit that divides it exactly (`268435456` → `256M`).
    public static func formatSize(_ bytes: Int64) -> String {
        for (unit, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] as [(String, Int64)]
        where bytes > 0 && bytes % (Int64(1) << shift) == 0 {
            return "\(bytes >> shift)\(unit)"
        }
        return "\(bytes)"
    }
}
