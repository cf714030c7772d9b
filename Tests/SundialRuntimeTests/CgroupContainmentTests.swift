import CSundialShim
import Foundation
import SundialCore
import SundialTesting
import Synchronization
import Testing

@testable import SundialRuntime

/// Whether the shared runner contains runs in cgroups here (root with a writable cgroup v2
/// hierarchy, as on the CI machine; `SUNDIAL_CGROUPS=off` turns it off).
let runnerHasCgroups: Bool = (try? TestRunner.shared().cgroupTree.runsDirectory) != nil

private let markerCounter = Atomic<Int>(0)

/// A unique `sleep` argument (GNU sleep takes fractions): found again in /proc/*/cmdline.
func sleepMarker() -> String {
    "299.\(getpid())0\(markerCounter.add(1, ordering: .relaxed).newValue)1"
}

/// Pids whose command line has the argument `marker`.
func processes(withArgument marker: String) -> [Int32] {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    return entries.compactMap { e in
        guard let pid = Int32(e), let data = FileManager.default.contents(atPath: "/proc/\(e)/cmdline") else { return nil }
        let args = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        return args.contains(marker) ? pid : nil
    }
}

func killAll(_ pids: [Int32]) { for p in pids { kill(p, SIGKILL) } }

/// Starts `job` on the shared runner and returns its handle (the caller awaits the end).
func start(_ job: JobSpec, useCgroup: Bool = true, lines: Lines = Lines()) async throws -> RunHandle {
    var spec = try LaunchSpec(job: job, runID: nextRunID(), attempt: 1)
    spec.useCgroup = useCgroup
    return await try TestRunner.shared().start(spec, onOutput: lines.handler)
}

/// A script that starts a `setsid` child and a double-forked one (both ignoring SIGTERM, so
/// only a SIGKILL of the whole cgroup ends them), prints `started`, then runs `tail`.
func escapingScript(_ m1: String, _ m2: String, tail: String) -> String {
    "trap '' TERM; setsid sleep \(m1) </dev/null >/dev/null 2>&1 & sh -c 'sleep \(m2) </dev/null >/dev/null 2>&1 &'; echo started; \(tail)"
}

@Suite(.serialized, .offPool) struct CgroupContainmentTests {
    @Test(
        .enabled(
            if: geteuid() == 0 && FileManager.default.fileExists(atPath: "/sys/fs/cgroup/unified/cgroup.procs")
                && ProcessInfo.processInfo.environment["SUNDIAL_CGROUPS"] != "off"))
    func theRunnerHasATreeOnThisMachine() throws {
        let tree = try TestRunner.shared().cgroupTree
        #expect(tree.runsDirectory != nil, "\(tree.problem ?? "")")
    }

