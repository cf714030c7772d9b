import SundialCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The agent's cgroup v2 sub-tree, set up once by the runner, and the runs' cgroups in it.
///
/// Layout (docs/runtime.md, "Containment"), `OWN` being the agent's cgroup at start (under
/// systemd with `Delegate=yes`, `sundial.service`'s cgroup):
///
///     OWN/agent/          the agent moves itself here first
///     OWN/runs/           controllers memory, cpu, pids enabled in its subtree_control
///     OWN/runs/run-ID/    one per run attempt (ID = run id, `-N` added for attempt N > 1)
///
/// Why the agent moves: cgroup v2's "no internal processes" rule — a cgroup that enables
/// controllers for its children must hold no process itself, and `OWN` must enable them for
/// `runs`. Why `runs` and not the `run-*` directly beside `agent`: one place to find every run
/// (a restarted agent, `systemd-cgls`), and the agent's own cgroup stays free of limits.
/// When `OWN` is the hierarchy's root (a root agent outside systemd on a hybrid machine, which
/// has no `cgroup.type` there), the agent stays: the root may hold processes, and moving the
/// agent out of it would put it under limits meant for jobs.
///
/// Containment (kill) and limits degrade separately: with a writable tree and no controllers
/// (the hybrid layout), every run still gets a cgroup to kill, only limits are unenforced.
public final class CgroupTree: Sendable {
    /// The controllers limits need, in the order they are enabled.
    public static let wantedControllers = ["memory", "cpu", "pids"]

    /// `OWN/runs`, or `nil` when there is no usable tree (then ``problem`` says why).
    public let runsDirectory: String?
    public let problem: String?
    /// Controllers enabled for the `run-*` cgroups.
    public let controllers: Set<String>
    /// Why a wanted controller is not enabled (`cpu` → "not available in ...").
    public let controllerProblems: [String: String]

    init(runsDirectory: String?, problem: String?, controllers: Set<String> = [], controllerProblems: [String: String] = [:]) {
        self.runsDirectory = runsDirectory
        self.problem = problem
        self.controllers = controllers
        self.controllerProblems = controllerProblems
    }

    /// No tree: every run keeps today's process group only.
    public static func unavailable(_ reason: String) -> CgroupTree { CgroupTree(runsDirectory: nil, problem: reason) }

    /// ``forThisProcess()``, set up once: it moves the process into its `agent` leaf and makes
    /// the `runs` directory, which every runner of the process then shares (run cgroups are
    /// named by run id and attempt, so runners do not collide).
    static let processTree = forThisProcess()

    /// The running process's tree: `SUNDIAL_CGROUPS=off` disables it (a diagnostic switch, and
    /// how tests simulate a machine without cgroup v2); otherwise discovered from /proc/self.
    static func forThisProcess() -> CgroupTree {
        if let v = getenv("SUNDIAL_CGROUPS"), String(cString: v) == "off" {
            return .unavailable("cgroups are disabled (SUNDIAL_CGROUPS=off)")
        }
        let mountinfo = Cgroup.readFile("/proc/self/mountinfo") ?? ""
        let procCgroup = Cgroup.readFile("/proc/self/cgroup") ?? ""
        switch CgroupDiscovery.locate(mountinfo: mountinfo, procCgroup: procCgroup) {
        case let .failure(why): return .unavailable(why.reason)
        case let .success(location): return setUp(location, pid: getpid())
        }
    }

