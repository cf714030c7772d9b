// Benchmarks, run with a release build: `swift run -c release sundial-bench NAME [ARGS...]`.
// Not tests: each prints its figures; docs/benchmarks.md records the commands and results.
import SundialCore
import SundialRuntime

// As the agent does: block SIGCHLD & co. before any thread exists, so the runner's reaper is
// woken through its signalfd (runner-launch would fall to ~1 run/s if that path were broken).
AgentSignals.prepareProcess()

let args = Array(CommandLine.arguments.dropFirst())
let name = args.first ?? "list"
let rest = Array(args.dropFirst())

switch name {
case "runner-launch": await benchRunnerLaunch(rest)
case "log-writer": benchLogWriter(rest)
case "runner-rss": await benchRunnerRSS(rest)
default:
    print("benchmarks: runner-launch [N] [CONCURRENCY], log-writer [N] [THREADS], runner-rss [MB] [MAX_BYTES]")
}
