extension RetryPolicy {
    /// Whether a run whose attempt `attempt` (1-based) ended with `outcome` gets another attempt.
    ///
    /// `launch_failed` counts as `failure` (a missing command is retried per policy), and
    /// `exit_codes` restricts only failures that have an exit code. `interrupted` (the agent
    /// died or was stopped) is retried whenever attempts remain: it is not the job's fault.
    public func shouldRetry(afterAttempt attempt: Int, outcome: RunOutcome) -> Bool {
        guard attempt < attempts else { return false }
        switch outcome {
        case .success: return false
        case let .failure(code):
            guard on.contains(.failure) else { return false }
            if let codes = exitCodes { return codes.contains(code) }
            return true
        case .launchFailed: return on.contains(.failure)
        case .timeout: return on.contains(.timeout)
        case .signal: return on.contains(.signal)
        case .interrupted: return true
        case .unknown: return false
        }
    }

    /// The delay before the attempt that follows attempt `attempt` (1-based), in milliseconds.
    ///
    /// `fixed`: `delay`; `linear`: `delay × attempt`; `exponential`: `delay × 2^(attempt−1)`;
    /// capped at `max_delay`, then spread by `±jitter` (a fraction) using `unit`, a uniform
    /// value in `[0, 1)` drawn by the caller. Capping before the spread keeps a fleet of
    /// capped retries from synchronising. Never negative; never overflows.
    public func delayMs(afterAttempt attempt: Int, unit: Double) -> Int64 {
        let k = Int64(max(1, attempt))
        let base = max(0, delayMs)
        var d: Int64
        switch backoff {
        case .fixed: d = base
        case .linear:
            let (p, o) = base.multipliedReportingOverflow(by: k)
            d = o ? Int64.max : p
        case .exponential:
            let shift = min(k - 1, 62)
            let (p, o) = base.multipliedReportingOverflow(by: Int64(1) << shift)
            d = o ? Int64.max : p
        }
        if let cap = maxDelayMs { d = min(d, max(0, cap)) }
        d = min(d, DurationParser.maximumMilliseconds)
        if jitter > 0 {
            let j = min(max(jitter, 0), 1)
            let factor = 1 + j * (2 * unit - 1)
            d = Int64((Double(d) * factor).rounded())
        }
        return max(0, d)
    }
}
