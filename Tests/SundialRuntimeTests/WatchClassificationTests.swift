import Glibc
import SundialTesting
import Testing

@testable import SundialRuntime

/// Which inotify events count as a config change, without a kernel: the decisions behind the
/// real-watcher tests, including those a test cannot provoke (a queue overflow).
@Suite(.offPool) struct WatchClassificationTests {
    private let tree = WatchPlan.Interest(tree: true, names: [])
    private let linkChain = WatchPlan.Interest(tree: false, names: ["..data", "jobs.yaml"])

    private func event(_ mask: Int32, _ name: String = "", directory: Bool = false) -> InotifyEvent {
        InotifyEvent(watch: 1, mask: UInt32(bitPattern: mask) | (directory ? UInt32(IN_ISDIR) : 0), name: name)
    }

    private func classify(_ e: InotifyEvent, _ interest: WatchPlan.Interest) -> (Bool, Bool) {
        let r = WatchLoop.classify(e, in: .watched("/nonexistent", interest))
        return (r.changed, r.rescan)
    }

    @Test func queueOverflowMeansChangedAndRescan() {
        let r = WatchLoop.classify(InotifyEvent(watch: -1, mask: UInt32(IN_Q_OVERFLOW), name: ""), in: .unknown)
        #expect(r == (true, true))
    }

    @Test func aJobFileWrittenIsAChangeWithoutRescan() {
        #expect(classify(event(IN_CLOSE_WRITE, "a.yaml"), tree) == (true, false))
        #expect(classify(event(IN_ATTRIB, "a.yml"), tree) == (true, false))
    }

    @Test func createdDeletedOrMovedJobFilesRescan() {
        for mask in [IN_CREATE, IN_DELETE, IN_MOVED_FROM, IN_MOVED_TO] {
            #expect(classify(event(mask, "a.yaml"), tree) == (true, true))
        }
    }

    @Test func newSubdirectoryRescans() {
        #expect(classify(event(IN_CREATE, "team", directory: true), tree) == (true, true))
        #expect(classify(event(IN_DELETE, "team", directory: true), tree) == (true, true))
    }

    @Test func leftoversHiddenAndOtherFilesAreNotChanges() {
        for name in [".a.yaml.swp", "a.yaml.swp", "a.yaml~", "#a.yaml#", ".hidden.yaml", "notes.txt", "4913"] {
            #expect(classify(event(IN_CLOSE_WRITE, name), tree) == (false, false), "\(name)")
            #expect(classify(event(IN_CREATE, name), tree) == (false, false), "\(name)")
        }
        #expect(classify(event(IN_CREATE, ".git", directory: true), tree) == (false, false))
    }

    @Test func aHiddenLinkOnAChainIsAChange() {
        // The Kubernetes swap: `..data_tmp` renamed to `..data`.
        #expect(classify(event(IN_MOVED_TO, "..data"), linkChain) == (true, true))
        #expect(classify(event(IN_CREATE, "..data_tmp"), linkChain) == (false, false))
        #expect(classify(event(IN_CREATE, "..2024_02", directory: true), linkChain) == (false, false))
    }

    @Test func aNameOnlyDirectoryIgnoresOtherNames() {
        #expect(classify(event(IN_CLOSE_WRITE, "other.yaml"), linkChain) == (false, false))
        #expect(classify(event(IN_CLOSE_WRITE, "jobs.yaml"), linkChain) == (true, false))
    }

    @Test func theWatchedDirectoryGoingAwayRescans() {
        #expect(classify(event(IN_DELETE_SELF), tree) == (true, true))
        #expect(classify(event(IN_MOVE_SELF), linkChain) == (true, true))
        #expect(WatchLoop.classify(event(IN_IGNORED), in: .dropped) == (true, true))
        #expect(WatchLoop.classify(event(IN_IGNORED), in: .unknown) == (false, false))
    }

    @Test func attributesOfATreeDirectoryItselfRescan() {
        #expect(classify(event(IN_ATTRIB, directory: true), tree) == (true, true))
        #expect(classify(event(IN_ATTRIB, directory: true), linkChain) == (false, false))
    }

    @Test func eventsOfARemovedWatchAreIgnored() {
        #expect(WatchLoop.classify(event(IN_CLOSE_WRITE, "a.yaml"), in: .unknown) == (false, false))
    }

    @Test func parseSplitsRecordsWithPaddedNames() {
        var bytes: [UInt8] = []
        func append(_ wd: Int32, _ mask: UInt32, _ name: String, padTo length: Int) {
            withUnsafeBytes(of: wd) { bytes += $0 }
            withUnsafeBytes(of: mask) { bytes += $0 }
            withUnsafeBytes(of: UInt32(0)) { bytes += $0 }
            withUnsafeBytes(of: UInt32(length)) { bytes += $0 }
            var padded = Array(name.utf8)
            padded += Array(repeating: 0, count: length - padded.count)
            bytes += padded
        }
        append(3, UInt32(IN_CREATE), "jobs.yaml", padTo: 16)
        append(-1, UInt32(IN_Q_OVERFLOW), "", padTo: 0)
        append(4, UInt32(IN_DELETE), "é.yml", padTo: 16)
        bytes += [1, 2, 3]  // a truncated header is not read
        let events = bytes.withUnsafeBytes { InotifyEvent.parse($0) }
        #expect(
            events == [
                InotifyEvent(watch: 3, mask: UInt32(IN_CREATE), name: "jobs.yaml"),
                InotifyEvent(watch: -1, mask: UInt32(IN_Q_OVERFLOW), name: ""),
                InotifyEvent(watch: 4, mask: UInt32(IN_DELETE), name: "é.yml"),
            ])
    }
}
