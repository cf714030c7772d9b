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
/// Two things no single event tells: whether a failed attempt was its run's last (the retry,
/// if any, is the next line), and each job's next planned fire. The agent hands both over at
/// the end of a step with ``endStep(nextFires:)``, which the exporter asks for through the
/// `requestStepEnd` hook after each event it observes (coalesced: one request in flight), and
/// when a planned fire it shows has passed (a fire that logged nothing, e.g. one queued behind
/// a running run) on its write interval or a scrape. So an idle agent is never woken for it.
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
        /// The status pages to serve next to `/metrics` (`nil`: `/metrics` only).
        public var pages: StatusPages?

        public init(
            filePath: String? = nil, listen: ListenAddress? = nil, writeInterval: Duration = .seconds(10),
            registry: MetricsRegistry.Options, pages: StatusPages? = nil
        ) {
            self.pages = pages
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
    public convenience init(
        filePath: String?, listen: String?, allowNonLoopback: Bool = false, version: String,
        writeInterval: Duration = .seconds(10),
        onError: @escaping @Sendable (String) -> Void = { _ in }
    ) throws(ListenAddress.ParseError) {
        let address = try listen.map { (s: String) throws(ListenAddress.ParseError) in try ListenAddress(parsing: s, allowNonLoopback: allowNonLoopback) }
        self.init(
            options: Options(
                filePath: filePath, listen: address, writeInterval: writeInterval,
                registry: .init(version: version)), onError: onError)
    }

    deinit { stop() }

    /// Feeds one log record to the metrics, and asks for the end of the agent's step.
    public func observe(_ record: LogRecord) {
        cell.registry.withLock { $0.observe(record) }
        cell.requestStepEnd()
    }

    /// Sets the hook that asks the agent for ``endStep(nextFires:)`` once its current step is
    /// over (e.g. a task that hops onto the agent's actor). Set it before the first event.
    public func onStepEndRequest(_ request: @escaping @Sendable () -> Void) { cell.setStepEndRequest(request) }

    /// The agent's step is over: every line it logged has been observed. Counts the failed
    /// attempts no retry followed as final, and takes the scheduler's planned fires (by job).
    /// Call it where no later step's event can interleave (on the agent's actor).
    public func endStep(nextFires: [String: Instant]) { cell.endStep(nextFires: nextFires) }

    /// The current exposition text.
    public func render() -> String { cell.render() }

    /// The port the HTTP server listens on, once started (useful with port 0).
    public var port: UInt16? { control.withLock { $0.port } }

    /// The address the HTTP server listens on, once started: `--metrics-listen` with the port
    /// the kernel chose when 0 was asked (the agent logs it as `metrics.listening`).
    public var boundAddress: ListenAddress? {
        guard var address = options.listen, let port else { return nil }
        address.port = port
        return address
    }

    /// How many times a scrape rendered the exposition (one with nothing changed reuses the
    /// last text).
    var renderCount: Int { cell.renderCount }

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
                do throws(MetricsHTTPServer.StartError) { server = try MetricsHTTPServer(address: address, pages: options.pages) } catch {
                    throw StartError(description: error.description)
                }
            }
            let wake = sundial_eventfd()
            guard wake >= 0 else { throw StartError(description: "cannot create eventfd: \(String(cString: strerror(errno)))") }
            try? cell.writeIfChanged()
            let loop = ExporterLoop(
                cell: cell, server: server, wakeFD: wake,
                intervalMillis: options.filePath == nil ? nil : max(1, options.writeInterval.milliseconds))
            var thread = pthread_t()
            let context = Unmanaged.passRetained(loop).toOpaque()
            let rc = pthread_create(
                &thread, nil,
                { raw in
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
            defer {
                control.thread = nil
                control.wakeFD = -1
                control.port = nil
            }
            return (t, control.wakeFD)
        }
        guard let (thread, wake) = stopped else { return }
        sundial_eventfd_signal(wake)
        pthread_join(thread, nil)
        close(wake)
        // Stopping ends every step: a failed attempt not retried by now is final.
        cell.registry.withLock { $0.settle() }
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
    /// The hook asking the agent for a step end, and whether a request is in flight.
    private let stepEnd = Mutex<(request: (@Sendable () -> Void)?, queued: Bool)>((nil, false))

    init(_ registry: MetricsRegistry, filePath: String?, onError: @escaping @Sendable (String) -> Void) {
        self.registry = Mutex(registry)
        self.filePath = filePath
        self.onError = onError
    }

    /// The last exposition a scrape rendered and the registry generation it shows: a scrape
    /// (or file write) with nothing changed since reuses it. With 1,000 jobs a render is
    /// 2.6 MB and ~50 ms, so a flood of scrapes re-rendering each time starved a normal
    /// scrape. Only scrapes fill it: an agent without `--metrics-listen` keeps no copy.
    private let rendered = Mutex<(generation: UInt64, text: String, count: Int)?>(nil)

    /// Renders outside the lock: the registry is a value, so the copy is cheap (copy-on-write).
    /// A scrape that shows a planned fire already passed asks for fresh plans (for the next one).
    func render() -> String {
        let snapshot = registry.withLock { $0 }
        requestStepEndIfStale(snapshot)
        return text(of: snapshot, keep: true)
    }

    /// `snapshot`'s exposition, rendered only if its generation is not the cached one's, and
    /// then cached if `keep`.
    func text(of snapshot: MetricsRegistry, keep: Bool) -> String {
        if let cached = rendered.withLock({ $0 }), cached.generation == snapshot.generation { return cached.text }
        let text = snapshot.render()
        guard keep else { return text }
        rendered.withLock { r in
            // Two renders may race (a scrape and a file write); keep the newer generation.
            let count = (r?.count ?? 0) + 1
            if let old = r, old.generation > snapshot.generation {
                r = (old.generation, old.text, count)
            } else {
                r = (snapshot.generation, text, count)
            }
        }
        return text
    }

    /// Renders for scrapes so far (tests: a scrape with nothing changed does not render).
    var renderCount: Int { rendered.withLock { $0?.count ?? 0 } }

    func setStepEndRequest(_ request: @escaping @Sendable () -> Void) { stepEnd.withLock { $0.request = request } }

    /// Calls the hook unless a request is already in flight (its step end covers this one too:
    /// it runs on the agent after every line logged so far).
    func requestStepEnd() {
        let request: (@Sendable () -> Void)? = stepEnd.withLock { s in
            guard !s.queued, let r = s.request else { return nil }
            s.queued = true
            return r
        }
        request?()
    }

    func endStep(nextFires: [String: Instant]) {
        stepEnd.withLock { $0.queued = false }
        registry.withLock { r in
            r.settle()
            r.setNextFires(nextFires)
        }
    }

    /// A planned fire more than a second past means the plans shown are old (jitter aside):
    /// the fire happened and logged nothing yet, or the agent is stuck, which the fresh answer
    /// (or its absence) shows.
    func requestStepEndIfStale(_ snapshot: MetricsRegistry) {
        guard let earliest = snapshot.earliestNextFireMillis,
            earliest < SystemClock().wallNow().unixMillis - 1000
        else { return }
        requestStepEnd()
    }

    func writeIfChanged() throws(AtomicFileWriter.WriteError) {
        guard let filePath else { return }
        try fileState.withLock { (state: inout (written: UInt64?, failing: Bool)) throws(AtomicFileWriter.WriteError) in
            let snapshot = registry.withLock { $0 }
            guard state.written != snapshot.generation else { return }
            do throws(AtomicFileWriter.WriteError) {
                try AtomicFileWriter.write(Array(text(of: snapshot, keep: false).utf8), to: filePath)
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
                cell.requestStepEndIfStale(cell.registry.withLock { $0 })
                try? cell.writeIfChanged()
                nextWrite = monotonicMillis() + interval
            }
        }
    }
}
