import OrderedCollections
import SundialCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Everything needed to start one attempt of a run, resolved and checked: the executable's
/// path, argv, the complete environment, credentials and limits.
///
/// Built from a ``JobSpec`` by ``init(job:runID:attempt:context:)``, which does every check that
/// can fail with a clear message *before* the process is created (command on `PATH`, workdir,
/// `env_file`, user), so the spawn itself rarely fails and when it does the cause is known.
public struct LaunchSpec: Hashable, Sendable {
    public var job: JobID
    public var runID: RunID
    public var attempt: Int
    /// The file `execve` runs: absolute, or relative to ``workdir``.
    public var executable: String
    /// The complete argv, `argv[0]` included.
    public var arguments: [String]
    /// The complete environment of the job (nothing else is inherited from the agent).
    public var environment: [String: String]
    public var workdir: String?
    public var umask: UInt16?
    public var credentials: Credentials?
    /// Wall-time limit of the attempt in milliseconds; `nil`: none.
    public var timeoutMs: Int64?
    /// Between SIGTERM and SIGKILL when the attempt times out.
    public var killGraceMs: Int64
    public var successExitCodes: [Int32]
    public var output: OutputLimits
    /// Values of the job's `secrets` variables and of its webhooks' `secret_env` (for
    /// ``SecretMasker``); empty values are left out.
    public var secretValues: [String]
    /// The job's `limits:`, written into the run's cgroup.
    public var limits: ResourceLimits
    /// Whether the run gets its own cgroup where the runner has a cgroup tree (the default).
    /// `false` keeps only the process group, as on a machine without cgroup v2: how tests
    /// check that behaviour on a machine that has one.
    public var useCgroup: Bool
    /// The wall-clock instant the process must not start before: the scheduled instant of a
    /// fire the agent prepared ahead of time (``Agent/Settings/fireLeadMs``). The runner builds
    /// the cgroup and the pipes first, then waits for it on the spawning thread, so at the
    /// instant only the `clone` and `exec` remain. An instant further than
    /// ``maximumHoldMs`` away (the wall clock was stepped since the decision) is not waited for.
    public var notBefore: Instant?
    /// The longest a spawn waits for ``notBefore``: a bound on how long the loop can be held.
    public static let maximumHoldMs: Int64 = 20

    /// A spec with no checks, for tests and benchmarks: `executable` is used as given.
    public init(
        job: JobID, runID: RunID, attempt: Int = 1, executable: String, arguments: [String],
        environment: [String: String] = [:], workdir: String? = nil, timeoutMs: Int64? = nil,
        killGraceMs: Int64 = 10_000, successExitCodes: [Int32] = [0], output: OutputLimits = OutputLimits()
    ) {
        self.job = job
        self.runID = runID
        self.attempt = attempt
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.workdir = workdir
        self.umask = nil
        self.credentials = nil
        self.timeoutMs = timeoutMs
        self.killGraceMs = killGraceMs
        self.successExitCodes = successExitCodes
        self.output = output
        self.secretValues = []
        self.limits = ResourceLimits()
        self.useCgroup = true
        self.notBefore = nil
    }
}

/// What a launch may take from the agent's own process: whether it is root, and the few agent
/// variables the base environment passes on. Injected so tests control it.
public struct LaunchContext: Hashable, Sendable {
    public var isRoot: Bool
    /// The agent's environment (only `HOME`, `USER`, `LOGNAME`, `LANG` and `TZ` are read).
    public var agentEnvironment: [String: String]

    public init(isRoot: Bool, agentEnvironment: [String: String]) {
        self.isRoot = isRoot
        self.agentEnvironment = agentEnvironment
    }

    /// The running agent's context.
    public static var current: LaunchContext {
        var env: [String: String] = [:]
        for key in ["HOME", "USER", "LOGNAME", "LANG", "TZ"] {
            if let v = getenv(key) { env[key] = String(cString: v) }
        }
        return LaunchContext(isRoot: geteuid() == 0, agentEnvironment: env)
    }
}

extension LaunchSpec {
    /// The `PATH` of the base environment (systemd's default for services).
    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// The shell that runs `shell:` commands.
    public static let shellPath = "/bin/sh"

