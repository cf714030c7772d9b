import SundialCore

/// `Task.sleep` for the agent, without libdispatch.
///
/// In Swift 6.3, `Task.sleep` hands the sleeping task to the default executor's own scheduling
/// (libdispatch timers and threads) even when the global-enqueue hooks that ``GlobalExecutor``
/// uses are installed, which would start libdispatch's pool and its once-a-second monitor for
/// good. Checked with a probe program: after one `Task.sleep`, libdispatch's worker threads
/// exist beside the pool's. The agent's few sleeps (the clock-sync poll) use this instead: a
/// ``SerialWorker`` thread that exists only while someone naps. Not cancellable mid-nap; callers
/// check for cancellation after it.
enum Nap {
    private static let worker = SerialWorker(name: "sundial-nap")

    static func sleep(for duration: Duration) async {
        let napped = await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
            if !worker.asyncAfter(milliseconds: max(0, duration.milliseconds), { c.resume(returning: true) }) {
                c.resume(returning: false)
            }
        }
        // No thread to be had: sleep anyway, the way that costs wake-ups but never hangs.
        if !napped { try? await Task.sleep(for: duration) }
    }
}
