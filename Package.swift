// swift-tools-version: 6.1
import PackageDescription

#if canImport(Glibc)
import Glibc  // confstr: the build host's glibc (packRelativeRelocations)
#endif

// Sundial is Linux-only: it is built on epoll, timerfd, signalfd, pidfd, inotify, cgroup v2 and
// /proc, and its binary is linked against Debian's libyaml and SQLite. SwiftPM's `platforms:`
// can only name Apple systems (and would imply support for them), so the manifest says it here
// and refuses elsewhere, rather than failing later on a missing Glibc.
#if !os(Linux)
#error("Sundial builds and runs on Linux only (epoll, timerfd, signalfd, pidfd, cgroup v2, /proc)")
#endif

/// The directory of this manifest: the linker is given the symbol ordering file by absolute path.
let packageRoot = String(#filePath.dropLast("/Package.swift".count))

/// Whether the release binary packs its relative relocations (`-z pack-relative-relocs`,
/// DT_RELR): 1.1 MB of `.rela.dyn` become 9 KB, so the stripped binary is 1.1 MB smaller, and
/// the dynamic loader no longer reads (and keeps mapped) those pages at each exec of the agent
/// and of every loader child: 1.3–1.4 MiB off an idle agent's PSS (docs/benchmarks.md). The
/// binary then needs glibc 2.36 (`GLIBC_ABI_DT_RELR`). So the manifest builds for the glibc
/// it is built on, as a distribution builds for its own release: packed on Debian 12 or
/// Ubuntu 24.04 and newer, not on Ubuntu 22.04 (glibc 2.35). `SUNDIAL_PORTABLE=1` builds
/// without it, for a package that must also install on glibc 2.35 systems. The .deb's Depends
/// names the glibc the binary needs (packaging/build-deb.sh reads it off the binary).
let packRelativeRelocations: Bool = {
    if let portable = Context.environment["SUNDIAL_PORTABLE"], !portable.isEmpty, portable != "0" { return false }
    // "glibc 2.36" (confstr is in unistd.h; gnu_get_libc_version is not in the Glibc module).
    var buffer = [CChar](repeating: 0, count: 64)
    guard confstr(Int32(_CS_GNU_LIBC_VERSION), &buffer, buffer.count) > 0 else { return false }
    let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    let version = text.split(separator: " ").last ?? ""
    let parts = version.split(separator: ".").compactMap { Int($0) }
    guard parts.count >= 2 else { return false }
    return (parts[0], parts[1]) >= (2, 36)
}()

/// Targets, each depending only on those above it:
/// SundialCore (pure) → SundialConfig (pure) → SundialRuntime (I/O shell) → sundial (CLI).
/// SundialTesting holds fakes shared by tests and is never linked into the binary.
let package = Package(
    name: "Sundial",
    products: [
        .executable(name: "sundial", targets: ["sundial"]),
        // Libraries only so that the fuzz package (fuzz/Package.swift) can link the parsers.
        .library(name: "SundialCore", targets: ["SundialCore"]),
        .library(name: "SundialConfig", targets: ["SundialConfig"]),
        .library(name: "SundialRuntime", targets: ["SundialRuntime"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
    ],
    targets: [
        .target(
            name: "SundialCore",
            dependencies: [.product(name: "OrderedCollections", package: "swift-collections"), .product(name: "HeapModule", package: "swift-collections")]
        ),
        .target(
            name: "SundialConfig",
            dependencies: [
                "SundialCore",
                "CYAML",
                .product(name: "OrderedCollections", package: "swift-collections"),
            ]
        ),
        // Debian's libyaml for the YAML reader (only its event API; see YAMLEventParser).
        // Needs libyaml-dev at build time; the .deb then depends on libyaml-0-2.
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        // Debian's SQLite for the state database, through its C API (SundialRuntime/State/
        // SQLiteConnection.swift says why not GRDB). Needs libsqlite3-dev at build time; the .deb
        // then depends on libsqlite3-0.
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "CSundialShim"),
        // Sundial's global executor for Swift concurrency (the runtime's enqueue hooks; see
        // executor.c and SundialRuntime's GlobalExecutor): alone in its target, because it is the
        // one piece that leans on the Swift runtime's private interface.
        .target(name: "CSundialExecutor"),
        // libpq for the fleet (issue 19), loaded with dlopen only under --fleet: its header at
        // build time (libpq-dev), nothing linked (docs/decisions.md says why).
        .target(name: "CSundialPQ"),
        .target(
            name: "SundialRuntime",
            dependencies: ["SundialCore", "SundialConfig", "CSundialShim", "CSundialExecutor", "CSQLite", "CSundialPQ"]
        ),
        .target(
            name: "SundialTesting",
            dependencies: ["SundialCore", "SundialRuntime"]
        ),
        .executableTarget(
            name: "sundial",
            dependencies: [
                "SundialCore", "SundialConfig", "SundialRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            // The toolchain's static-stdlib link adds `-export-dynamic`, which put all 10,000 of
            // the binary's own Swift symbols in its dynamic symbol table: 885 KB of the stripped
            // binary, and work for the dynamic loader and `dladdr` at every start of the agent
            // and of each loader child. Nothing resolves a symbol in this executable at run
            // time (libpq and libcurl are opened `RTLD_LOCAL` and need nothing from it), and a
            // test checks the table holds only what the binary imports (docs/decisions.md).
            //
            // Linked by lld (the toolchain's), not gold, for `--symbol-ordering-file` (release):
            // the functions the agent and its loader child run (packaging/sundial.order, made
            // by packaging/order-symbols.sh) placed together, so the code an idle agent has
            // mapped is those pages and not one in three of the binary's 12 MB of code. The
            // objects need one section per function for that (the loop at the end of this
            // file). An idle agent with 1,000 jobs maps 4.5 MiB of code instead of 8.2 MiB
            // (docs/benchmarks.md, sixteenth session).
            // The list then names the data the agent touches in `.rodata`, `.data` and `.bss`
            // (found by valgrind's lackey), gathered the same way: about 0.2 MiB less PSS
            // (twenty-second session).
            // packaging/sundial.lds gathers the compiler's unnamed functions, which the list
            // cannot name, next to the listed ones.
            // packaging/static-libstdc++ (first on the search path) makes the toolchain's
            // `-lstdc++` take GCC's static archive: no libstdc++.so.6 to map and resolve at each
            // exec, 0.7–1.0 MiB less PSS for an idle agent, 75 KB more binary. Only release builds:
            // debug builds link the Swift runtime as a shared library, which needs the shared
            // libstdc++ anyway.
            // Packed relative relocations where the build host's glibc has them
            // (`packRelativeRelocations` above).
            linkerSettings: [
                .unsafeFlags(["-use-ld=lld", "-Xlinker", "--no-export-dynamic"]),
                .unsafeFlags(
                    [
                        "-Xlinker", "--symbol-ordering-file=\(packageRoot)/packaging/sundial.order", "-Xlinker", "--no-warn-symbol-ordering",
                        "-Xlinker", "-T", "-Xlinker", "\(packageRoot)/packaging/sundial.lds",
                        "-L", "\(packageRoot)/packaging/static-libstdc++",
                    ]
                        + (packRelativeRelocations ? ["-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"] : []),
                    .when(configuration: .release)),
            ]
        ),
        .executableTarget(
            name: "sundial-bench",
            dependencies: ["SundialCore", "SundialConfig", "SundialRuntime", "CSundialShim", "CSundialBench"]
        ),
        // The C baselines of the benchmarks (plain fork/exec loops): never linked into `sundial`.
        .target(name: "CSundialBench"),
        .testTarget(name: "SundialCoreTests", dependencies: ["SundialCore", "SundialTesting"], resources: [.copy("Fixtures")]),
        .testTarget(name: "SundialConfigTests", dependencies: ["SundialConfig", "SundialTesting"], resources: [.copy("Fixtures")]),
        .testTarget(name: "SundialRuntimeTests", dependencies: ["SundialRuntime", "SundialTesting"], exclude: ["Fixtures"]),
        .testTarget(name: "SundialCLITests", dependencies: ["SundialCore", "SundialRuntime", "SundialTesting"]),
    ]
)

// Strict settings for every target, in one place (as swift-log does).
// C targets use their own settings: the upcoming features are Swift's.
let cTargets: Set<String> = ["CSundialShim", "CSundialExecutor", "CSundialBench", "CSundialPQ"]
// One section per function in release builds of what `sundial` links, so that the linker can
// order them (see `sundial`'s linker settings). Debug builds and tests keep the default.
let shipped: Set<String> = ["SundialCore", "SundialConfig", "SundialRuntime", "sundial", "CSundialShim", "CSundialExecutor"]
for target in package.targets where shipped.contains(target.name) {
    if cTargets.contains(target.name) {
        target.cSettings = (target.cSettings ?? []) + [.unsafeFlags(["-ffunction-sections"], .when(configuration: .release))]
    } else {
        target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-Xfrontend", "-function-sections"], .when(configuration: .release))]
    }
}
for target in package.targets where target.type != .system && !cTargets.contains(target.name) {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    // A file uses members of a module only if it imports that module itself: no member reaching
    // a file through another file's import, so each file's imports say what it depends on.
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    target.swiftSettings = settings
}
