import Foundation
import SundialCore
import SundialRuntime
import Synchronization
import Testing

/// A test step took longer than its bound: the test fails instead of hanging the suite.
struct TimedOut: Error, CustomStringConvertible {
    let seconds: Double
    var description: String { "timed out after \(seconds) s" }
}

/// Runs `body`, failing with ``TimedOut`` after `seconds`. Unlike a task group, it does not
/// wait for a stuck `body` to notice cancellation (an awaited run end is not cancellable).
func withDeadline<T: Sendable>(_ seconds: Double = 15, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let claim = Claim()
    return try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
        let timer = Task {
            try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            if !Task.isCancelled, !claim.take() {
                c.resume(throwing: TimedOut(seconds: seconds))
            }
        }
        Task {
            do {
                let value = try await body()
                timer.cancel()
                if !claim.take() { c.resume(returning: value) }
            } catch {
                timer.cancel()
                if !claim.take() { c.resume(throwing: error) }
            }
        }
    }
}

/// Exactly one of the racing tasks resumes the continuation.
private final class Claim: Sendable {
    private let flag = Atomic<Bool>(false)
    func take() -> Bool { flag.exchange(true, ordering: .acquiringAndReleasing) }
}

private let runCounter = Atomic<Int>(0)

/// A unique run id per call (tests run in parallel on the one shared runner).
func nextRunID() -> RunID {
    let n = runCounter.add(1, ordering: .relaxed).newValue
    return RunID(rawValue: "TEST\(getpid())-\(n)")
}

/// Collects a run's output lines (the handler runs on the runner's thread).
final class Lines: Sendable {
    private let state = Mutex<[OutputLine]>([])
    private let waiters = Mutex<[(String, CheckedContinuation<Void, Never>)]>([])

    var handler: OutputHandler {
        { line in
            self.state.withLock { $0.append(line) }
            let ready = self.waiters.withLock { w in
                let hit = w.filter { $0.0 == line.text }
                w.removeAll { $0.0 == line.text }
                return hit
            }
            for (_, c) in ready { c.resume() }
        }
    }

    var all: [OutputLine] { state.withLock { $0 } }
    var stdout: [String] { all.filter { $0.stream == .stdout }.map(\.text) }
    var stderr: [String] { all.filter { $0.stream == .stderr }.map(\.text) }

    /// Returns once a line equal to `text` has arrived.
    func waitFor(_ text: String) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let seen = state.withLock { lines in lines.contains { $0.text == text } }
            if seen {
                c.resume()
                return
            }
            waiters.withLock { $0.append((text, c)) }
            // Re-check: the line may have arrived between the two locks.
            if state.withLock({ lines in lines.contains { $0.text == text } }) {
                let mine = waiters.withLock { w -> [CheckedContinuation<Void, Never>] in
                    let hit = w.filter { $0.0 == text }.map(\.1)
                    w.removeAll { $0.0 == text }
                    return hit
                }
                for m in mine { m.resume() }
            }
        }
    }
}

/// A job running `script` under /bin/sh, bounded by a timeout of its own too.
func shellJob(_ script: String, timeoutMs: Int64? = 20_000) -> JobSpec {
    var job = JobSpec(id: "test-job", command: .shell(script))
    job.timeoutMs = timeoutMs
    return job
}

/// Runs `job` to its end on the shared runner, within `seconds`.
func run(_ job: JobSpec, seconds: Double = 15, context: LaunchContext = .current) async throws -> (RunCompletion, Lines) {
    let runner = try TestRunner.shared()
    let lines = Lines()
    let id = nextRunID()
    let completion = try await withDeadline(seconds) {
        let handle = await runner.start(job: job, runID: id, attempt: 1, context: context, onOutput: lines.handler)
        return await handle.completion()
    }
    return (completion, lines)
}

/// Pids whose process group is `pgid` (zombies included), from /proc.
func processes(inGroup pgid: Int32) -> [Int32] {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    var result: [Int32] = []
    for e in entries {
        guard let pid = Int32(e), let stat = try? String(contentsOfFile: "/proc/\(e)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { continue }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After "(comm)": state, ppid, pgrp, ...
        if fields.count > 2, Int32(fields[2]) == pgid { result.append(pid) }
    }
    return result
}

/// A field of /proc/PID/status, e.g. "State" or "PPid".
func procStatus(_ pid: Int32, _ key: String) -> String? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
        return line.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces)
    }
    return nil
}

/// Polls `condition` every 20 ms for up to `seconds`.
func eventuallyAsync(_ seconds: Double = 5, _ condition: () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}

/// A fresh temporary directory.
func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "sundial-test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Runs `attempt` again, a few times over at most a second, while `isBusy` says its result is
/// ETXTBSY ("Text file busy"). A script a test has just written can be busy for a moment: a
/// process another test thread forks while the script's write descriptor is open holds a copy
/// until that child execs, and the kernel refuses to exec a file open for writing. That is the
/// test process's own race (the suite runs in parallel), not the behaviour under test.
func retryingWhileTextFileBusy<T>(_ isBusy: (T) -> Bool, _ attempt: () async throws -> T) async rethrows -> T {
    var result = try await attempt()
    for _ in 0..<20 where isBusy(result) {
        try? await Task.sleep(for: .milliseconds(50))
        result = try await attempt()
    }
    return result
}

/// Parses one JSON line into a dictionary (Foundation is fine in tests).
func parseJSON(_ line: String) -> [String: Any]? {
    guard let data = line.data(using: .utf8) else { return nil }
    return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
}
