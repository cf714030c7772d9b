import CSundialShim
import Foundation
import OrderedCollections
import SundialCore
import SundialTesting
import Synchronization
import Testing

@testable import SundialRuntime

/// The event log against hostile readers and paths: a stalled pipe, a FIFO, a device, a
/// symlink, a file or directory removed under the agent. None may stop the caller (the
/// scheduler's loop), and none may make the log rename what is not its own regular file or
/// grow a file nobody can reach.
@Suite(.offPool) struct EventLogStreamTests {
    let t0 = Instant(unixMillis: 1_767_225_600_123)
    let payload = String(repeating: "y", count: 2000)

    // MARK: - Stalled pipe (standard output)

    /// Each dropped line used to wait 250 ms (and, once lines were pending, the `log.dropped`
    /// retry waited as long again), on the scheduler's loop: 200 lines/s froze the agent.
    @Test func aStalledPipeDropsLinesWithoutWaiting() throws {
        var fds: [Int32] = [0, 0]
        #expect(sundial_pipe_cloexec(&fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        let sink = DescriptorEventSink(fd: fds[1])
        let log = EventLog(sink: sink, clock: VirtualClock(wall: t0))
        let count = Int(sundial_grow_pipe(fds[1], 0)) / payload.utf8.count + 40
        let start = ContinuousClock.now
        for i in 0..<count { log.log(Event("line", at: t0, ["i": .int(Int64(i)), "p": .string(payload)])) }
        let elapsed = ContinuousClock.now - start
        #expect(elapsed < .seconds(2), "\(count) lines took \(elapsed)")
        let dropped = log.pendingDroppedLines
        #expect(dropped >= 40)

        // The reader drains: what was written is intact, and the loss is reported next.
        var received = drain(fds[0])
        log.log(Event("after", at: t0))
        received += drain(fds[0])
        let lines = String(decoding: received, as: UTF8.self).split(separator: "\n").map { parseJSON(String($0)) }
        #expect(lines.allSatisfy { $0 != nil })
        #expect(lines.count == count - dropped + 2)
        #expect(lines.suffix(2).map { $0?["event"] as? String } == ["log.dropped", "after"])
        #expect(lines.suffix(2).first??["lines"] as? Int == dropped)
    }

    /// Under systemd, standard output is a stream socket to journald: its default send buffer
    /// held some 170 lines of 200 bytes, so any short stall of journald dropped a burst once
    /// lines no longer waited. As root the buffer is grown past net.core.wmem_max (each small
    /// write costs the socket about 1 KiB of its buffer, so 1 MiB asked holds ~1,700 lines).
    @Test(.enabled(if: geteuid() == 0)) func aSocketOnStandardOutputGetsTheSameSlackAsAPipe() throws {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        let sink = DescriptorEventSink(fd: fds[1])
        let log = EventLog(sink: sink, clock: VirtualClock(wall: t0))
        let line = String(repeating: "z", count: 150)
        for i in 0..<1_000 { log.log(Event("line", at: t0, ["i": .int(Int64(i)), "p": .string(line)])) }
        #expect(log.pendingDroppedLines == 0, "a reader that stalls for 1,000 lines loses none")
    }

    // MARK: - FIFO as the log file

    /// Opening a FIFO for writing waited for a reader: with none, the agent never started.
    @Test func aFIFOWithoutAReaderIsOpenedLaterAtABoundedRate() throws {
        let dir = try temporaryDirectory()
        let fifo = dir + "/log.fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        let clock = VirtualClock(wall: t0)
        let opened = onThread(within: 10, unblocking: fifo) { try FileEventSink(path: fifo, maxBytes: 4096, keep: 2, clock: clock) }
        let sink = try #require(opened).get()
        let log = EventLog(sink: sink, clock: clock)
        for i in 0..<10 { log.log(Event("lost", at: t0, ["i": .int(Int64(i))])) }
        #expect(log.pendingDroppedLines == 10)

        let reader = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        #expect(reader >= 0)
        defer { close(reader) }
        log.log(Event("too-soon", at: t0))  // the open is retried once a second, not per line
        #expect(log.pendingDroppedLines == 11)
        clock.advance(by: .seconds(1))
        log.log(Event("after", at: t0))
        let events = String(decoding: drain(reader), as: UTF8.self).split(separator: "\n").compactMap { parseJSON(String($0)) }
        #expect(events.map { $0["event"] as? String } == ["log.dropped", "after"])
        #expect(events.first?["lines"] as? Int == 11)
        #expect(isKind(fifo, S_IFIFO))
    }

