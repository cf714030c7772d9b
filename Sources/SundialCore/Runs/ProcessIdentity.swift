/// What identifies the process of a run's attempt beyond its pid, so that an agent restarted
/// after a crash can tell the run's process from a stranger that was given the same pid later
/// (pids are recycled), and from anything of an earlier boot.
///
/// Recorded durably right after the spawn (``StateChange/processStarted(runID:attempt:identity:)``)
/// and checked at the next start before a run is adopted or killed: the process must exist, be
/// of the same boot, and have started at the same clock tick. Pure data: the runtime reads it
/// from `/proc` (`ProcessProbe`).
public struct ProcessIdentity: Hashable, Sendable {
    public var pid: Int32
    /// `/proc/PID/stat` field 22: when the process started, in clock ticks since boot. It does
    /// not change on `exec`, and a recycled pid gets another value (ticks are 10 ms; pids are
    /// handed out in order, so one pid cannot come round twice within a tick).
    public var startTicks: UInt64
    /// The process group (the runner starts every job in its own session: normally the pid).
    public var processGroup: Int32
    /// `/proc/sys/kernel/random/boot_id`: a process recorded before a reboot is never adopted.
    public var bootID: String
    /// The run's cgroup (a path under `/sys/fs/cgroup`), when the runner made one for it.
    public var cgroup: String?

    public init(pid: Int32, startTicks: UInt64, processGroup: Int32, bootID: String, cgroup: String? = nil) {
        self.pid = pid
        self.startTicks = startTicks
        self.processGroup = processGroup
        self.bootID = bootID
        self.cgroup = cgroup
    }
}
