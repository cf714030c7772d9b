import Foundation
import SundialConfig
import SundialCore
import SundialTesting
import Synchronization
import Testing

@testable import SundialRuntime

/// Files that are not what they seem, read the way the loader reads them: nothing blocks,
/// nothing is decoded lossily, every problem names the file as it is.
@Suite("Hostile files: FIFOs, devices, names that are not UTF-8", .offPool)
struct HostileFilesTests {
    /// Runs `body` on a thread with a deadline, so a blocking `open` fails the test instead of
    /// hanging the suite. `body` runs outside the lock: run inside it, a blocked body held the
    /// lock the deadline's check needs, and a failing test hung instead of failing.
    func withinDeadline<T: Sendable>(_ seconds: Double, _ body: @escaping @Sendable () -> T) async throws -> T {
        let result = Mutex<T?>(nil)
        let thread = Thread {
            let r = body()
            result.withLock { $0 = r }
        }
        thread.start()
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while ContinuousClock.now < deadline {
            if let r = result.withLock({ $0 }) { return r }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw CancellationError()
    }

    /// `body`, and when it fails (a reader blocked in `open` past the deadline), a writer's open
    /// of `fifo` to release that reader, so a failing test ends rather than hanging the suite.
    func unblocking<T>(_ fifo: String, _ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch {
            let w = open(fifo, O_WRONLY | O_NONBLOCK)
            if w >= 0 { close(w) }
            throw error
        }
    }

    @Test func aFIFONamedLikeAJobFileNeverBlocks() async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("conf/a.yaml", "version: 1\njobs:\n  a:\n    every: 5m\n    command: [x]\n")
        #expect(mkfifo(tmp.url("conf/b.yaml"), 0o644) == 0)
        let path = tmp.url("conf")
        let r = try await withinDeadline(5) { ConfigurationLoading.load(paths: [path]) }
        #expect(r.jobSet == nil)
        #expect(r.diagnostics.map(\.description).contains("\(path)/b.yaml:1:1: error: not a regular file"), "\(r.diagnostics)")
    }

    @Test func readingAFIFOByNameIsRefusedAfterOpeningWithoutBlocking() async throws {
        // The race the listing cannot see: a regular file swapped for a FIFO between `stat` and
        // `open`. `FileSystem.read` must check what it opened.
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        let fifo = tmp.url("swap.yaml")
        #expect(mkfifo(fifo, 0o644) == 0)
        let outcome = try await withinDeadline(5) { () -> String in
            do {
                _ = try FileSystem.read(fifo, limit: 1000)
                return "read"
            } catch { return "\(error)" }
        }
        #expect(outcome.contains("is a FIFO, not a regular file"), "\(outcome)")
        let device = try await withinDeadline(5) { () -> String in
            do {
                _ = try FileSystem.read("/dev/zero", limit: 1000)
                return "read"
            } catch { return "\(error)" }
        }
        #expect(device.contains("is a device"), "\(device)")
    }

