#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The user and groups a job runs as, resolved from `user`/`group` before launch so the
/// forked child only calls `setgroups`/`setgid`/`setuid` with ready numbers.
public struct Credentials: Hashable, Sendable {
    /// `nil`: keep the agent's user.
    public var uid: UInt32?
    public var gid: UInt32
    /// Supplementary groups (`getgrouplist` of the user, or just `gid`).
    public var groups: [UInt32]
    /// The user's name and home, for `USER`, `LOGNAME` and `HOME`.
    public var userName: String?
    public var home: String?

    public init(uid: UInt32?, gid: UInt32, groups: [UInt32], userName: String? = nil, home: String? = nil) {
        self.uid = uid
        self.gid = gid
        self.groups = groups
        self.userName = userName
        self.home = home
    }

    /// Resolves `user` and `group` (names or numeric ids). Refused unless `isRoot`: only root
    /// can switch, and failing loudly beats running a job as the wrong user.
    public static func resolve(user: String?, group: String?, job: String, isRoot: Bool) throws(LaunchError) -> Credentials? {
        guard user != nil || group != nil else { return nil }
        guard isRoot else {
            let what = [user.map { "user '\($0)'" }, group.map { "group '\($0)'" }].compactMap { $0 }.joined(separator: " and ")
            throw LaunchError(.notRoot, "job '\(job)' sets \(what), which needs the agent to run as root (it runs as uid \(geteuid()))")
        }
        var creds = Credentials(uid: nil, gid: 0, groups: [])
        if let user {
            guard let pw = lookupUser(user) else { throw LaunchError(.unknownUser, "job '\(job)': unknown user '\(user)'") }
            creds.uid = pw.uid
            creds.gid = pw.gid
            creds.userName = pw.name
            creds.home = pw.home
        }
        if let group {
            guard let gid = lookupGroup(group) else { throw LaunchError(.unknownUser, "job '\(job)': unknown group '\(group)'") }
            creds.gid = gid
        }
        if let name = creds.userName {
            creds.groups = groupList(user: name, gid: creds.gid)
        } else {
            creds.groups = [creds.gid]
        }
        return creds
    }

    static func lookupUser(_ nameOrID: String) -> (name: String, uid: UInt32, gid: UInt32, home: String)? {
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        let rc: Int32
        if let id = UInt32(nameOrID) {
            rc = getpwuid_r(id, &pwd, &buffer, buffer.count, &result)
        } else {
            rc = getpwnam_r(nameOrID, &pwd, &buffer, buffer.count, &result)
        }
        guard rc == 0, let r = result else { return nil }
        return (String(cString: r.pointee.pw_name), r.pointee.pw_uid, r.pointee.pw_gid, String(cString: r.pointee.pw_dir))
    }

    static func lookupGroup(_ nameOrID: String) -> UInt32? {
        if let id = UInt32(nameOrID) { return id }
        var grp = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getgrnam_r(nameOrID, &grp, &buffer, buffer.count, &result) == 0, let r = result else { return nil }
        return r.pointee.gr_gid
    }

    static func groupList(user: String, gid: UInt32) -> [UInt32] {
        var count: Int32 = 64
        for _ in 0..<4 {
            var groups = [gid_t](repeating: 0, count: Int(count))
            var n = count
            if getgrouplist(user, gid, &groups, &n) >= 0 { return Array(groups[..<Int(n)]) }
            count = max(n, count * 2)
        }
        return [gid]
    }
}
