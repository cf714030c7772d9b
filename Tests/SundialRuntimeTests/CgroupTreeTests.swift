import Foundation
import SundialCore
import SundialTesting
import Testing

@testable import SundialRuntime

/// Discovery from /proc text, and the tree's set-up and limits against a fake cgroup
/// directory (plain files): this machine has no v2 controllers, so limits cannot be written
/// for real here (docs/runtime.md says so).
@Suite(.offPool) struct CgroupTreeTests {
    static let hybrid = """
        31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:7 - cgroup2 cgroup2 rw
        """

    @Test func findsTheV2MountWhereverItIs() throws {
        let l = try CgroupDiscovery.locate(mountinfo: Self.hybrid, procCgroup: "4:memory:/x\n0::/\n").get()
        #expect(l.mountPoint == "/sys/fs/cgroup/unified" && l.ownDirectory == "/sys/fs/cgroup/unified")
        let unified = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
        let s = try CgroupDiscovery.locate(mountinfo: unified, procCgroup: "0::/system.slice/sundial.service\n").get()
        #expect(s.ownDirectory == "/sys/fs/cgroup/system.slice/sundial.service")
        // A mount of a sub-tree, and an escaped mount point.
        let sub = "40 23 0:26 /system.slice /mnt/my\\040cg rw - cgroup2 cgroup2 rw\n"
        let t = try CgroupDiscovery.locate(mountinfo: sub, procCgroup: "0::/system.slice/a.service\n").get()
        #expect(t.ownDirectory == "/mnt/my cg/a.service")
    }

    @Test func saysWhyThereIsNoTree() {
        func reason(_ mountinfo: String, _ cgroup: String) -> String {
            if case let .failure(e) = CgroupDiscovery.locate(mountinfo: mountinfo, procCgroup: cgroup) { return e.reason }
            return "found"
        }
        #expect(reason("35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n", "0::/\n").hasPrefix("no cgroup v2 hierarchy is mounted"))
        #expect(reason(Self.hybrid, "4:memory:/x\n").hasPrefix("the agent's cgroup v2 path is unknown"))
        #expect(reason(Self.hybrid, "0::/../../x\n").contains("outside this cgroup namespace"))
        #expect(reason("40 23 0:26 /a /mnt rw - cgroup2 cgroup2 rw\n", "0::/b/c\n").hasPrefix("no cgroup2 mount contains"))
    }

    /// A fake cgroup: a directory with the control files the code reads or writes.
    func fakeCgroup(_ dir: String, controllers: String? = nil, files: [String: String] = [:]) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var all = ["cgroup.procs": "", "cgroup.subtree_control": "", "cgroup.type": "domain\n", "cgroup.events": "populated 0\nfrozen 0\n"]
        if let controllers { all["cgroup.controllers"] = controllers + "\n" }
        for (k, v) in files { all[k] = v }
        for (name, text) in all { try TestFile.write(text, to: dir + "/" + name) }
    }

    func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "<missing>" }

    func tempDir() -> String {
        let d = NSTemporaryDirectory() + "sundial-cg-\(getpid())-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    @Test func setUpMovesTheAgentEnablesControllersAndWritesLimits() throws {
        let root = tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let own = root + "/svc"
        try fakeCgroup(own, controllers: "cpuset cpu io memory pids")
        try fakeCgroup(own + "/agent")
        try fakeCgroup(own + "/runs")
        let tree = CgroupTree.setUp(CgroupLocation(mountPoint: root, ownPath: "/svc", ownDirectory: own), pid: 4242)
        #expect(tree.problem == nil)
        #expect(tree.runsDirectory == own + "/runs")
        #expect(tree.controllers == ["memory", "cpu", "pids"])
        #expect(read(own + "/agent/cgroup.procs") == "4242")
        // One controller per write; the fake file keeps the last.
        #expect(read(own + "/cgroup.subtree_control") == "+pids")
        #expect(read(own + "/runs/cgroup.subtree_control") == "+pids")

        let id = RunID(rawValue: "R1")
        try fakeCgroup(own + "/runs/run-R1", files: ["memory.max": "max", "cpu.max": "max 100000", "pids.max": "max"])
        let group = try tree.createRun(id, attempt: 1).get()
        close(group.fd)
        #expect(group.path == own + "/runs/run-R1")
        #expect(tree.apply(ResourceLimits(memoryBytes: 256 << 20, cpuPercent: 50, tasks: 64), to: group.path) == nil)
        #expect(read(group.path + "/memory.max") == "268435456")
        #expect(read(group.path + "/cpu.max") == "50000 100000")
        #expect(read(group.path + "/pids.max") == "64")
        #expect(tree.apply(ResourceLimits(cpuPercent: 250), to: group.path) == nil)
        #expect(read(group.path + "/cpu.max") == "250000 100000")
        #expect(CgroupTree.runName(id, attempt: 3) == "run-R1-3")
    }

    @Test func aPopulatedLeftoverIsNotReused() throws {
        let root = tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try fakeCgroup(root + "/runs/run-R2", files: ["cgroup.events": "populated 1\n"])
        let tree = CgroupTree(runsDirectory: root + "/runs", problem: nil)
        guard case let .failure(why) = tree.createRun(RunID(rawValue: "R2"), attempt: 1) else {
            Issue.record("reused a populated cgroup")
            return
        }
        #expect(why.reason.contains("processes are in it"))
    }

    @Test func missingControllersAreExplainedPerLimit() throws {
        let root = tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        // The hierarchy's root (no cgroup.type): the agent stays where it is.
        try fakeCgroup(root, controllers: "memory", files: ["cgroup.type": ""])
        try FileManager.default.removeItem(atPath: root + "/cgroup.type")
        try fakeCgroup(root + "/runs")
        let tree = CgroupTree.setUp(CgroupLocation(mountPoint: root, ownPath: "/", ownDirectory: root), pid: 4242)
        #expect(!FileManager.default.fileExists(atPath: root + "/agent"))
        #expect(tree.controllers == ["memory"])
        try fakeCgroup(root + "/runs/run-R3", files: ["memory.max": "max"])
        let problem = tree.apply(ResourceLimits(memoryBytes: 1 << 30, cpuPercent: 50, tasks: 5), to: root + "/runs/run-R3")
        #expect(read(root + "/runs/run-R3/memory.max") == "1073741824")
        #expect(problem?.contains("cpu: the cpu controller is not available in \(root)") == true, "\(problem ?? "")")
        #expect(problem?.contains("tasks: the pids controller is not available") == true, "\(problem ?? "")")
    }

    @Test func anUnwritableOrMissingTreeIsUnavailable() throws {
        let root = tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tree = CgroupTree.setUp(CgroupLocation(mountPoint: root, ownPath: "/nope", ownDirectory: root + "/nope"), pid: 1)
        #expect(tree.runsDirectory == nil)
        #expect(tree.problem?.contains("is not writable") == true)
        #expect(CgroupTree.unavailable("x").apply(ResourceLimits(tasks: 1), to: root) != nil)
    }
}
