import CSundialShim
import Foundation
import Glibc
import SundialRuntime
import SundialTesting
import Testing

/// A datagram socket standing in for systemd's notify socket.
final class FakeNotifySocket {
    let fd: Int32
    let name: String

    /// Binds a path socket, or an abstract one when `abstract` (name given as `@…`).
    init(abstract: Bool) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let unique = "sundial-notify-test-\(getpid())-\(UUID().uuidString.prefix(8))"
        name = abstract ? "@" + unique : NSTemporaryDirectory() + "/" + unique
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(name.utf8)
        if abstract { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes) }
        let len = MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(len)) } }
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    deinit {
        close(fd)
        if !name.hasPrefix("@") { unlink(name) }
    }

    func receive() -> String? {
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n < 0 ? nil : String(decoding: buf[0..<n], as: UTF8.self)
    }
}

@Suite(.serialized, .offPool) struct SystemdNotifierTests {
    @Test(arguments: [false, true]) func sendsStatesToPathAndAbstractSockets(abstract: Bool) throws {
        let server = try FakeNotifySocket(abstract: abstract)
        let notifier = try #require(SystemdNotifier(socketPath: server.name))
        try notifier.ready(status: "3 jobs\nloaded")
        #expect(server.receive() == "READY=1\nSTATUS=3 jobs loaded")
        // "\r\n" is one `Character` in Swift, equal to neither "\n" nor "\r": each of its
        // scalars must still become a blank, or the status would start a new KEY=VALUE line.
        try notifier.status("a\r\nFDSTORE=1\rb")
        #expect(server.receive() == "STATUS=a  FDSTORE=1 b")
        try notifier.reloading()
        let reloading = try #require(server.receive())
        #expect(reloading.hasPrefix("RELOADING=1\nMONOTONIC_USEC="))
        #expect(UInt64(reloading.components(separatedBy: "MONOTONIC_USEC=")[1]) != nil)
        try notifier.stopping()
        #expect(server.receive() == "STOPPING=1")
        try notifier.watchdog()
        #expect(server.receive() == "WATCHDOG=1")
    }

    @Test func fromEnvironmentReadsAndUnsetsNotifySocket() throws {
        setenv("NOTIFY_SOCKET", "@sundial-env-test", 1)
        let n = SystemdNotifier.fromEnvironment()
        #expect(n?.socketPath == "@sundial-env-test")
        #expect(getenv("NOTIFY_SOCKET") == nil)
        #expect(SystemdNotifier.fromEnvironment() == nil)
    }

    @Test func rejectsUnsupportedAddressesAndReportsSendFailures() throws {
        #expect(SystemdNotifier(socketPath: "vsock:2:1234") == nil)
        #expect(SystemdNotifier(socketPath: "relative/path") == nil)
        #expect(SystemdNotifier(socketPath: "/" + String(repeating: "x", count: 200)) == nil)
        let nobody = try #require(SystemdNotifier(socketPath: "/nonexistent/notify"))
        #expect(throws: SystemdNotifier.NotifyError.self) { try nobody.ready() }
    }

    @Test func watchdogIntervalHonoursPid() {
        setenv("WATCHDOG_USEC", "30000000", 1)
        unsetenv("WATCHDOG_PID")
        #expect(SystemdNotifier.watchdogInterval() == .seconds(30))
        setenv("WATCHDOG_PID", String(getpid() + 1), 1)
        #expect(SystemdNotifier.watchdogInterval() == nil)
        setenv("WATCHDOG_PID", String(getpid()), 1)
        #expect(SystemdNotifier.watchdogInterval() == .seconds(30))
        unsetenv("WATCHDOG_USEC")
        unsetenv("WATCHDOG_PID")
        #expect(SystemdNotifier.watchdogInterval() == nil)
    }
}