    /// The agent's own account, looked up once: `getpwuid` re-reads /etc/passwd, which cost
    /// every launch of a burst a file read when the agent runs without HOME and USER (systemd).
    static let agentUser = Credentials.lookupUser(String(geteuid()))

    /// Resolves and checks `job` for one attempt.
    ///
    /// The environment is built in layers, later ones winning (documented in docs/jobs.md):
    /// 1. the base: `PATH` (``defaultPath``), `HOME`, `USER`, `LOGNAME` (the job's user, else the
    ///    agent's), `SHELL=/bin/sh`, `LANG` (the agent's, else `C.UTF-8`) and `TZ` when the agent
    ///    has one — never the rest of the agent's environment;
    /// 2. `env_file`; 3. `env`;
    /// 4. `SUNDIAL_JOB`, `SUNDIAL_RUN_ID`, `SUNDIAL_ATTEMPT` (cannot be overridden).
    ///
    /// - Throws: ``LaunchError`` with a message naming the culprit; never crashes on bad input.
    ///   The message never shows the job's secret values (a command path or a workdir may hold
    ///   one) and the error carries those known so far (``LaunchError/secretValues``).
    public init(job: JobSpec, runID: RunID, attempt: Int, context: LaunchContext = .current) throws(LaunchError) {
        // The inline values are known before anything is read; the env_file's join them once read.
        var known = Self.secretValues(of: job) { job.env[$0] }
        do throws(LaunchError) {
            try self.init(resolving: job, runID: runID, attempt: attempt, context: context, secretsKnown: &known)
        } catch {
            var masked = error
            masked.message = SecretMasker(known).mask(error.message)
            masked.secretValues = known
            throw masked
        }
    }

    /// The checks and the resolution of ``init(job:runID:attempt:context:)``; keeps
    /// `secretsKnown` up to date with the job's secret values as they are read.
    private init(
        resolving job: JobSpec, runID: RunID, attempt: Int, context: LaunchContext, secretsKnown: inout [String]
    ) throws(LaunchError) {
        let creds = try Credentials.resolve(user: job.user, group: job.group, job: job.id, isRoot: context.isRoot)

        var env: [String: String] = [:]
        env["PATH"] = Self.defaultPath
        let agentEnv = context.agentEnvironment
        if let creds, let name = creds.userName {
            env["HOME"] = creds.home ?? "/"
            env["USER"] = name
            env["LOGNAME"] = name
        } else {
            env["HOME"] = agentEnv["HOME"] ?? Self.agentUser?.home ?? "/"
            if let user = agentEnv["USER"] ?? agentEnv["LOGNAME"] ?? Self.agentUser?.name {
                env["USER"] = user
                env["LOGNAME"] = user
            }
        }
        env["SHELL"] = Self.shellPath
        env["LANG"] = agentEnv["LANG"] ?? "C.UTF-8"
        if let tz = agentEnv["TZ"] { env["TZ"] = tz }
        if let envFile = job.envFile {
            // Private when the job has any secret variable: those `secrets` names and each
            // webhook's `secret_env`, a signing key read from this file. The delivery refuses a
            // file others may read for that key, so a job launched from one ran with its key
            // exposed, and the refusal surfaced only in the failure's lost notification.
            let requirePrivate = !job.secretVariableNames.isEmpty
            for (k, v) in try EnvironmentFile.load(path: envFile, requirePrivate: requirePrivate) { env[k] = v }
            // The file's values, as the job will see them (`env` wins), for the checks below.
            secretsKnown = Self.secretValues(of: job) { job.env[$0] ?? env[$0] }
        }
        for (k, v) in job.env {
            guard EnvironmentFile.isValidKey(k) else {
                throw LaunchError(.invalidCommand, "job '\(job.id)': invalid environment variable name '\(k)'")
            }
            env[k] = v
        }
        env["SUNDIAL_JOB"] = job.id
        env["SUNDIAL_RUN_ID"] = runID.rawValue
        env["SUNDIAL_ATTEMPT"] = String(attempt)
        secretsKnown = Self.secretValues(of: job) { env[$0] }
        for (k, v) in env where v.utf8.contains(0) {
            throw LaunchError(.invalidCommand, "job '\(job.id)': environment variable \(k) contains a NUL byte")
        }

        if let workdir = job.workdir { try Self.checkWorkdir(workdir) }

        let argv: [String]
        switch job.command {
        case let .argv(a):
            guard let first = a.first, !first.isEmpty else { throw LaunchError(.invalidCommand, "job '\(job.id)': empty command") }
            argv = a
        case let .shell(script):
            argv = [Self.shellPath, "-c", script]
        }
        for arg in argv where arg.utf8.contains(0) {
            throw LaunchError(.invalidCommand, "job '\(job.id)': an argument contains a NUL byte")
        }
        let executable = try Self.resolveExecutable(argv[0], path: env["PATH"] ?? "", workdir: job.workdir)

        self.job = job.id
        self.runID = runID
        self.attempt = attempt
        self.executable = executable
        self.arguments = argv
        self.environment = env
        self.workdir = job.workdir
        self.umask = job.umask
        self.credentials = creds
        self.timeoutMs = job.timeoutMs
        self.killGraceMs = job.killGraceMs
        self.successExitCodes = job.successExitCodes
        self.output = job.output
        self.secretValues = secretsKnown
        self.limits = job.limits
        self.useCgroup = true
        self.notBefore = nil
    }

