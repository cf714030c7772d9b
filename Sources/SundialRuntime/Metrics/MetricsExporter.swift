import CSundialShim
import Glibc
import SundialCore
import Synchronization

/// Publishes the agent's metrics: as a file for node_exporter's textfile collector
/// (`--metrics-file`), and/or over HTTP on a loopback address (`--metrics-listen`).
///
/// The agent calls ``observe(_:)`` with every event it logs (cheap: a lock and a few
/// dictionary updates, no I/O). A thread of the exporter's own serves scrapes and rewrites the
/// file at most every ``Options/writeInterval``, and only when a value changed; ``stop()``
/// writes the final values. File and HTTP trouble never reaches the agent's scheduling: it is
/// reported once through `onError` and retried on the next interval.
///
/// ```swift
/// let metrics = try MetricsExporter(filePath: "/var/lib/node_exporter/textfile/sundial.prom",
///                                   listen: "127.0.0.1:9464", version: SundialVersion.current)
/// try metrics.start()
/// metrics.observe(event)   // for each event logged
/// metrics.stop()           // at shutdown
/// ```
public final class MetricsExporter: Sendable {
    public struct Options: Sendable {
        /// Where to write the exposition (`nil`: no file).
        public var filePath: String?
        /// Where to serve `GET /metrics` (`nil`: no server).
        public var listen: ListenAddress?
        /// Minimum time between two file writes.
        public var writeInterval: Duration
        public var registry: MetricsRegistry.Options

        public init(filePath: String? = nil, listen: ListenAddress? = nil, writeInterval: Duration = .seconds(10),
                    registry: MetricsRegistry.Options) {
            self.filePath = filePath
            self.listen = listen
            self.writeInterval = writeInterval
            self.registry = registry
        }
    }

    public struct StartError: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
    }

    public let options: Options
    let cell: RegistryCell
    private let control = Mutex<Control>(Control())

    private struct Control: ~Copyable {
        var thread: pthread_t?
        var wakeFD: Int32 = -1
        var port: UInt16?
    }

    /// - Parameter onError: told (on the exporter's thread) when a file write starts failing,
    ///   with a message for the event log; not called again until a write has succeeded.
    public init(options: Options, onError: @escaping @Sendable (String) -> Void = { _ in }) {
        self.options = options
        self.cell = RegistryCell(MetricsRegistry(options: options.registry), filePath: options.filePath, onError: onError)
    }

    /// Parses the command-line forms.
    /// - Parameters:
    ///   - listen: `HOST:PORT`; a non-loopback host is refused unless `allowNonLoopback`.
    /// - Throws: `ListenAddress.ParseError` for a bad or non-loopback `listen`.
    public convenience init(filePath: String?, listen: String?, allowNonLoopback: Bool = false, version: String,
                            writeInterval: Duration = .seconds(10),
                            onError: @escaping @Sendable (String) -> Void = { _ in }) throws(ListenAddress.ParseError) {
        let address = try listen.map { (s: String) throws(ListenAddress.ParseError) in try ListenAddress(parsing: s, allowNonLoopback: allowNonLoopback) }
        self.init(options: Options(filePath: filePath, listen: address, writeInterval: writeInterval,
                                   registry: .init(version: version)), onError: onError)
    }

    deinit { stop() }

    /// Feeds one event-log line to the metrics.
    public func observe(_ event: Event) { cell.registry.withLock { $0.observe(event) } }

    /// The current exposition text.
    public func render() -> String { cell.render() }

    /// The port the HTTP server listens on, once started (useful with port 0).
    public var port: UInt16? { control.withLock { $0.port } }

    /// Writes the file now if anything changed since the last write (or it was never written).
    /// - Throws: the write's error (also reported through `onError`).
    public func writeFileNow() throws(AtomicFileWriter.WriteError) { try cell.writeIfChanged() }

    /// Binds the HTTP server, writes the file a first time, and starts the exporter's thread.
    /// Does nothing when already started.
    /// - Throws: `StartError` when the address cannot be bound or no thread can be started.
    ///   A failing first file write is not thrown (the directory may appear later); it goes to
    ///   `onError`.
    public func start() throws(StartError) {
        try control.withLock { (control: inout Control) throws(StartError) in
            guard control.thread == nil else { return }
            var server: MetricsHTTPServer?
            if let address = options.listen {
                do throws(MetricsHTTPServer.StartError) { server = try MetricsHTTPServer(address: address) }
                catch { throw StartError(description: error.description) }
            }
            let wake = sundial_eventfd()
            guard wake >= 0 else { throw StartError(description: "cannot create eventfd: \(String(cString: strerror(errno)))") }
            try? cell.writeIfChanged()
            let loop = ExporterLoop(cell: cell, server: server, wakeFD: wake,
                                    intervalMillis: options.filePath == nil ? nil : max(1, options.writeInterval.milliseconds))
            var thread = pthread_t()
            let context = Unmanaged.passRetained(loop).toOpaque()
            let rc = pthread_create(&thread, nil, { raw in
                _ = sundial_set_thread_name("sundial-metrics")
                Unmanaged<ExporterLoop>.fromOpaque(raw!).takeRetainedValue().run()
                return nil
            }, context)
            guard rc == 0 else {
                Unmanaged<ExporterLoop>.fromOpaque(context).release()
                close(wake)
                throw StartError(description: "cannot start the metrics thread: \(String(cString: strerror(rc)))")
            }
            control.thread = thread
            control.wakeFD = wake
            control.port = server?.port
        }
    }

    /// Stops serving, writes the file a last time if anything changed, and joins the thread.
    /// Idempotent.
    public func stop() {
        let stopped: (pthread_t, Int32)? = control.withLock { control in
            guard let t = control.thread else { return nil }
            defer { control.thread = nil; control.wakeFD = -1; control.port = nil }
            return (t, control.wakeFD)
        }
        guard let (thread, wake) = stopped else { return }
        sundial_eventfd_signal(wake)
        pthread_join(thread, nil)
        close(wake)
        try? cell.writeIfChanged()
    }
}

