import SundialTesting
import Testing

@testable import SundialRuntime

/// What gets watched for a layout, and how link chains resolve.
@Suite(.offPool) struct WatchPlanTests {
    @Test func chainRecordsEveryLinkAndTheResolvedPath() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("mount/..2024_01/jobs.yaml", "version: 1\n")
        try tmp.symlink("mount/..data", to: "..2024_01")
        try tmp.symlink("mount/jobs.yaml", to: "..data/jobs.yaml")
        let chain = SymlinkChain(resolving: tmp.url("mount/jobs.yaml"))
        #expect(
            chain.hops == [
                .init(directory: tmp.url("mount"), name: "jobs.yaml"),
                .init(directory: tmp.url("mount"), name: "..data"),
            ])
        #expect(chain.resolved == tmp.url("mount/..2024_01/jobs.yaml"))
        #expect(chain.missing == nil)
    }

    @Test func chainStopsAtTheFirstMissingComponent() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.symlink("link", to: "absent/deeper")
        let chain = SymlinkChain(resolving: tmp.url("link/jobs.yaml"))
        #expect(chain.resolved == nil)
        #expect(chain.missing == .init(directory: tmp.path, name: "absent"))
    }

    @Test func chainOfALoopEndsUnresolved() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.symlink("a", to: "b")
        try tmp.symlink("b", to: "a")
        let chain = SymlinkChain(resolving: tmp.url("a"))
        #expect(chain.resolved == nil)
        #expect(chain.hops.count == SymlinkChain.maxLinks + 1)
    }

    @Test func chainResolvesDotDotAfterALink() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.mkdir("real/inner")
        try tmp.write("real/x.yaml", "")
        try tmp.symlink("in", to: "real/inner")
        // `in/..` is `real`, not `tmp`: `..` applies after the link is resolved, as the kernel does.
        #expect(SymlinkChain(resolving: tmp.url("in/../x.yaml")).resolved == tmp.url("real/x.yaml"))
    }

    @Test func kubernetesMountIsWatchedThroughItsChain() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("mount/..2024_01/jobs.yaml", "version: 1\n")
        try tmp.symlink("mount/..data", to: "..2024_01")
        try tmp.symlink("mount/jobs.yaml", to: "..data/jobs.yaml")
        let plan = WatchPlan(paths: [tmp.url("mount")])
        #expect(plan.directories[tmp.path] == .init(tree: false, names: ["mount"]))
        #expect(plan.directories[tmp.url("mount")] == .init(tree: true, names: ["jobs.yaml", "..data"]))
        #expect(plan.directories[tmp.url("mount/..2024_01")] == .init(tree: false, names: ["jobs.yaml"]))
        #expect(plan.directories.count == 3)
    }

    @Test func hiddenDirectoriesAreNotWatched() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("conf/.git/objects/x", "")
        try tmp.write("conf/team/a.yaml", "")
        let plan = WatchPlan(paths: [tmp.url("conf")])
        #expect(Set(plan.directories.keys) == [tmp.path, tmp.url("conf"), tmp.url("conf/team")])
    }

    /// A subdirectory whose name holds a bidi control is watched: names printed escaped
    /// (`PathProbe.display`) were looked up escaped, and not found.
    @Test func aSubdirectoryWithAnOddButUTF8NameIsWatched() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("conf/te\u{202E}am/a.yaml", "")
        let plan = WatchPlan(paths: [tmp.url("conf")])
        #expect(plan.directories[tmp.url("conf/te\u{202E}am")]?.tree == true, "\(plan.directories.keys.sorted())")
    }

    @Test func aMissingConfigPathIsAwaitedInItsDeepestExistingDirectory() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        let plan = WatchPlan(paths: [tmp.url("later/jobs.d")])
        #expect(plan.directories == [tmp.path: .init(tree: false, names: ["later"])])
    }

    @Test func aLinkToAnUnrelatedFileIsNotFollowed() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("elsewhere/README", "")
        try tmp.mkdir("conf")
        try tmp.symlink("conf/README", to: "../elsewhere/README")
        let plan = WatchPlan(paths: [tmp.url("conf")])
        #expect(plan.directories[tmp.url("elsewhere")] == nil)
        #expect(plan.directories[tmp.url("conf")] == .init(tree: true, names: ["README"]))
    }

    @Test func theEntriesExaminedArePlannedWithinABound() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        for i in 0..<6 { try tmp.write("conf/sub/x\(i).yaml", "version: 1\n") }
        #expect(!WatchPlan(paths: [tmp.url("conf")], maxDirectories: 100, maxEntries: 7).exceeded)
        // Past the bound the plan is abandoned (the watcher polls) rather than read whole.
        #expect(WatchPlan(paths: [tmp.url("conf")], maxDirectories: 100, maxEntries: 6).exceeded)
        #expect(WatchPlan(paths: [tmp.url("conf")], maxDirectories: 1, maxEntries: 100).exceeded)
    }
}