    /// Sets up the tree at `location` (a real one, or a directory of plain files in tests).
    static func setUp(_ location: CgroupLocation, pid: Int32) -> CgroupTree {
        let own = location.ownDirectory
        guard access(own + "/cgroup.procs", W_OK) == 0 else {
            return .unavailable("the agent's cgroup \(own) is not writable (run the agent as root, or under systemd with Delegate=yes)")
        }
        // The hierarchy's root has no cgroup.type (nor cgroup.events, cgroup.kill).
        let isRoot = access(own + "/cgroup.type", F_OK) != 0
        if !isRoot {
            let agent = own + "/agent"
            if let e = makeDirectory(agent) { return .unavailable("cannot create \(agent): \(errnoText(e))") }
            let e = Cgroup.writeFile(agent + "/cgroup.procs", String(pid))
            if e != 0 { return .unavailable("cannot move the agent into \(agent): \(errnoText(e))") }
        }
        let runs = own + "/runs"
        if let e = makeDirectory(runs) { return .unavailable("cannot create \(runs): \(errnoText(e))") }

        let available = Set((Cgroup.readFile(own + "/cgroup.controllers") ?? "").split(separator: " ").map(String.init))
        var enabled: Set<String> = []
        var problems: [String: String] = [:]
        for c in wantedControllers {
            guard available.contains(c) else {
                problems[c] =
                    "the \(c) controller is not available in \(own) (on a hybrid system it belongs to a cgroup v1 hierarchy; under systemd, check Delegate=yes)"
                continue
            }
            // One controller at a time: a write naming several is all or nothing.
            var e = Cgroup.writeFile(own + "/cgroup.subtree_control", "+" + c)
            if e != 0 {
                problems[c] =
                    "cannot enable the \(c) controller in \(own)/cgroup.subtree_control: \(errnoText(e))"
                    + (e == EBUSY ? " (other processes are in \(own))" : "")
                continue
            }
            e = Cgroup.writeFile(runs + "/cgroup.subtree_control", "+" + c)
            if e != 0 {
                problems[c] = "cannot enable the \(c) controller in \(runs)/cgroup.subtree_control: \(errnoText(e))"
                continue
            }
            enabled.insert(c)
        }
        return CgroupTree(runsDirectory: runs, problem: nil, controllers: enabled, controllerProblems: problems)
    }

    /// `mkdir` that accepts an existing directory; nil or the errno.
    static func makeDirectory(_ path: String) -> Int32? {
        if mkdir(path, 0o755) == 0 || errno == EEXIST { return nil }
        return errno
    }

    // MARK: - Runs

    /// The cgroup directory name of a run's attempt.
    static func runName(_ runID: RunID, attempt: Int) -> String {
        attempt <= 1 ? "run-\(runID.rawValue)" : "run-\(runID.rawValue)-\(attempt)"
    }

    /// A run's cgroup, created and opened (its descriptor is what the child is cloned into).
    struct RunGroup {
        let path: String
        let fd: Int32
    }

    /// Creates the cgroup of one attempt. An existing one is reused only if no process is in it
    /// (left by an agent that died before removing it); a populated one belongs to someone.
    func createRun(_ runID: RunID, attempt: Int) -> Result<RunGroup, CgroupUnavailable> {
        guard let runsDirectory else { return .failure(CgroupUnavailable(problem ?? "no cgroup tree")) }
        let path = runsDirectory + "/" + Self.runName(runID, attempt: attempt)
        if mkdir(path, 0o755) != 0 {
            let e = errno
            guard e == EEXIST, Cgroup.isPopulated(path) == false else {
                return .failure(CgroupUnavailable("cannot create the cgroup \(path): \(e == EEXIST ? "it exists and processes are in it" : errnoText(e))"))
            }
        }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            _ = Cgroup.remove(path)
            return .failure(CgroupUnavailable("cannot open the cgroup \(path): \(errnoText(e))"))
        }
        return .success(RunGroup(path: path, fd: fd))
    }

    /// cpu.max's period: 100 ms (the kernel's default), so 1% is the smallest quota, 1 ms.
    static let cpuPeriodMicros = 100_000

    /// Writes `limits` into the run's cgroup (memory.max, cpu.max, pids.max). Returns why some
    /// could not be applied (nil when all were), for `limits.unenforced`; the run goes on.
    func apply(_ limits: ResourceLimits, to path: String) -> String? {
        var problems: [String] = []
        func set(_ controller: String, _ file: String, _ value: String, _ what: String) {
            guard controllers.contains(controller) else {
                problems.append("\(what): \(controllerProblems[controller] ?? "the \(controller) controller is not enabled")")
                return
            }
            let e = Cgroup.writeFile(path + "/" + file, value)
            if e != 0 { problems.append("\(what): cannot write \(path)/\(file): \(errnoText(e))") }
        }
        if let m = limits.memoryBytes { set("memory", "memory.max", String(m), "memory") }
        if let c = limits.cpuPercent { set("cpu", "cpu.max", "\(c * Self.cpuPeriodMicros / 100) \(Self.cpuPeriodMicros)", "cpu") }
        if let t = limits.tasks { set("pids", "pids.max", String(t), "tasks") }
        return problems.isEmpty ? nil : problems.joined(separator: "; ")
    }
}
