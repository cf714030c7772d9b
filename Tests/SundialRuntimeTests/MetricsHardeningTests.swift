import CSundialShim
import Dispatch
import Foundation
import Glibc
import SundialCore
import SundialTesting
import Synchronization
import Testing

@testable import SundialRuntime

/// Defects a hostile probe found in the metrics file writer and listener (FIFOs and devices
/// at the file's paths, symlinks, responses held for clients that do not read, re-rendering
/// each scrape, the port chosen for port 0).
@Suite("Metrics: hostile files and clients", .timeLimit(.minutes(1)), .offPool)
struct MetricsHardeningTests {
    static func tempDir() -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sundial-mh-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Runs `body` on another thread and waits at most `seconds`. If it is still running then
    /// (blocked opening a FIFO for writing), `rescue` unblocks it, and the answer is false.
    static func finishes(within seconds: Int, rescue: () -> Void, _ body: @escaping @Sendable () -> Void) -> Bool {
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            body()
            done.signal()
        }
        if done.wait(timeout: .now() + .seconds(seconds)) == .success { return true }
        rescue()
        _ = done.wait(timeout: .now() + .seconds(10))
        return false
    }

    /// Opens the FIFO for reading (so a writer blocked in `open` goes on), drains it, closes.
    static func unblock(_ fifo: String) {
        let fd = open(fifo, O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else { return }
        usleep(200_000)
        var buf = [UInt8](repeating: 0, count: 65536)
        _ = read(fd, &buf, buf.count)
        close(fd)
    }

    // MARK: - The temporary file

    @Test func aFIFOAtTheTemporaryPathBlocksNeitherStartNorStop() throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/sundial.prom"
        // Where the writer used to put its temporary file: `.<name>.tmp.<pid>`.
        let planted = dir + "/.sundial.prom.tmp.\(getpid())"
        #expect(mkfifo(planted, 0o600) == 0)
        let errors = Messages()
        let exporter = try MetricsExporter(
            filePath: path, listen: "127.0.0.1:0", version: "1", writeInterval: .milliseconds(20), onError: { errors.append($0) })
        let started = Self.finishes(within: 5, rescue: { Self.unblock(planted) }) {
            try? exporter.start()
            exporter.observe(.logDropped(lines: 3, at: Instant(unixSeconds: 0)))
            try? exporter.writeFileNow()
            exporter.stop()
        }
        #expect(started, "start, write or stop blocked on the FIFO at \(planted)")
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        #expect(text.contains("sundial_log_dropped_lines_total 3\n"), "\(text.prefix(200))")
        #expect(errors.all.isEmpty, "\(errors.all)")
        // Someone else's file is left alone.
        var st = stat()
        #expect(lstat(planted, &st) == 0 && st.st_mode & S_IFMT == S_IFIFO)
    }

    @Test func whateverIsAtTheTemporaryNameIsRefusedNeverOpened() throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/sundial.prom"
        let planted = dir + "/.sundial.prom.tmp.guessed"
        #expect(mkfifo(planted, 0o600) == 0)
        let box = Messages()
        let finished = Self.finishes(within: 5, rescue: { Self.unblock(planted) }) {
            do throws(AtomicFileWriter.WriteError) {
                try AtomicFileWriter.write(Array("x 1\n".utf8), to: path, mode: 0o644, tempSuffix: { "guessed" })
            } catch {
                box.append(error.description)
            }
        }
        #expect(finished, "the writer blocked opening the FIFO at \(planted)")
        #expect(box.all.first?.contains("create \(planted): File exists") == true, "\(box.all)")
        #expect(access(path, F_OK) != 0)
    }

    // MARK: - What may be replaced; the bound address

    @Test func aFIFOOrDeviceAtTheFilePathIsRefusedAndLeftInPlace() throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/sundial.prom"
        #expect(mkfifo(path, 0o600) == 0)
        let errors = Messages()
        let exporter = try MetricsExporter(filePath: path, listen: nil, version: "1", writeInterval: .seconds(3600), onError: { errors.append($0) })
        try exporter.start()
        exporter.stop()
        #expect(errors.all.count == 1)
        #expect(errors.all.first?.contains("is not a regular file") == true, "\(errors.all)")
        var st = stat()
        #expect(lstat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFIFO)
        // A character device (/dev/null's twin, made here: never test on the real one) the
        // same way; only root can make one.
        guard geteuid() == 0 else { return }
        let device = dir + "/null"
        let dev = dev_t(1 << 8 | 3)  // makedev(1, 3): a macro Swift does not import
        #expect(mknod(device, S_IFCHR | 0o666, dev) == 0)
        #expect(throws: AtomicFileWriter.WriteError.self) { try AtomicFileWriter.write([], to: device) }
        #expect(lstat(device, &st) == 0 && st.st_mode & S_IFMT == S_IFCHR)
    }

    @Test func aSymlinkIsWrittenThroughAndKept() throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/real", withIntermediateDirectories: true)
        let target = dir + "/real/sundial.prom"
        #expect(FileManager.default.createFile(atPath: target, contents: Data("old\n".utf8)))
        let link = dir + "/sundial.prom"
        #expect(symlink("real/sundial.prom", link) == 0)
        try AtomicFileWriter.write(Array("new 1\n".utf8), to: link)
        var st = stat()
        #expect(lstat(link, &st) == 0 && st.st_mode & S_IFMT == S_IFLNK)
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "new 1\n")
        // Nothing left beside the link or the target.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["real", "sundial.prom"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/real") == ["sundial.prom"])
    }

    /// The owner check covers the configured link only: a second link on the way (or a linked
    /// directory), which someone else may own or swap, is refused and nothing is written.
    @Test func aLinkThroughAnotherLinkIsRefused() throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/real", withIntermediateDirectories: true)
        let victim = dir + "/real/victim"
        #expect(FileManager.default.createFile(atPath: victim, contents: Data("precious\n".utf8)))
        #expect(symlink(victim, dir + "/hop") == 0)
        #expect(symlink(dir + "/hop", dir + "/chain.prom") == 0)
        #expect(symlink(dir + "/real", dir + "/linkdir") == 0)
        #expect(symlink("linkdir/victim", dir + "/through-dir.prom") == 0)
        for link in ["chain.prom", "through-dir.prom"] {
            #expect {
                try AtomicFileWriter.write(Array("x 1\n".utf8), to: dir + "/" + link)
            } throws: { error in
                (error as? AtomicFileWriter.WriteError)?.description.contains("goes through another symlink") == true
            }
        }
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n")
        // Straight at the file, relative or absolute, is fine.
        #expect(symlink("real/victim", dir + "/direct.prom") == 0)
        try AtomicFileWriter.write(Array("x 2\n".utf8), to: dir + "/direct.prom")
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "x 2\n")
    }

    @Test func aDanglingOrForeignSymlinkIsRefused() throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let link = dir + "/sundial.prom"
        #expect(symlink(dir + "/missing.prom", link) == 0)
        #expect {
            try AtomicFileWriter.write(Array("x 1\n".utf8), to: link)
        } throws: { error in
            (error as? AtomicFileWriter.WriteError)?.description.contains("its target must exist") == true
        }
        #expect(access(dir + "/missing.prom", F_OK) != 0)
        // A link that belongs to someone else (only root can make one here).
        guard geteuid() == 0 else { return }
        let target = dir + "/victim"
        #expect(FileManager.default.createFile(atPath: target, contents: Data("keep\n".utf8)))
        let foreign = dir + "/foreign.prom"
        #expect(symlink(target, foreign) == 0)
        #expect(lchown(foreign, 65534, 65534) == 0)
        #expect {
            try AtomicFileWriter.write(Array("x 1\n".utf8), to: foreign)
        } throws: { error in
            (error as? AtomicFileWriter.WriteError)?.description.contains("owned by uid 65534") == true
        }
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "keep\n")
    }

    @Test func theBoundAddressHasThePortTheKernelChose() throws {
        let exporter = try MetricsExporter(filePath: nil, listen: "127.0.0.1:0", version: "1")
        #expect(exporter.boundAddress == nil)
        try exporter.start()
        defer { exporter.stop() }
        let port = try #require(exporter.port)
        #expect(exporter.boundAddress?.description == "127.0.0.1:\(port)")
    }

    // MARK: - One render per change

    @Test func scrapesWithNothingChangedRenderOnce() throws {
        let exporter = try MetricsExporter(filePath: nil, listen: "127.0.0.1:0", version: "1")
        try exporter.start()
        defer { exporter.stop() }
        let port = try #require(exporter.port)
        let first = try TCPConnection(port: port).exchange("GET /metrics HTTP/1.1\r\n\r\n")
        let second = try TCPConnection(port: port).exchange("GET /metrics HTTP/1.1\r\n\r\n")
        #expect(first.hasPrefix("HTTP/1.1 200 OK\r\n") && first == second)
        #expect(exporter.renderCount == 1)
        exporter.observe(.logDropped(lines: 2, at: Instant(unixSeconds: 0)))
        let third = try TCPConnection(port: port).exchange("GET /metrics HTTP/1.1\r\n\r\n")
        #expect(third.contains("sundial_log_dropped_lines_total 2\n"))
        #expect(exporter.renderCount == 2)
    }

    // MARK: - Responses held for clients that do not read

    @Test func responsesHeldForClientsThatDoNotReadStayWithinTheBudget() throws {
        let budget = 16 * 1024 * 1024
        let server = try MetricsHTTPServer(address: ListenAddress(parsing: "127.0.0.1:0"), pages: nil, maxHeldResponseBytes: budget)
        // 8 MiB each and a head, counted whole until the connection ends (what the kernel's
        // send buffer took of it is still allocated here): one fits in 16 MiB, the other seven
        // get a 503.
        let body = String(repeating: "x", count: 8 * 1024 * 1024)
        func turn() {
            var fds: [pollfd] = []
            server.appendPollDescriptors(to: &fds, now: monotonicMillis())
            _ = poll(&fds, nfds_t(fds.count), 10)
            server.handleEvents(fds[...], now: monotonicMillis(), render: { body })
        }
        // Eight clients with a tiny receive buffer ask and never read.
        var clients: [Int32] = []
        defer { clients.forEach { _ = close($0) } }
        for _ in 0..<8 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var small: Int32 = 4096
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = server.port.bigEndian
            sa.sin_addr.s_addr = inet_addr("127.0.0.1")
            let rc = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            #expect(rc == 0)
            clients.append(fd)
            _ = Array("GET /metrics HTTP/1.1\r\n\r\n".utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        // Serve until each request is answered (held, or refused and closed).
        var deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline, !(server.busyResponses >= 1 && server.busyResponses + server.connectionCount == 8) {
            turn()
        }
        #expect(server.peakHeldResponseBytes <= budget, "held \(server.peakHeldResponseBytes) bytes, budget \(budget)")
        #expect(server.heldResponseBytes > 0)
        #expect(server.busyResponses == 7)
        // The refused ones got a prompt 503.
        var refused = 0
        for fd in clients {
            var head = [UInt8](repeating: 0, count: 16)
            let n = recv(fd, &head, head.count, Int32(MSG_DONTWAIT))
            if n > 0, String(decoding: head[..<n], as: UTF8.self).hasPrefix("HTTP/1.1 503") { refused += 1 }
        }
        #expect(refused == server.busyResponses)
        // Once the clients are gone, their responses are released (well before the 5 s deadline).
        clients.forEach { _ = close($0) }
        clients = []
        deadline = ContinuousClock.now + .seconds(3)
        while ContinuousClock.now < deadline, server.connectionCount > 0 || server.heldResponseBytes > 0 { turn() }
        #expect(server.connectionCount == 0)
        #expect(server.heldResponseBytes == 0)
    }
}

/// Messages collected from another thread.
final class Messages: Sendable {
    private let list = Mutex<[String]>([])
    func append(_ m: String) { list.withLock { $0.append(m) } }
    var all: [String] { list.withLock { $0 } }
}
