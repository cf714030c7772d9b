// Benchmarks, run with a release build: `swift run -c release sundial-bench NAME [ARGS...]`.
// Not tests: each prints its figures; docs/benchmarks.md records the commands and results.
import SundialCore

let args = Array(CommandLine.arguments.dropFirst())
let name = args.first ?? "list"
let rest = Array(args.dropFirst())

switch name {
case "cron":
    try cronBenchmark(rest)
default:
    print("benchmarks: cron")
}
