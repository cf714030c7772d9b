import CSundialShim

#if canImport(Glibc)
import Glibc
#endif

/// A named thread that can be joined: a server's `stop()` returns only once its loop has
/// ended, so the socket file and descriptors it removes are no longer in use.
struct JoinableThread: Sendable {
    private let thread: pthread_t

    private final class Body {
        let name: String
        let run: () -> Void
        init(name: String, run: @escaping () -> Void) {
            self.name = name
            self.run = run
        }
    }

    /// Starts `body` on a new thread named `name` (at most 15 bytes shown by the kernel).
    /// - Returns: nil, with `errno` set, when the kernel refused a thread.
    init?(name: String, _ body: @escaping () -> Void) {
        let box = Unmanaged.passRetained(Body(name: name, run: body))
        var tid = pthread_t()
        let rc = pthread_create(
            &tid, nil,
            { raw in
                let body = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue()
                _ = sundial_set_thread_name(body.name)
                body.run()
                return nil
            }, box.toOpaque())
        guard rc == 0 else {
            box.release()
            errno = rc
            return nil
        }
        thread = tid
    }

    /// Waits for the thread to end. Call it once (the owner's running flag guards that).
    func join() { pthread_join(thread, nil) }

    /// The thread, for tests that aim a signal at it.
    var id: pthread_t { thread }

    /// Whether the caller is this thread (which cannot join itself).
    var isCurrent: Bool { pthread_equal(thread, pthread_self()) != 0 }

    /// Lets the thread end on its own, for an owner stopping from the thread itself. Call it
    /// instead of ``join()``, once.
    func detach() { pthread_detach(thread) }
}
