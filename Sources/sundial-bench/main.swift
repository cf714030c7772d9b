// Benchmarks, run with a release build: `swift run -c release sundial-bench NAME [ARGS...]`.
// Not tests: each prints its figures; docs/benchmarks.md records the commands and results.
import SundialConfig
import SundialCore
import SundialRuntime

// As the agent does: block SIGCHLD & co. before any thread exists, so the runner's reaper is
// woken through its signalfd (runner-launch would fall to ~1 run/s if that path were broken).
AgentSignals.prepareProcess()

let args = Array(CommandLine.arguments.dropFirst())
let name = args.first ?? "list"
let rest = Array(args.dropFirst())

switch name {
case "cron":
    try cronBenchmark(rest)
case "gen-config":
    generateConfig(rest)
case "watch":
    benchmarkWatch(rest)
case "reload":
    await benchmarkReload(rest)
case "schema":
    SchemaBench.run(rest)
case "embed-schema":
    // Not a benchmark: prints Sources/SundialConfig/JobSchema+Compiled.swift (scripts/embed-schema.sh).
    print(try JobSchema.compiledSource(of: JobSchema.text), terminator: "")
case "wire":
    benchmarkWire(rest)
case "memory":
    memoryBreakdown(rest)
case "patterns":
    benchmarkPatterns(rest)
case "runner-launch": await benchRunnerLaunch(rest)
case "runner-burst": await benchRunnerBurst(rest)
case "log-writer": benchLogWriter(rest)
case "runner-rss": await benchRunnerRSS(rest)
case "simulate":
    simulateBenchmark(rest)
case "fleet":
    benchmarkFleet(rest)
case "state":
    try stateBenchmark(rest)
case "state-crash-writer":
    try stateCrashWriter(rest)
case "seed-status": try seedStatusState(rest)
case "status-client": try benchStatusClient(rest)
default:
    print("usage: sundial-bench NAME [ARGS...]; see docs/benchmarks.md for the names and their commands")
}
