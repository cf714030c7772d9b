import Foundation
import OrderedCollections
import SundialCore
import SundialTesting
import Testing

@testable import SundialRuntime

@Suite(.offPool) struct LaunchSpecTests {
    let id = RunID(rawValue: "01TESTRUN")
    let context = LaunchContext(isRoot: false, agentEnvironment: ["HOME": "/home/agent", "USER": "agent", "LANG": "de_DE.UTF-8", "TERM": "xterm"])

    @Test func baseEnvironmentIsMinimalAndDocumented() throws {
        var job = JobSpec(id: "env-job", command: .argv(["true"]))
        job.env = ["EXTRA": "1", "PATH": "/usr/bin:/bin"]
        let spec = try LaunchSpec(job: job, runID: id, attempt: 2, context: context)
        #expect(
            spec.environment == [
                "PATH": "/usr/bin:/bin", "HOME": "/home/agent", "USER": "agent", "LOGNAME": "agent", "SHELL": "/bin/sh",
                "LANG": "de_DE.UTF-8", "EXTRA": "1", "SUNDIAL_JOB": "env-job", "SUNDIAL_RUN_ID": "01TESTRUN", "SUNDIAL_ATTEMPT": "2",
            ])
        #expect(spec.executable == "/usr/bin/true")
        #expect(spec.arguments == ["true"])
    }

    @Test func sundialVariablesCannotBeOverridden() throws {
        var job = JobSpec(id: "j", command: .argv(["true"]))
        job.env = ["SUNDIAL_JOB": "other"]
        #expect(try LaunchSpec(job: job, runID: id, attempt: 1, context: context).environment["SUNDIAL_JOB"] == "j")
    }

    @Test func envWinsOverEnvFileAndSecretsAreCollected() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/job.env"
        try TestFile.write("FROM_FILE=file\nOVER=file\nTOKEN=tok-123\n", to: path, mode: 0o600)
        var job = JobSpec(id: "j", command: .argv(["true"]))
        job.envFile = path
        job.env = ["OVER": "job", "PASSWORD": "pw-456"]
        job.secrets = ["TOKEN", "PASSWORD", "UNSET"]
        let spec = try LaunchSpec(job: job, runID: id, attempt: 1, context: context)
        #expect(spec.environment["FROM_FILE"] == "file")
        #expect(spec.environment["OVER"] == "job")
        #expect(Set(spec.secretValues) == ["tok-123", "pw-456"])
    }

    @Test func shellCommandsRunUnderBinSh() throws {
        let spec = try LaunchSpec(job: JobSpec(id: "j", command: .shell("echo hi | cat")), runID: id, attempt: 1, context: context)
        #expect(spec.executable == "/bin/sh")
        #expect(spec.arguments == ["/bin/sh", "-c", "echo hi | cat"])
    }

    private func launchError(_ job: JobSpec, context: LaunchContext? = nil) -> LaunchError? {
        do {
            _ = try LaunchSpec(job: job, runID: id, attempt: 1, context: context ?? self.context)
            return nil
        } catch { return error }
    }

    @Test func commandNotFound() {
        let e = launchError(JobSpec(id: "j", command: .argv(["no-such-command-xyz"])))
        #expect(e?.code == .commandNotFound)
        #expect(e?.message == "command not found: 'no-such-command-xyz' is not in PATH (\(LaunchSpec.defaultPath))")
        let abs = launchError(JobSpec(id: "j", command: .argv(["/nonexistent/tool"])))
        #expect(abs?.code == .commandNotFound)
        #expect(abs?.message == "command not found: /nonexistent/tool (No such file or directory)")
    }

    @Test func notExecutable() throws {
        let dir = try temporaryDirectory()
        let file = dir + "/script.sh"
        try TestFile.write("echo hi\n", to: file, mode: 0o644)
        let e = launchError(JobSpec(id: "j", command: .argv([file])))
        #expect(e?.code == .notExecutable)
        #expect(e?.message.hasPrefix("not executable: \(file)") == true)
        let d = launchError(JobSpec(id: "j", command: .argv([dir])))
        #expect(d?.message == "not executable: \(dir) (is a directory)")
    }

    @Test func badWorkdir() throws {
        var job = JobSpec(id: "j", command: .argv(["true"]))
        job.workdir = "/nonexistent-dir"
        #expect(launchError(job)?.message == "workdir '/nonexistent-dir': No such file or directory")
        job.workdir = "/etc/hostname"
        #expect(launchError(job)?.message == "workdir '/etc/hostname' is not a directory")
        #expect(launchError(job)?.code == .badWorkdir)
    }

    @Test func relativeCommandResolvesAgainstWorkdir() throws {
        let dir = try temporaryDirectory()
        try TestFile.write("#!/bin/sh\necho ok\n", to: dir + "/run.sh", mode: 0o755)
        var job = JobSpec(id: "j", command: .argv(["./run.sh"]))
        job.workdir = dir
        #expect(try LaunchSpec(job: job, runID: id, attempt: 1, context: context).executable == "./run.sh")
    }

    @Test func userNeedsRoot() {
        var job = JobSpec(id: "j", command: .argv(["true"]))
        job.user = "nobody"
        let e = launchError(job, context: LaunchContext(isRoot: false, agentEnvironment: [:]))
        #expect(e?.code == .notRoot)
        #expect(e?.message.hasPrefix("job 'j' sets user 'nobody', which needs the agent to run as root") == true)
    }

    @Test func unknownUserAndGroup() {
        var job = JobSpec(id: "j", command: .argv(["true"]))
        job.user = "no-such-user-xyz"
        let root = LaunchContext(isRoot: true, agentEnvironment: [:])
        #expect(launchError(job, context: root)?.message == "job 'j': unknown user 'no-such-user-xyz'")
        job.user = nil
        job.group = "no-such-group-xyz"
        #expect(launchError(job, context: root)?.code == .unknownUser)
    }

    @Test func userSetsHomeAndNames() throws {
        var job = JobSpec(id: "j", command: .argv(["true"]))
        job.user = "nobody"
        let spec = try LaunchSpec(job: job, runID: id, attempt: 1, context: LaunchContext(isRoot: true, agentEnvironment: ["HOME": "/root"]))
        #expect(spec.credentials?.uid == 65534)
        #expect(spec.environment["USER"] == "nobody")
        #expect(spec.environment["HOME"] == "/nonexistent")
    }

    @Test func nulBytesAreRefused() {
        #expect(launchError(JobSpec(id: "j", command: .argv(["true", "a\u{0}b"])))?.code == .invalidCommand)
    }
}