    @Test func aLinkToTheRootEndsTheListingQuickly() async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("j/a.yaml", "version: 1\njobs:\n  a:\n    every: 1s\n    command: [/bin/true]\n")
        try tmp.symlink("j/root", to: "/")
        let path = tmp.url("j")
        // Unbounded, this walked /proc and /sys until killed; bounded, it ends within seconds
        // even on a loaded CI machine.
        let r = try await withinDeadline(60) { ConfigurationLoading.load(paths: [path]) }
        #expect(r.jobSet == nil)
        #expect(r.diagnostics.count == 1, "\(r.diagnostics)")
        #expect(r.diagnostics.first?.message.hasSuffix("below \(path): the whole set is rejected (is the path a mistake, such as a link to `/`?)") == true)
        let plan = try await withinDeadline(60) { WatchPlan(paths: [path]) }
        #expect(plan.exceeded)
    }

    @Test func aFileNameThatIsNotUTF8IsLoadedAndPrintedEscaped() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("conf/keep.yaml", "version: 1\njobs:\n  a:\n    every: 5m\n    command: [x]\n")
        // "caf\xe9.yaml" (Latin-1 é) and a name with a newline in it.
        for (raw, text) in [
            (Array("caf".utf8) + [0xE9] + Array(".yaml".utf8), "version: 1\njobs:\n  b:\n    every: 5m\n    command: [x]\n"),
            (Array("bad\nname.yaml".utf8), "version: 1\njobs:\n  c:\n    every: nope\n    command: [x]\n"),
        ] {
            let full = Array(tmp.url("conf/").utf8) + raw
            let fd = open(PathProbe.cString(full), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            #expect(fd >= 0)
            _ = Array(text.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
        let r = ConfigurationLoading.load(paths: [tmp.url("conf")])
        let messages = r.diagnostics.map(\.description)
        // The Latin-1 name was read (its job is known, no "no such file"), the other one too.
        #expect(!messages.contains { $0.contains("No such file") || $0.contains("no such file") }, "\(messages)")
        #expect(messages.contains { $0.hasPrefix(tmp.url("conf/") + "bad\\x0aname.yaml:4:12: error:") }, "\(messages)")
        let listing = ConfigFiles.list(paths: [tmp.url("conf")])
        #expect(listing.files.contains(tmp.url("conf/") + "caf\\xe9.yaml"), "\(listing.files)")
    }

    @Test func displayEscapesOnlyWhatIsNotPrintableUTF8() {
        #expect(PathProbe.display(Array("/etc/sundial/jobs.d/a b.yaml".utf8)) == "/etc/sundial/jobs.d/a b.yaml")
        #expect(PathProbe.display(Array("a\\b".utf8)) == "a\\b")
        #expect(PathProbe.display(Array("a\\b".utf8) + [0xFF]) == "a\\\\b\\xff")
        #expect(PathProbe.display(Array("é\t".utf8)) == "é\\x09")
        #expect(PathProbe.display([0xC3]) == "\\xc3")
        // C1 controls and bidirectional overrides act on a terminal or reorder the line.
        #expect(PathProbe.display(Array("a\u{9B}31mb".utf8)) == "a\\xc2\\x9b31mb")
        #expect(PathProbe.display(Array("x\u{202E}lmay.yaml".utf8)) == "x\\xe2\\x80\\xaelmay.yaml")
        #expect(PathProbe.display(Array("x\u{2067}.yaml".utf8)) == "x\\xe2\\x81\\xa7.yaml")
    }

    /// An `env_file` is read at each launch, on a thread of the shared pool: a FIFO there (or
    /// one swapped in later) blocked that thread in `open` for good, and two such fires held
    /// every thread of a two-core box's pool.
    @Test func anEnvFileThatIsAFIFOIsRefusedWithoutBlocking() async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        let fifo = tmp.url("app.env")
        #expect(mkfifo(fifo, 0o600) == 0)
        let outcome = try await unblocking(fifo) {
            try await withinDeadline(5) { () -> String in
                do {
                    _ = try EnvironmentFile.load(path: fifo, requirePrivate: true)
                    return "read"
                } catch let error as LaunchError { return error.message } catch { return "\(error)" }
            }
        }
        #expect(outcome == "env_file \(fifo): not a regular file")
    }

    /// The fleet's password file is read at start: a FIFO there hung the agent's start.
    @Test func aPasswordFileThatIsAFIFOIsRefusedWithoutBlocking() async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        let fifo = tmp.url("pgpass")
        #expect(mkfifo(fifo, 0o600) == 0)
        let outcome = try await unblocking(fifo) {
            try await withinDeadline(5) { () -> String in
                do {
                    return try PostgresSettings.readPasswordFile(fifo)
                } catch let error as FleetSettingsError { return error.message } catch { return "\(error)" }
            }
        }
        #expect(outcome == "cannot read the password file \(fifo): not a regular file")
    }

    @Test func theZoneDatabaseIsNeverReadThroughAFIFO() async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        #expect(mkfifo(tmp.url("Fifo"), 0o644) == 0)
        let path = tmp.url("Fifo")
        let bytes = try await withinDeadline(5) { SystemTimeZones.readFile(path) }
        #expect(bytes == nil)
    }
}
