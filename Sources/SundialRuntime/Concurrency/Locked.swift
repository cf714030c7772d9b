import Synchronization

/// A lock around a value that escaping closures can share (a `Mutex` itself cannot be captured).
public final class Locked<T: Sendable>: Sendable {
    private let mutex: Mutex<T>
    public init(_ value: T) { mutex = Mutex(value) }
    public func withLock<R>(_ body: (inout sending T) -> sending R) -> sending R { mutex.withLock(body) }
}
