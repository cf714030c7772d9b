import SundialCore

extension AgentHost {
    /// Starts what the agent offers beside scheduling — the control socket (`--control`, else
    /// `STATE/sundial.sock`; design §6) and, with `--hold-until-synced`, the clock-sync hold —
    /// before the agent starts, so no calendar job fires by an untrusted clock. Both end when the
    /// agent stops (the socket file is removed).
    ///
    /// Returns false, having told `stderr` why, when the socket cannot be set up: an agent
    /// nobody can reach is not left running (the caller exits 1).
    static func startControl(
        agent: Agent, stateDirectory: StateDirectory, options: AgentOptions, clock: any SundialClock,
        loop: EventLoop, stderr: @Sendable (String) -> Void
    ) async -> Bool {
        let path = options.controlPath.flatMap { $0.isEmpty ? nil : $0 } ?? stateDirectory.defaultSocketPath
        let server = ControlServer(path: path, handler: agent)
        do {
            try server.start(on: loop)
        } catch {
            stderr("sundial: \(error)\n")
            return false
        }
        await agent.onStop { server.stop() }
        if options.holdUntilSynced {
            await ClockSyncMonitor().start(holding: agent, clock: clock)
        }
        return true
    }
}
