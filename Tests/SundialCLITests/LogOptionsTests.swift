import SundialTesting
import Testing

/// The `--log*` options are bounded before the agent starts: an unbounded `--log-keep` made
/// each rotation rename millions of files on the scheduler's thread.
@Suite(.offPool) struct LogOptionsTests {
    @Test(
        arguments: [
            (["--log-keep", "5000000"], "--log-keep must be between 0 and 1000 (got 5000000)"),
            (["--log-keep=-1"], "--log-keep must be between 0 and 1000 (got -1)"),
            (["--log-max-bytes=100"], "--log-max-bytes must be at least 4096 (got 100)"),
        ])
    func outOfRangeLogOptionsAreRefused(_ options: [String], _ message: String) async throws {
        let r = try await CLI.run(["run", "--log", "-"] + options + ["/nonexistent/jobs/"])
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains(message), "\(r.stderr)")
    }
}