    @Test(.enabled(if: runnerHasCgroups))
    func aTimedOutRunLeavesNoProcessAndNoCgroup() async throws {
        let (m1, m2) = (sleepMarker(), sleepMarker())
        var job = shellJob(escapingScript(m1, m2, tail: "sleep 30; wait"), timeoutMs: 300)
        job.killGraceMs = 200
        let lines = Lines()
        let handle = try await start(job, lines: lines)
        let cgroup = try #require(handle.cgroupPath)
        #expect(cgroup.hasSuffix("/runs/run-\(handle.runID.rawValue)"))
        let c = try await withDeadline(15) { await handle.completion() }
        #expect(c.outcome == .timeout)
        #expect(c.cgroupPath == cgroup)
        #expect(lines.stdout == ["started"])
        #expect(
            await eventuallyAsync(5) { processes(withArgument: m1).isEmpty && processes(withArgument: m2).isEmpty },
            "left: \(processes(withArgument: m1)) \(processes(withArgument: m2))")
        #expect(await eventuallyAsync(5) { !FileManager.default.fileExists(atPath: cgroup) }, "\(cgroup) still exists")
        killAll(processes(withArgument: m1) + processes(withArgument: m2))
    }

    @Test(.enabled(if: runnerHasCgroups))
    func aRunThatEndsByItselfTakesItsDaemonsWithIt() async throws {
        let (m1, m2) = (sleepMarker(), sleepMarker())
        let handle = try await start(shellJob(escapingScript(m1, m2, tail: "exit 0")))
        let cgroup = try #require(handle.cgroupPath)
        let c = try await withDeadline(15) { await handle.completion() }
        #expect(c.outcome == .success(exitCode: 0))
        // The completion comes once the cgroup is gone, so nothing is left at that point.
        #expect(processes(withArgument: m1).isEmpty && processes(withArgument: m2).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: cgroup))
        killAll(processes(withArgument: m1) + processes(withArgument: m2))
    }

    @Test(.enabled(if: runnerHasCgroups))
    func terminateAsForReplaceKillsEveryDescendant() async throws {
        let (m1, m2) = (sleepMarker(), sleepMarker())
        let lines = Lines()
        let handle = try await start(shellJob(escapingScript(m1, m2, tail: "sleep 30; wait")), lines: lines)
        try await withDeadline(10) { await lines.waitFor("started") }
        #expect(await eventuallyAsync(5) { !processes(withArgument: m1).isEmpty && !processes(withArgument: m2).isEmpty })
        try TestRunner.shared().terminate(handle.runID, grace: .milliseconds(200))
        let c = try await withDeadline(15) { await handle.completion() }
        #expect(c.outcome == .interrupted)
        #expect(
            processes(withArgument: m1).isEmpty && processes(withArgument: m2).isEmpty,
            "left: \(processes(withArgument: m1)) \(processes(withArgument: m2))")
        #expect(!FileManager.default.fileExists(atPath: try #require(handle.cgroupPath)))
        killAll(processes(withArgument: m1) + processes(withArgument: m2))
    }

    /// Without a cgroup (as on a machine without cgroup v2) the run keeps today's process
    /// group: the `setsid` child is outside it and survives the run — what docs/runtime.md
    /// says escapes.
    @Test func withoutACgroupTheSetsidChildEscapesAsDocumented() async throws {
        let (m1, m2) = (sleepMarker(), sleepMarker())
        var job = shellJob(escapingScript(m1, m2, tail: "sleep 30; wait"), timeoutMs: 300)
        job.killGraceMs = 200
        let handle = try await start(job, useCgroup: false)
        #expect(handle.cgroupPath == nil)
        let c = try await withDeadline(15) { await handle.completion() }
        #expect(c.outcome == .timeout)
        #expect(c.cgroupPath == nil)
        #expect(!processes(withArgument: m1).isEmpty, "the setsid child left the group and lives on")
        // The double-forked one stayed in the group, so the group's SIGKILL reached it.
        #expect(await eventuallyAsync(5) { processes(withArgument: m2).isEmpty })
        killAll(processes(withArgument: m1) + processes(withArgument: m2))
    }

    /// The child is in its cgroup from its first instruction: both through clone3 and through
    /// the fallback (fork, then the child writes itself into cgroup.procs), and on the fork
    /// path for `umask`/`user` too.
    @Test(.enabled(if: runnerHasCgroups), arguments: [false, true])
    func theJobRunsInItsCgroup(fallback: Bool) async throws {
        if fallback { sundial_spawn_disable_clone3(1) }
        defer { if fallback { sundial_spawn_disable_clone3(0) } }
        let vforksBefore = sundial_spawn_vfork_count()
        for umask in [nil, UInt16(0o022)] {
            var job = shellJob("cat /proc/self/cgroup")
            job.umask = umask
            let lines = Lines()
            let handle = try await start(job, lines: lines)
            let cgroup = try #require(handle.cgroupPath)
            _ = try await withDeadline(10) { await handle.completion() }
            let own = try #require(lines.stdout.first { $0.hasPrefix("0::") })
            #expect(cgroup.hasSuffix(String(own.dropFirst(3))), "\(own) vs \(cgroup)")
            #expect(own.hasSuffix("/run-\(handle.runID.rawValue)"))
        }
        #if arch(x86_64)
        // The agent's page tables are not copied: the child shares them until it execs.
        if !fallback { #expect(sundial_spawn_vfork_count() >= vforksBefore + 2) }
        #endif
    }

    @Test(.enabled(if: runnerHasCgroups))
    func limitsThatCannotBeEnforcedAreReportedOncePerJob() async throws {
        let tree = try TestRunner.shared().cgroupTree
        try #require(!tree.controllers.contains("memory"), "this test needs a machine without the v2 memory controller")
        let reported = Mutex<[String]>([])
        let launcher = ProcessRunnerLauncher(
            runner: try TestRunner.shared(),
            onLimitsUnenforced: { job, reason in
                reported.withLock { $0.append("\(job): \(reason)") }
            })
        var job = shellJob("exit 0")
        job.limits = ResourceLimits(memoryBytes: 256 << 20)
        for _ in 0..<2 {
            let order = LaunchOrder(runID: nextRunID(), job: job, attempt: 1, trigger: .manual, scheduledFor: Instant(unixMillis: 0))
            let attempt = await launcher.launch(order, workdir: "/", notBefore: nil, onOutput: { _ in })
            #expect(try await withDeadline(10) { await attempt.completion() }.outcome.isSuccess)
        }
        let r = reported.withLock { $0 }
        #expect(r.count == 1, "\(r)")
        #expect(r.first?.hasPrefix("test-job: memory: the memory controller is not available") == true, "\(r)")
    }
}