    /// A FIFO whose reader stops reading blocked the write forever (and rotation renamed the
    /// FIFO away, putting a regular file in its place).
    @Test func aStalledFIFOReaderDropsLinesAndTheFIFOIsNeverRotated() throws {
        let dir = try temporaryDirectory()
        let fifo = dir + "/log.fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        let reader = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        #expect(reader >= 0)
        defer { close(reader) }
        let clock = VirtualClock(wall: t0)
        let payload = payload
        let outcome = onThread(within: 10, unblocking: fifo) { () throws -> (written: Int, dropped: Int, log: EventLog) in
            let log = EventLog(sink: try FileEventSink(path: fifo, maxBytes: 4096, keep: 2, clock: clock), clock: clock)
            let count = Int(sundial_grow_pipe(reader, 0)) / payload.utf8.count + 40
            for i in 0..<count { log.log(Event("line", at: Instant(unixMillis: 0), ["i": .int(Int64(i)), "p": .string(payload)])) }
            return (count, log.pendingDroppedLines, log)
        }
        let (count, dropped, log) = try #require(outcome).get()
        #expect(dropped >= 40)
        #expect(isKind(fifo, S_IFIFO))
        #expect(!FileManager.default.fileExists(atPath: fifo + ".1"))

        var received = drain(reader)
        log.log(Event("after", at: t0))
        received += drain(reader)
        let lines = String(decoding: received, as: UTF8.self).split(separator: "\n").map { parseJSON(String($0)) }
        #expect(lines.allSatisfy { $0 != nil })
        #expect(lines.count == count - dropped + 2)
        #expect(lines.suffix(2).map { $0?["event"] as? String } == ["log.dropped", "after"])
    }

    // MARK: - Not a regular file

    /// `--log /dev/null` with a small `--log-max-bytes` renamed the device node away and put
    /// regular files in its place.
    @Test(.enabled(if: geteuid() == 0, "mknod needs root"))
    func aCharacterDeviceIsWrittenButNeverRenamed() throws {
        let dir = try temporaryDirectory()
        let null = dir + "/null"  // 1:3, /dev/null's numbers (0x103 in the kernel's old encoding)
        try #require(mknod(null, S_IFCHR | 0o666, 0x103) == 0, "mknod: \(errnoText(errno))")
        let log = EventLog(sink: try FileEventSink(path: null, maxBytes: 4096, keep: 2), clock: VirtualClock(wall: t0))
        for i in 0..<200 { log.log(Event("line", at: t0, ["i": .int(Int64(i)), "pad": .string(String(repeating: "p", count: 100))])) }
        #expect(log.writtenLines == 200)
        #expect(isKind(null, S_IFCHR))
        #expect(!FileManager.default.fileExists(atPath: null + ".1"))
    }