    /// The values `value` gives to `job`'s secret variables, empty ones left out: those its
    /// `secrets` names, and each webhook's `secret_env`. That one is the key that signs the
    /// job's notifications, read from the same `env_file`, so the job's environment carries it
    /// too: a job that prints its environment must not print it, listed in `secrets` or not.
    public static func secretValues(of job: JobSpec, value: (String) -> String?) -> [String] {
        job.secretVariableNames.compactMap(value).filter { !$0.isEmpty }
    }

    static func checkWorkdir(_ workdir: String) throws(LaunchError) {
        var st = stat()
        guard stat(workdir, &st) == 0 else {
            throw LaunchError(.badWorkdir, "workdir '\(workdir)': \(errnoText(errno))")
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { throw LaunchError(.badWorkdir, "workdir '\(workdir)' is not a directory") }
    }

    /// Finds `name` as `execvp` would, but up front, to tell "not found" from "not executable".
    /// A name with a `/` is a path (relative ones against `workdir`); otherwise each non-empty
    /// `PATH` entry is tried in order (empty entries, which mean ".", are skipped on purpose).
    static func resolveExecutable(_ name: String, path: String, workdir: String?) throws(LaunchError) -> String {
        if name.contains("/") {
            let probe = name.hasPrefix("/") || workdir == nil ? name : workdir! + "/" + name
            if let problem = executableProblem(probe) {
                if problem.notFound { throw LaunchError(.commandNotFound, "command not found: \(probe) (\(problem.text))") }
                throw LaunchError(.notExecutable, "not executable: \(probe) (\(problem.text))")
            }
            return name
        }
        var firstUnusable: (String, String)?
        for dir in path.split(separator: ":") where !dir.isEmpty {
            let candidate = dir.hasSuffix("/") ? "\(dir)\(name)" : "\(dir)/\(name)"
            guard let problem = executableProblem(candidate) else { return candidate }
            if !problem.notFound, firstUnusable == nil { firstUnusable = (candidate, problem.text) }
        }
        if let (candidate, text) = firstUnusable {
            throw LaunchError(.notExecutable, "not executable: \(candidate) (\(text))")
        }
        throw LaunchError(.commandNotFound, "command not found: '\(name)' is not in PATH (\(path))")
    }

    /// `nil` when `file` can be executed, else why not.
    private static func executableProblem(_ file: String) -> (notFound: Bool, text: String)? {
        var st = stat()
        guard stat(file, &st) == 0 else {
            let e = errno
            return (e == ENOENT || e == ENOTDIR, errnoText(e))
        }
        if (st.st_mode & S_IFMT) == S_IFDIR { return (false, "is a directory") }
        if (st.st_mode & S_IFMT) != S_IFREG { return (false, "not a regular file") }
        if access(file, X_OK) != 0 { return (false, "permission denied: no execute permission") }
        return nil
    }

    /// The environment as `KEY=VALUE` strings, sorted by key (stable, readable in `/proc`).
    var environmentStrings: [String] { environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" } }
}
