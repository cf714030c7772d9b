import CSundialShim

#if canImport(Glibc)
import Glibc
#endif

/// A minimal detached, named thread: Foundation's `Thread` would pull Foundation into the
/// runtime's hot path for one call. The name (at most 15 bytes, the kernel's limit) shows in
/// `top -H`, `ps -L` and `/proc/PID/task/*/comm`, so an operator can tell the agent's threads
/// apart.
final class DetachedThread: Sendable {
    private let name: String
    private let body: @Sendable () -> Void

    init(name: String, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }

    /// Starts the thread. Returns `false` (and runs nothing) if the kernel refused one.
    @discardableResult
    func start() -> Bool {
        let box = Unmanaged.passRetained(self)
        var tid = pthread_t()
        let rc = pthread_create(
            &tid, nil,
            { raw in
                let me = Unmanaged<DetachedThread>.fromOpaque(raw!).takeRetainedValue()
                _ = sundial_set_thread_name(me.name)
                me.body()
                return nil
            }, box.toOpaque())
        if rc == 0 { pthread_detach(tid) } else { box.release() }
        return rc == 0
    }

    /// Runs `body` on a new named thread.
    @discardableResult
    static func run(_ name: String, _ body: @escaping @Sendable () -> Void) -> Bool {
        DetachedThread(name: name, body: body).start()
    }
}
