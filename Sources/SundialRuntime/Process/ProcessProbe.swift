import SundialCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reads what identifies a process from `/proc`, and finds the processes of runs that outlived
/// a crashed agent (``ProcessIdentity``).
///
/// A pid alone never identifies a process: pids are recycled, so a restarted agent that trusted
/// a recorded pid could adopt — or kill — a stranger. A process is the run's only if it exists
/// now, in the same boot (`boot_id`), with the same start time (`/proc/PID/stat` field 22, in
/// clock ticks since boot, unchanged by `exec`).
public enum ProcessProbe {
    /// This boot's id (`/proc/sys/kernel/random/boot_id`), read once.
    public static let bootID: String? = {
        guard let bytes = try? FileSystem.read("/proc/sys/kernel/random/boot_id", limit: 128) else { return nil }
        let text = String(decoding: bytes, as: UTF8.self).filter { !$0.isWhitespace }
        return text.isEmpty ? nil : text
    }()

    /// What `/proc/PID/stat` says about a process.
    public struct Stat: Hashable, Sendable {
        /// Field 3: `Z` for a zombie (exited, not yet reaped by its parent).
        public var state: Character
        public var parent: Int32
        public var processGroup: Int32
        public var startTicks: UInt64
        public var isZombie: Bool { state == "Z" || state == "X" }
    }

    /// Parses `/proc/PID/stat`; `nil` if the process does not exist (or the file is odd).
    public static func stat(_ pid: Int32) -> Stat? {
        guard pid > 0, let bytes = try? FileSystem.read("/proc/\(pid)/stat", limit: 4096) else { return nil }
        return parseStat(bytes)
    }

    /// The fields after the command name, which is in parentheses and may itself hold spaces
    /// and parentheses: everything after the *last* `)`.
    public static func parseStat(_ bytes: [UInt8]) -> Stat? {
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = bytes[(close + 1)...].split(separator: UInt8(ascii: " ")).map { String(decoding: $0, as: UTF8.self) }
        // fields[0] is field 3 (state); field N is fields[N - 3].
        guard fields.count >= 20, let state = fields[0].first, let parent = Int32(fields[1]),
            let group = Int32(fields[2]), let ticks = UInt64(fields[19].filter { !$0.isWhitespace })
        else { return nil }
        return Stat(state: state, parent: parent, processGroup: group, startTicks: ticks)
    }

    /// The identity of a live process, read right after it was spawned; `nil` if it has already
    /// gone (then there is nothing a restart could find anyway).
    public static func identity(of pid: Int32) -> ProcessIdentity? {
        guard let boot = bootID, let s = stat(pid), !s.isZombie else { return nil }
        return ProcessIdentity(pid: pid, startTicks: s.startTicks, processGroup: s.processGroup, bootID: boot)
    }

    /// Whether the process `identity` describes is still running: same boot, the pid exists,
    /// started at the same tick, and has not exited.
    public static func isAlive(_ identity: ProcessIdentity) -> Bool {
        guard let boot = bootID, boot == identity.bootID, let s = stat(identity.pid) else { return false }
        return !s.isZombie && s.startTicks == identity.startTicks
    }

    /// The main processes of runs `runIDs`, found by their environment: every job starts with
    /// `SUNDIAL_RUN_ID=<id>` (LaunchSpec), inherited by its children, so the process that
    /// carries it and leads its own process group (the runner starts each job in a session of
    /// its own) is the run's. For an agent that died between a spawn and the record of its
    /// identity. Reads `/proc/PID/environ` of every process (only the agent's own user's, or
    /// all as root, are readable), each read bounded; one pass for all runs.
    ///
    /// A run missing from the answer has no main process any more (it exited).
    public static func findRuns(_ runIDs: Set<RunID>) -> [RunID: ProcessIdentity] {
        guard let boot = bootID, !runIDs.isEmpty else { return [:] }
        let prefix = Array("SUNDIAL_RUN_ID=".utf8)
        var found: [RunID: ProcessIdentity] = [:]
        for pid in allPIDs() {
            guard let s = stat(pid), s.processGroup == pid, !s.isZombie,
                let env = try? FileSystem.read("/proc/\(pid)/environ", limit: 1 << 20),
                let value = variable(env, prefix)
            else { continue }
            let id = RunID(rawValue: value)
            guard runIDs.contains(id), found[id] == nil else { continue }
            // Read the stat again: the start time pins this very process (not a pid reused
            // while its environment was being read).
            guard let again = stat(pid), again.startTicks == s.startTicks else { continue }
            found[id] = ProcessIdentity(pid: pid, startTicks: s.startTicks, processGroup: s.processGroup, bootID: boot)
        }
        return found
    }

    /// The value of the entry starting with `prefix` (`NAME=`) in a NUL-separated environment.
    static func variable(_ env: [UInt8], _ prefix: [UInt8]) -> String? {
        for entry in env.split(separator: 0, omittingEmptySubsequences: true) where entry.starts(with: prefix) {
            return String(decoding: entry.dropFirst(prefix.count), as: UTF8.self)
        }
        return nil
    }

    /// Which runs in flight (restored from the state) still have their main process running,
    /// and with which identity: the recorded one when it still matches (same boot, pid, start
    /// time), else — for runs recorded without an identity (the agent died right after the
    /// spawn) — the process found by its `SUNDIAL_RUN_ID`. `discovered` are the latter, for
    /// the caller to record.
    public static func survivors(of inFlight: [RunRecord]) -> (alive: [RunID: ProcessIdentity], discovered: [RunID: ProcessIdentity]) {
        var alive: [RunID: ProcessIdentity] = [:]
        var unknown: Set<RunID> = []
        for r in inFlight {
            if let p = r.process {
                if isAlive(p) { alive[r.id] = p }
            } else {
                unknown.insert(r.id)
            }
        }
        let discovered = findRuns(unknown)
        alive.merge(discovered) { a, _ in a }
        return (alive, discovered)
    }

    /// Every numeric entry of `/proc` (bounded by the kernel's pid_max).
    static func allPIDs() -> [Int32] {
        guard let dir = opendir("/proc") else { return [] }
        defer { closedir(dir) }
        var pids: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw -> String in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let pid = Int32(name), pid > 0 { pids.append(pid) }
        }
        return pids
    }
}
