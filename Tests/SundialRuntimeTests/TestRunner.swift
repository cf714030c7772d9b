import SundialRuntime

/// The runner most tests of this module share (tests that check a runner's own life create
/// their own). An ordinary instance: it reaps only its children, so suites run in parallel with
/// it, with other runners and with code that waits for its own children.
enum TestRunner {
    private static let runner: Result<ProcessRunner, RunnerError> = {
        do throws(RunnerError) { return .success(try ProcessRunner()) } catch { return .failure(error) }
    }()

    static func shared() throws(RunnerError) -> ProcessRunner { try runner.get() }
}
