import CSundialShim
import Glibc
import SundialCore
import SundialTesting
import Synchronization
import Testing

@testable import SundialRuntime

/// Jobs that write output at full speed must not hold up the rest of the agent's loop: the
/// wake-up timer, the agent's steps and the spawn of a due job all wait for the runner's turn
/// to end (D6 of the hostile probe: 50 `yes` jobs made fires seconds late).
@Suite(.offPool) struct OutputFloodTests {
    static let flooders = 24
    static let probes = 5
    /// What a turn may read after a descriptor became readable: the rest of the read in
    /// progress, the rest of that turn and one more turn (the runner's set may come first in
    /// the loop's ready list), ``RunnerEngine/outputReadsPerTurn`` reads each, with room.
    static let boundBytes = 5 * RunnerEngine.readBufferBytes

    private struct Probe {
        var bytes = 0
        var runs: Set<RunID> = []
        /// Output bytes handed over when the probe's eventfd was signalled, until it is read.
        var signalledAt: Int?
        var nextProbeAt = 0
        /// Output bytes handed over between each signal and its handler.
        var gaps: [Int] = []
    }

    /// Several jobs flood their pipes while an eventfd on the same loop is signalled from the
    /// output handler (on the loop's thread, in the middle of a turn); its handler must run
    /// after a bounded amount of output, whatever the number of flooding jobs. Before the fix,
    /// a turn read every readable pipe once (64 KiB each), so the gap grew with the jobs.
    @Test func aDescriptorOnTheLoopIsServedWithinBoundedOutputDuringAFlood() async throws {
        let loop = try EventLoop(name: "test-flood")
        defer { loop.stop() }
        let runner = try ProcessRunner(loop: loop)
        let efd = sundial_eventfd()
        try #require(efd >= 0)
        defer { close(efd) }
        let probe = Mutex(Probe())
        let registration = try #require(
            loop.add(efd) {
                sundial_eventfd_drain(efd)
                probe.withLock { p in
                    guard let at = p.signalledAt else { return }
                    p.gaps.append(p.bytes - at)
                    p.signalledAt = nil
                    p.nextProbeAt = p.bytes + 1 << 20
                }
            })
        defer { loop.remove(registration, fd: efd) }

        var job = shellJob("exec yes 0123456789012345678901234567890123456789012345678901234567890123456789012345678", timeoutMs: 60_000)
        job.output = OutputLimits(maxBytes: 1 << 30, keepBytes: 0)
        let handler: OutputHandler = { line in
            let signal = probe.withLock { p -> Bool in
                p.bytes += line.text.utf8.count + 1
                p.runs.insert(line.runID)
                // Probes start once every job is flooding.
                guard p.runs.count == Self.flooders, p.signalledAt == nil, p.gaps.count < Self.probes, p.bytes >= p.nextProbeAt
                else { return false }
                p.signalledAt = p.bytes
                return true
            }
            if signal { sundial_eventfd_signal(efd) }
        }
        var handles: [RunHandle] = []
        for _ in 0..<Self.flooders {
            handles.append(await runner.start(job: job, runID: nextRunID(), attempt: 1, onOutput: handler))
        }
        #expect(handles.allSatisfy { $0.pid != nil })
        let gaps = try await withDeadline(60) {
            while probe.withLock({ $0.gaps.count }) < Self.probes { try await Task.sleep(for: .milliseconds(10)) }
            return probe.withLock { $0.gaps }
        }
        runner.terminateAll(grace: .zero)
        let started = handles
        try await withDeadline(30) { for h in started { _ = await h.completion() } }
        await runner.shutdown()
        #expect(gaps.allSatisfy { $0 <= Self.boundBytes }, "output read before the loop served a ready descriptor: \(gaps) bytes (bound \(Self.boundBytes))")
    }
}
