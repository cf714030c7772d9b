// swift-tools-version: 5.4
import PackageDescription

/// libFuzzer targets for Sundial's parsers of untrusted input (see README.md).
///
/// A package of its own, not targets in the main one, because a fuzz binary takes `main` from
/// libFuzzer (`-sanitize=fuzzer`) and is compiled with `-parse-as-library`; neither may reach
/// the shipped `sundial` build. `fuzz/build` passes those flags.
///
/// Tools version 5.4 on purpose: from 5.5 on, SwiftPM renames an executable's entry point to
/// `<module>_main` and links with `--defsym main=<module>_main`, which fails here because the
/// fuzz targets have no entry point of their own (libFuzzer's `main` is the one).

let targetNames = ["loader", "loaderwire", "cron", "duration", "envfile", "control", "metrics-http", "crontab", "tzif", "json"]

/// The libraries each target links (SundialCore when not listed); only the targets that need
/// SundialRuntime pay for building it.
let libraries: [String: [String]] = [
    "loader": ["SundialConfig", "SundialCore"],
    "loaderwire": ["SundialConfig", "SundialCore"],
    "crontab": ["SundialConfig", "SundialCore"],
    "envfile": ["SundialRuntime"],
    "control": ["SundialRuntime", "SundialCore"],
    "metrics-http": ["SundialRuntime"],
]

let package = Package(
    name: "SundialFuzz",
    products: targetNames.map { .executable(name: "fuzz-\($0)", targets: ["fuzz-\($0)"]) },
    dependencies: [.package(name: "Sundial", path: "..")],
    targets: targetNames.map { name in
        .executableTarget(
            name: "fuzz-\(name)",
            dependencies: (libraries[name] ?? ["SundialCore"]).map { .product(name: $0, package: "Sundial") },
            path: "Targets",
            exclude: targetNames.filter { $0 != name }.map { "\($0).swift" },
            sources: ["\(name).swift"]
        )
    }
)
