// Benchmarks, run with a release build: `swift run -c release sundial-bench NAME [ARGS...]`.
// Not tests: each prints its figures; docs/benchmarks.md records the commands and results.
import SundialCore

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
case "schema":
    SchemaBench.run(rest)
default:
    print("usage: sundial-bench NAME [ARGS...] with NAME one of cron, gen-config, schema, watch; see docs/benchmarks.md")
}