    /// A symlink at the path: rotation renamed the link (leaving its target to grow, never
    /// rotated again). Now the file it names is rotated, beside it, and the link stays.
    @Test func aSymlinkedLogRotatesTheFileItNames() throws {
        let dir = try temporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        let target = dir + "/data/events.jsonl"
        let link = dir + "/events.jsonl"
        #expect(symlink(target, link) == 0)
        let log = EventLog(sink: try FileEventSink(path: link, maxBytes: 1000, keep: 2), clock: VirtualClock(wall: t0))
        for i in 0..<100 { log.log(Event("rot", at: t0, ["i": .int(Int64(i)), "pad": .string(String(repeating: "p", count: 30))])) }
        #expect(isKind(link, S_IFLNK))
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: link)) == target)
        #expect(!FileManager.default.fileExists(atPath: link + ".1"))
        #expect(FileManager.default.fileExists(atPath: target + ".1"))
        #expect(FileManager.default.fileExists(atPath: target + ".2"))
        let text = try String(contentsOfFile: target, encoding: .utf8)
        #expect(text.utf8.count <= 1000)
        #expect(text.hasSuffix(#""i":99,"pad":""# + String(repeating: "p", count: 30) + "\"}\n"))
    }

    // MARK: - Removed under the agent

    /// A deleted log file was written forever (unbounded, invisible); now the path is checked
    /// once a second and opened again.
    @Test func aDeletedLogFileIsRecreatedWithinASecond() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/sundial.log"
        let clock = VirtualClock(wall: t0)
        let log = EventLog(sink: try FileEventSink(path: path, clock: clock), clock: clock)
        log.log(Event("first", at: t0))
        #expect(unlink(path) == 0)
        log.log(Event("soon", at: t0))  // the path is not checked per line
        clock.advance(by: .seconds(1))
        log.log(Event("later", at: t0))
        #expect(events(at: path) == ["later"])
    }

    /// Logrotate without SIGUSR1: the renamed file stops growing within a second.
    @Test func aRenamedLogFileIsFollowedWithinASecond() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/sundial.log"
        let clock = VirtualClock(wall: t0)
        let log = EventLog(sink: try FileEventSink(path: path, clock: clock), clock: clock)
        log.log(Event("first", at: t0))
        #expect(rename(path, path + ".old") == 0)
        clock.advance(by: .milliseconds(999))
        log.log(Event("second", at: t0))
        clock.advance(by: .milliseconds(1))
        log.log(Event("third", at: t0))
        #expect(events(at: path + ".old") == ["first", "second"])
        #expect(events(at: path) == ["third"])
    }

    /// The whole log directory removed: lines are dropped (never written to the deleted file)
    /// until it is back, and the open is retried once a second.
    @Test func aRemovedLogDirectoryDropsLinesUntilItIsBack() throws {
        let dir = try temporaryDirectory()
        let logs = dir + "/logs"
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        let path = logs + "/a.log"
        let clock = VirtualClock(wall: t0)
        let log = EventLog(sink: try FileEventSink(path: path, maxBytes: 10_000, keep: 3, clock: clock), clock: clock)
        log.log(Event("first", at: t0))
        try FileManager.default.removeItem(atPath: logs)
        clock.advance(by: .seconds(1))
        for i in 0..<5 { log.log(Event("lost", at: t0, ["i": .int(Int64(i))])) }
        #expect(log.pendingDroppedLines == 5)
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        log.log(Event("too-soon", at: t0))
        #expect(log.pendingDroppedLines == 6)
        clock.advance(by: .seconds(1))
        log.log(Event("back", at: t0))
        #expect(events(at: path) == ["log.dropped", "back"])
        #expect(log.pendingDroppedLines == 0)
        #expect(log.totalDroppedLines == 6)
    }

    /// Rotation found the file gone (its rename failed with ENOENT) and kept writing the
    /// deleted file; now it opens the path again.
    @Test func rotationOpensThePathAgainWhenTheFileIsGone() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/sundial.log"
        let clock = VirtualClock(wall: t0)
        let log = EventLog(sink: try FileEventSink(path: path, maxBytes: 1000, keep: 2, clock: clock), clock: clock)
        for i in 0..<5 { log.log(Event("rot", at: t0, ["i": .int(Int64(i)), "pad": .string(String(repeating: "p", count: 30))])) }
        #expect(unlink(path) == 0)
        for i in 5..<20 { log.log(Event("rot", at: t0, ["i": .int(Int64(i)), "pad": .string(String(repeating: "p", count: 30))])) }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.utf8.count <= 1000)
        #expect(text.split(separator: "\n").last.flatMap { parseJSON(String($0))?["i"] as? Int } == 19)
        #expect(log.pendingDroppedLines == 0)
    }

    // MARK: - Helpers

    /// The `event` names of the complete lines in the file at `path`.
    func events(at path: String) -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { parseJSON(String($0))?["event"] as? String }
    }

    func isKind(_ path: String, _ kind: mode_t) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && st.st_mode & S_IFMT == kind
    }

    /// Everything readable now from the non-blocking `fd`.
    func drain(_ fd: Int32) -> [UInt8] {
        _ = sundial_set_nonblocking(fd, 1)
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            received += buffer[..<n]
        }
        return received
    }

    /// Runs `body` on a thread of its own and waits at most `seconds`: `nil`, and a recorded
    /// issue, if it hangs. A body stuck on the FIFO `fifo` is then released by opening its other
    /// end for reading and draining it, so the stuck thread does not outlive the test.
    func onThread<T: Sendable>(within seconds: Double, unblocking fifo: String, _ body: @escaping @Sendable () throws -> T) -> Result<T, any Error>? {
        let result = Mutex<Result<T, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            let r = Result { try body() }
            result.withLock { $0 = r }
            done.signal()
        }.start()
        if done.wait(timeout: .now() + seconds) == .timedOut {
            Issue.record("blocked for more than \(seconds) s")
            let reader = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
            while done.wait(timeout: .now() + 0.05) == .timedOut { _ = drain(reader) }
            close(reader)
            return nil
        }
        return result.withLock { $0 }
    }
}
