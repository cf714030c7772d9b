/// The agent's long-lived services, in the order they started, stopped in the reverse order from
/// one place: whatever way `AgentHost.run` ends (a normal stop, or any of the start-up failures
/// after some services are up), each started service is stopped exactly once, after everything
/// started later and before everything it depends on (the event loop after the timers and
/// watchers it serves, the state store after the publisher that reads it, the state directory's
/// lock last).
///
/// This is the part of swift-service-lifecycle's `ServiceGroup` the agent needs: an ordered start
/// and a reverse ordered stop. The package itself is not used: its services are long-running
/// `run()` tasks cancelled on shutdown, while the agent's services are descriptors served by one
/// event loop, started and stopped by plain calls; and it would add its own dependencies to a
/// binary with little room under its 20 MB limit (docs/decisions.md).
///
/// Not `Sendable`: it belongs to the one task that runs the agent.
final class ServiceStack {
    private var services: [(name: String, stop: () -> Void)] = []
    /// The services stopped so far, in the order they were (for tests).
    private(set) var stopped: [String] = []

    /// Records a service that has just started; `stop` is called once, by ``stopAll()``.
    func started(_ name: String, stop: @escaping () -> Void) {
        services.append((name, stop))
    }

    /// The services started and not yet stopped, in start order.
    var running: [String] { services.map(\.name) }

    /// Stops every service started, the last one first. Calling it again stops only what was
    /// started since.
    func stopAll() {
        while let last = services.popLast() {
            last.stop()
            stopped.append(last.name)
        }
    }

    deinit { stopAll() }
}
