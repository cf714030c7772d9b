import CSundialShim  // `timespec`'s fields (see PathProbe.swift)
import Glibc

/// Tells systemd about the agent's state (`sd_notify(3)`), for the unit's `Type=notify`.
///
/// The protocol is one datagram of `KEY=value` lines to the `AF_UNIX` socket named by
/// `NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace). Written by hand rather than
/// linking libsystemd: that would tie the static binary to one more shared library for a
/// dozen lines of socket code. Sending never blocks the agent (datagram, `MSG_DONTWAIT`), and
/// a failure is returned, never fatal: the agent schedules jobs whether or not systemd listens.
///
/// The agent sends ``ready(status:)`` once the first configuration is loaded,
/// ``reloading()`` when a reload starts and ``ready(status:)`` again when it is done (or
/// rejected: the last good configuration keeps running), and ``stopping()`` on SIGTERM.
public struct SystemdNotifier: Sendable, Hashable {
    /// The socket as given in `NOTIFY_SOCKET`.
    public let socketPath: String

    public struct NotifyError: Error, Hashable, Sendable, CustomStringConvertible {
        public var errno: Int32
        public var description: String { "cannot notify systemd: \(String(cString: strerror(errno)))" }
    }

    /// A notifier for `path` (`/run/systemd/notify` or `@abstract-name`); nil for any other
    /// form (systemd's `vsock:` addresses are not supported) or a path too long for `sun_path`.
    public init?(socketPath path: String) {
        guard path.hasPrefix("/") || path.hasPrefix("@"), path.utf8.count >= 2,
            path.utf8.count < MemoryLayout.size(ofValue: sockaddr_un().sun_path)
        else { return nil }
        socketPath = path
    }

    /// The notifier systemd asked for through `NOTIFY_SOCKET`, or nil when not started by
    /// systemd with `Type=notify`.
    /// - Parameter unsetEnvironment: remove `NOTIFY_SOCKET` from the environment, so jobs
    ///   started later do not inherit it and confuse systemd with their own notifications.
    public static func fromEnvironment(unsetEnvironment: Bool = true) -> SystemdNotifier? {
        guard let raw = getenv("NOTIFY_SOCKET") else { return nil }
        let path = String(cString: raw)
        if unsetEnvironment { unsetenv("NOTIFY_SOCKET") }
        return SystemdNotifier(socketPath: path)
    }

    /// `READY=1`: start-up (or a reload) is complete.
    public func ready(status: String? = nil) throws(NotifyError) {
        try notify("READY=1" + (status.map { "\nSTATUS=" + Self.oneLine($0) } ?? ""))
    }

    /// `RELOADING=1` with the `MONOTONIC_USEC` that `Type=notify-reload` requires.
    public func reloading(status: String? = nil) throws(NotifyError) {
        try notify("RELOADING=1\nMONOTONIC_USEC=\(Self.monotonicMicros())" + (status.map { "\nSTATUS=" + Self.oneLine($0) } ?? ""))
    }

    /// `STOPPING=1`: shutdown has begun.
    public func stopping(status: String? = nil) throws(NotifyError) {
        try notify("STOPPING=1" + (status.map { "\nSTATUS=" + Self.oneLine($0) } ?? ""))
    }

    /// `STATUS=…`: free text shown by `systemctl status`.
    public func status(_ text: String) throws(NotifyError) { try notify("STATUS=" + Self.oneLine(text)) }

    /// `WATCHDOG=1`: keep-alive for a unit with `WatchdogSec=`.
    public func watchdog() throws(NotifyError) { try notify("WATCHDOG=1") }

    /// Sends `message` (newline-separated `KEY=value` assignments) as one datagram.
    public func notify(_ message: String) throws(NotifyError) {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw NotifyError(errno: errno) }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        var name = Array(socketPath.utf8)
        if name.first == UInt8(ascii: "@") { name[0] = 0 }  // abstract namespace: leading NUL
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: name) }
        // Abstract names are exactly their bytes; paths may carry the terminating NUL.
        let length = MemoryLayout<sa_family_t>.size + name.count + (name[0] == 0 ? 0 : 1)
        let bytes = Array(message.utf8)
        let sent = withUnsafePointer(to: &addr) { ap in
            ap.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT), sa, socklen_t(length)) }
            }
        }
        guard sent == bytes.count else { throw NotifyError(errno: sent < 0 ? errno : EMSGSIZE) }
    }

    /// The watchdog period systemd expects keep-alives within (`WATCHDOG_USEC`), if it is
    /// meant for this process (`WATCHDOG_PID` absent or ours). Send ``watchdog()`` at half of it.
    public static func watchdogInterval() -> Duration? {
        guard let raw = getenv("WATCHDOG_USEC"), let usec = UInt64(String(cString: raw)), usec > 0 else { return nil }
        if let pid = getenv("WATCHDOG_PID"), Int32(String(cString: pid)) != getpid() { return nil }
        return .microseconds(Int64(clamping: usec))
    }

    static func oneLine(_ s: String) -> String {
        // By scalar: "\r\n" is one `Character`, equal to neither "\n" nor "\r".
        var out = String.UnicodeScalarView()
        for u in s.unicodeScalars { out.append(u == "\n" || u == "\r" ? " " : u) }
        return String(out)
    }

    static func monotonicMicros() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
    }
}
