/// Finds the cgroup v2 hierarchy and the agent's cgroup in it, from the text of
/// `/proc/self/mountinfo` and `/proc/self/cgroup` (parsed here, read by the caller, so tests
/// feed any layout).
///
/// Never a fixed path: the hierarchy is wherever a `cgroup2` file system is mounted —
/// `/sys/fs/cgroup` on a unified system, `/sys/fs/cgroup/unified` on a hybrid one (systemd's
/// layout where the controllers stay on v1 hierarchies), elsewhere in containers.
public struct CgroupLocation: Hashable, Sendable {
    /// Where the `cgroup2` file system is mounted.
    public var mountPoint: String
    /// The agent's cgroup as `/proc/self/cgroup` names it (`0::PATH`), e.g. `/` or
    /// `/system.slice/sundial.service`.
    public var ownPath: String
    /// The agent's cgroup directory.
    public var ownDirectory: String

    public init(mountPoint: String, ownPath: String, ownDirectory: String) {
        self.mountPoint = mountPoint
        self.ownPath = ownPath
        self.ownDirectory = ownDirectory
    }
}

public enum CgroupDiscovery {
    /// The `cgroup2` mounts in `mountinfo`: (mount point, root of the mount in the hierarchy).
    /// Fields (proc(5)): id, parent, major:minor, root, mount point, options, optional
    /// fields..., `-`, fstype, source, super options; paths escape space, tab, newline and
    /// backslash as `\ooo`.
    public static func cgroup2Mounts(mountinfo: String) -> [(mountPoint: String, root: String)] {
        var found: [(String, String)] = []
        for line in mountinfo.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 7, let dash = fields.firstIndex(of: "-"), dash >= 6, dash + 1 < fields.count else { continue }
            guard fields[dash + 1] == "cgroup2" else { continue }
            found.append((unescape(fields[4]), unescape(fields[3])))
        }
        return found
    }

    /// The agent's path in the v2 hierarchy: the `0::PATH` line of `/proc/self/cgroup`.
    public static func ownPath(procCgroup: String) -> String? {
        for line in procCgroup.split(separator: "\n") where line.hasPrefix("0::") {
            let path = String(line.dropFirst(3))
            return path.hasPrefix("/") ? path : nil
        }
        return nil
    }

    /// Locates the agent's cgroup directory, or says why there is none.
    public static func locate(mountinfo: String, procCgroup: String) -> Result<CgroupLocation, CgroupUnavailable> {
        let mounts = cgroup2Mounts(mountinfo: mountinfo)
        guard !mounts.isEmpty else { return .failure(CgroupUnavailable("no cgroup v2 hierarchy is mounted (no cgroup2 entry in /proc/self/mountinfo)")) }
        guard let own = ownPath(procCgroup: procCgroup) else {
            return .failure(CgroupUnavailable("the agent's cgroup v2 path is unknown (no usable 0:: line in /proc/self/cgroup)"))
        }
        // `/..`: the cgroup is outside this cgroup namespace's view.
        guard !own.split(separator: "/").contains("..") else {
            return .failure(CgroupUnavailable("the agent's cgroup \(own) is outside this cgroup namespace"))
        }
        // A mount of a sub-tree (root other than /) serves the cgroups below its root.
        for (mountPoint, root) in mounts {
            let base = root == "/" ? "" : root
            guard own == base || own.hasPrefix(base + "/") || base.isEmpty else { continue }
            let rest = String(own.dropFirst(base.count))
            let dir = rest == "/" || rest.isEmpty ? mountPoint : (mountPoint == "/" ? rest : mountPoint + rest)
            return .success(CgroupLocation(mountPoint: mountPoint, ownPath: own, ownDirectory: dir))
        }
        return .failure(CgroupUnavailable("no cgroup2 mount contains the agent's cgroup \(own)"))
    }

    static func unescape(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var out: [UInt8] = []
        let bytes = Array(field.utf8)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\\"), i + 3 < bytes.count {
                let digits = bytes[(i + 1)...(i + 3)]
                // `\ooo` with a first digit 0-3: one byte.
                if bytes[i + 1] >= 48, bytes[i + 1] <= 51, digits.allSatisfy({ $0 >= 48 && $0 <= 55 }) {
                    out.append(digits.reduce(0) { $0 &* 8 &+ ($1 - 48) })
                    i += 4
                    continue
                }
            }
            out.append(bytes[i])
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Why the agent cannot manage cgroups: logged with `limits.unenforced` and by tests.
public struct CgroupUnavailable: Error, Hashable, Sendable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}