/// The registry and the file-writing state, shared by the agent (observe) and the exporter's
/// thread (render, write).
final class RegistryCell: Sendable {
    let registry: Mutex<MetricsRegistry>
    let filePath: String?
    let onError: @Sendable (String) -> Void
    /// Generation last written, and whether the last write failed; guards file writes too, so
    /// `stop()` and the thread never write at once.
    private let fileState = Mutex<(written: UInt64?, failing: Bool)>((nil, false))

    init(_ registry: MetricsRegistry, filePath: String?, onError: @escaping @Sendable (String) -> Void) {
        self.registry = Mutex(registry)
        self.filePath = filePath
        self.onError = onError
    }

    /// Renders outside the lock: the registry is a value, so the copy is cheap (copy-on-write).
    func render() -> String { registry.withLock { $0 }.render() }

    func writeIfChanged() throws(AtomicFileWriter.WriteError) {
        guard let filePath else { return }
        try fileState.withLock { (state: inout (written: UInt64?, failing: Bool)) throws(AtomicFileWriter.WriteError) in
            let snapshot = registry.withLock { $0 }
            guard state.written != snapshot.generation else { return }
            do throws(AtomicFileWriter.WriteError) {
                try AtomicFileWriter.write(Array(snapshot.render().utf8), to: filePath)
                state = (snapshot.generation, false)
            } catch {
                if !state.failing { onError(error.description) }
                state.failing = true
                throw error
            }
        }
    }
}

/// The exporter thread's loop: poll the wake eventfd and the listening socket, and rewrite
/// the file every interval. Owned by that thread alone once started.
final class ExporterLoop {
    let cell: RegistryCell
    let server: MetricsHTTPServer?
    let wakeFD: Int32
    let intervalMillis: Int64?

    init(cell: RegistryCell, server: MetricsHTTPServer?, wakeFD: Int32, intervalMillis: Int64?) {
        self.cell = cell
        self.server = server
        self.wakeFD = wakeFD
        self.intervalMillis = intervalMillis
    }

    /// Sleeps in `poll` until the eventfd (stop), the HTTP server's sockets, a connection's
    /// deadline or the next file write: with no file and no connection, without a timeout.
    func run() {
        var nextWrite = intervalMillis.map { monotonicMillis() + $0 }
        var fds: [pollfd] = []
        while true {
            let now = monotonicMillis()
            fds.removeAll(keepingCapacity: true)
            fds.append(pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0))
            server?.appendPollDescriptors(to: &fds, now: now)
            var deadline = nextWrite
            if let d = server?.nextDeadline { deadline = min(deadline ?? d, d) }
            let rc = poll(&fds, nfds_t(fds.count), NonBlockingSocket.pollTimeout(until: deadline, now: now))
            if rc < 0 && errno != EINTR { return }
            if fds[0].revents != 0 { return }
            server?.handleEvents(fds[1...], now: monotonicMillis(), render: cell.render)
            if let interval = intervalMillis, let due = nextWrite, monotonicMillis() >= due {
                try? cell.writeIfChanged()
                nextWrite = monotonicMillis() + interval
            }
        }
    }
}
