import CSundialShim
import Synchronization

/// The children some ``ProcessRunner`` owns, so that the orphan reaper (``ProcessRunner``
/// with `reapsOrphans`, only in `sundial run`) never reaps one of them.
///
/// Process-wide by nature, not by convenience: children and re-parented orphans are children of
/// the *process*, and the orphan reaper sees them all through one `waitid(P_ALL, WNOWAIT)`.
/// Every runner instance registers here; none reads another's entries.
///
/// The race it closes: a runner's child can exit before its pid is known to the runner (the
/// spawn is still returning). The orphan reaper then sees an exited child that is registered
/// nowhere. So every spawn is *in flight* from before `fork` until its pid is registered, and the
/// reaper reaps nothing while any spawn is in flight; it reaps under the same lock, so a spawn
/// cannot begin between its check and its `waitpid`.
///
/// Counts, not a set: a runner releases a pid after reaping it, and by then the kernel may have
/// given the same pid to another runner's new child; a count keeps that child registered.
final class ChildRegistry: Sendable {
    static let shared = ChildRegistry()

    private struct State {
        var owned: [Int32: Int] = [:]
        var spawnsInFlight = 0
    }
    private let state = Mutex(State())

    /// Call before creating a child (the child may be reaped by no one but its runner from then).
    func beginSpawn() { state.withLock { $0.spawnsInFlight += 1 } }

    /// Call once the spawn returned: `pid` is the child (`nil`: none was left running).
    func endSpawn(pid: Int32?) {
        state.withLock { s in
            if let pid { s.owned[pid, default: 0] += 1 }
            s.spawnsInFlight -= 1
        }
    }

    /// Call after reaping `pid` (or giving it up).
    func release(_ pid: Int32) {
        state.withLock { s in
            guard let n = s.owned[pid] else { return }
            s.owned[pid] = n > 1 ? n - 1 : nil
        }
    }

    /// Whether `pid` is some runner's child now.
    func owns(_ pid: Int32) -> Bool { state.withLock { $0.owned[pid] != nil } }

    /// What the orphan reaper found when it looked.
    enum OrphanScan: Equatable {
        /// No exited child is waiting (or this process has no children).
        case none
        /// Reaped one orphan; look again.
        case reaped(Int32)
        /// The first exited child is a runner's (not yet reaped by it), or a spawn is in flight:
        /// look again shortly, the runner will have reaped its child.
        case blocked
    }

    /// Reaps one exited child that no runner owns, if the first one the kernel reports is such.
    func reapOneOrphan() -> OrphanScan {
        state.withLock { s in
            guard s.spawnsInFlight == 0 else { return .blocked }
            let pid = sundial_peek_exited_child()
            if pid <= 0 { return .none }
            if s.owned[pid] != nil { return .blocked }
            var status: Int32 = 0
            return sundial_pid_reap(pid, &status) == pid ? .reaped(pid) : .none
        }
    }
}
