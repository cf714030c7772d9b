import Foundation
import SundialTesting
import Testing

@testable import SundialRuntime

/// The listing rules of design §1 on real temporary directories.
@Suite(.offPool) struct ConfigFilesTests {
    @Test func directoryIsReadRecursivelyInSortedPathOrder() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        for name in ["b.yml", "a.yaml", "a/z.yaml", "a/b/c.yaml", "A.yaml", "c.YAML", "notes.txt", "a/readme.md"] {
            try tmp.write("conf/" + name, "version: 1\n")
        }
        let listing = ConfigFiles.list(paths: [tmp.url("conf")])
        #expect(listing.problems.isEmpty)
        // Byte order of whole paths: "A" < "a", and "a.yaml" < "a/…" because "." < "/".
        #expect(listing.files == ["A.yaml", "a.yaml", "a/b/c.yaml", "a/z.yaml", "b.yml"].map { tmp.url("conf/" + $0) })
    }

    @Test func hiddenFilesAndEditorLeftoversAreIgnored() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        for name in [
            "jobs.yaml", ".hidden.yaml", ".jobs.yaml.swp", "jobs.yaml.swp", "jobs.yaml~", "#jobs.yaml#",
            ".git/config.yaml", ".cache/x.yml", "..data/jobs.yaml", "sub~/x.yaml", "#sub#/x.yaml",
        ] {
            try tmp.write("conf/" + name, "version: 1\n")
        }
        let listing = ConfigFiles.list(paths: [tmp.url("conf")])
        #expect(listing.files == [tmp.url("conf/jobs.yaml")])
        #expect(listing.problems.isEmpty)
    }

    @Test(arguments: [
        (".x.yaml", true), ("x.yaml~", true), ("x.swp", true), ("#x.yaml#", true), ("#", false),
        ("x.yaml", false), ("x#", false), ("#x", false), ("..data", true),
    ])
    func ignoredNames(name: String, ignored: Bool) {
        #expect(ConfigFiles.isIgnoredName(name) == ignored)
    }

    @Test(arguments: [("a.yaml", true), ("a.yml", true), ("a.json", false), ("yaml", false), (".a.yaml", false), ("a.yaml.bak", false)])
    func configFileNames(name: String, isConfig: Bool) {
        #expect(ConfigFiles.isConfigFileName(name) == isConfig)
    }

    @Test func aFilePathIsTakenAsIs() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("jobs.conf", "version: 1\n")
        try tmp.write(".hidden.yaml", "version: 1\n")
        let listing = ConfigFiles.list(paths: [tmp.url("jobs.conf"), tmp.url(".hidden.yaml")])
        #expect(listing.files == [tmp.url("jobs.conf"), tmp.url(".hidden.yaml")])
        #expect(listing.problems.isEmpty)
    }

    @Test func pathsKeepTheirGivenOrderAndDuplicatesCountOnce() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("z/a.yaml", "version: 1\n")
        try tmp.write("a/b.yaml", "version: 1\n")
        let listing = ConfigFiles.list(paths: [tmp.url("z/"), tmp.url("a"), tmp.url("z/a.yaml")])
        #expect(listing.files == [tmp.url("z/a.yaml"), tmp.url("a/b.yaml")])
    }

    @Test func missingPathIsAProblem() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("conf/a.yaml", "version: 1\n")
        let listing = ConfigFiles.list(paths: [tmp.url("nope"), tmp.url("conf")])
        #expect(listing.files == [tmp.url("conf/a.yaml")])
        #expect(listing.problems.count == 1)
        #expect(listing.problems.first?.path == tmp.url("nope"))
        #expect(listing.problems.first?.message == "no such file or directory")
    }

    @Test func danglingLinkToAJobFileIsAProblem() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.mkdir("conf")
        try tmp.symlink("conf/gone.yaml", to: "missing.yaml")
        try tmp.symlink("conf/gone-dir", to: "missing")  // not a job file name: ignored
        let listing = ConfigFiles.list(paths: [tmp.url("conf")])
        #expect(listing.files.isEmpty)
        #expect(listing.problems.map(\.path) == [tmp.url("conf/gone.yaml")])
        #expect(listing.problems.first?.message.hasPrefix("dangling symbolic link to missing.yaml") == true)
    }

    @Test func symlinkLoopIsReportedAndDoesNotHang() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("conf/a.yaml", "version: 1\n")
        try tmp.symlink("conf/sub", to: ".")
        try tmp.symlink("conf/self.yaml", to: "self.yaml")  // a link to itself: ELOOP
        let listing = ConfigFiles.list(paths: [tmp.url("conf")])
        #expect(listing.files == [tmp.url("conf/a.yaml")])
        #expect(listing.problems.map(\.path).sorted() == [tmp.url("conf/self.yaml"), tmp.url("conf/sub")])
        #expect(listing.problems.contains { $0.message == "symbolic link loop; skipped" })
    }

    @Test func kubernetesConfigMapLayoutListsTheVisibleLinks() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("mount/..2024_01/jobs.yaml", "version: 1\n")
        try tmp.write("mount/..2024_01/more.yml", "version: 1\n")
        try tmp.symlink("mount/..data", to: "..2024_01")
        try tmp.symlink("mount/jobs.yaml", to: "..data/jobs.yaml")
        try tmp.symlink("mount/more.yml", to: "..data/more.yml")
        let listing = ConfigFiles.list(paths: [tmp.url("mount")])
        #expect(listing.files == [tmp.url("mount/jobs.yaml"), tmp.url("mount/more.yml")])
        #expect(listing.problems.isEmpty)
    }

    @Test func linkedDirectoryIsFollowedOnce() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("shared/common.yaml", "version: 1\n")
        try tmp.mkdir("conf")
        try tmp.symlink("conf/one", to: "../shared")
        try tmp.symlink("conf/two", to: "../shared")
        let listing = ConfigFiles.list(paths: [tmp.url("conf")])
        #expect(listing.files == [tmp.url("conf/one/common.yaml")])
        #expect(listing.problems.isEmpty)
    }

    @Test func theNumberOfFilesIsBounded() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        for i in 0..<5 { try tmp.write("conf/\(i).yaml", "version: 1\n") }
        let listing = ConfigFiles.list(paths: [tmp.url("conf")], maxFiles: 3)
        // None of them is read: the set is rejected whatever they say.
        #expect(listing.files.isEmpty)
        #expect(listing.problems.count == 1)
        #expect(listing.problems.first?.message == "more than 3 job files: the whole set is rejected (is the path a mistake, such as `/`?)")
    }

    @Test func theNumberOfDirectoriesReadIsBounded() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        // Few job files, many directories: what a link to `/` looks like.
        try tmp.write("conf/a.yaml", "version: 1\n")
        for i in 0..<5 { try tmp.mkdir("conf/d\(i)/e") }
        let root = tmp.url("conf")
        let listing = ConfigFiles.list(paths: [root], maxFiles: 100, maxDirectories: 4)
        #expect(listing.files.isEmpty)
        #expect(listing.problems.map(\.path) == [root])
        #expect(
            listing.problems.first?.message
                == "more than 4 directories below \(root): the whole set is rejected (is the path a mistake, such as a link to `/`?)")
        // Within the bound, the same tree lists normally.
        #expect(ConfigFiles.list(paths: [root], maxFiles: 100, maxDirectories: 11).problems.isEmpty)
    }

    @Test func theNumberOfEntriesExaminedIsBounded() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        // Ignored names count too: each is read, and most below `/` are not job files.
        for i in 0..<6 { try tmp.write("conf/sub/.hidden\(i)", "") }
        try tmp.write("conf/a.yaml", "version: 1\n")
        let root = tmp.url("conf")
        let listing = ConfigFiles.list(paths: [root, tmp.url("conf/a.yaml")], maxFiles: 100, maxEntries: 5)
        #expect(listing.files.isEmpty)
        #expect(listing.problems.count == 1, "the walk stops at once: \(listing.problems)")
        #expect(
            listing.problems.first?.message
                == "more than 5 directory entries below \(root): the whole set is rejected (is the path a mistake, such as a link to `/`?)")
        #expect(ConfigFiles.list(paths: [root], maxFiles: 100, maxEntries: 8).problems.isEmpty)
    }

    @Test func aPollOfALinkToTheRootIsBoundedAndStable() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.write("conf/a.yaml", "version: 1\njobs:\n  a:\n    every: 1s\n    command: [/bin/true]\n")
        try tmp.symlink("conf/root", to: "/")
        // /proc changes between two looks; the bounded listing reports the same problem both times.
        let first = PollSnapshot(paths: [tmp.url("conf")])
        let second = PollSnapshot(paths: [tmp.url("conf")])
        #expect(first.problems.count == 1)
        #expect(first.problems.first?.contains("the whole set is rejected") == true, "\(first.problems)")
        #expect(first == second)
    }

    @Test(.enabled(if: geteuid() != 0, "root reads any directory"))
    func unreadableDirectoryIsAProblem() throws {
        let tmp = try TempDirectory()
        defer {
            chmod(tmp.url("conf/locked"), 0o755)
            tmp.remove()
        }
        try tmp.write("conf/a.yaml", "version: 1\n")
        try tmp.write("conf/locked/b.yaml", "version: 1\n")
        chmod(tmp.url("conf/locked"), 0)
        let listing = ConfigFiles.list(paths: [tmp.url("conf")])
        #expect(listing.files == [tmp.url("conf/a.yaml")])
        #expect(listing.problems.map(\.path) == [tmp.url("conf/locked")])
        #expect(listing.problems.first?.message == "cannot read directory: permission denied")
    }

    @Test func aFifoNamedLikeAJobFileIsAProblemNotAHang() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        try tmp.mkdir("conf")
        #expect(mkfifo(tmp.url("conf/pipe.yaml"), 0o600) == 0)
        let listing = ConfigFiles.list(paths: [tmp.url("conf")])
        #expect(listing.files.isEmpty)
        #expect(listing.problems.map(\.message) == ["not a regular file"])
    }
}
