/// A job's keys with `defaults` merged in, indexed by ``Key`` rather than by name.
///
/// The decoder reads each of the 35 keys of every job, most of them absent. As a dictionary
/// keyed by name, each read hashed its name: about 3.6 % of `validate`'s instructions
/// (docs/benchmarks.md, twelfth session). Here each key present in the file is looked up once,
/// when the job is merged, and every read is an array index.
struct JobFields {
    /// A job's keys: the properties of the schema's `job` (`JobFieldsTests` keeps them equal).
    enum Key: Int, CaseIterable {
        case at, catchup, catchupWindow, command, concurrency, description, dst, enabled, env, envFile, every
        case fleetUnavailable, group, jitter, killGrace, lease, limits, lock, needs, notify, offset
        case onAgentRestart, onLost, output, reboot, retry, schedule, secrets, shell, successExitCodes
        case timeout, timezone, umask, user, workdir

        /// The key as written in a job file.
        var name: String {
            switch self {
            case .at: "at"
            case .catchup: "catchup"
            case .catchupWindow: "catchup_window"
            case .command: "command"
            case .concurrency: "concurrency"
            case .description: "description"
            case .dst: "dst"
            case .enabled: "enabled"
            case .env: "env"
            case .envFile: "env_file"
            case .every: "every"
            case .fleetUnavailable: "fleet_unavailable"
            case .group: "group"
            case .jitter: "jitter"
            case .killGrace: "kill_grace"
            case .lease: "lease"
            case .limits: "limits"
            case .lock: "lock"
            case .needs: "needs"
            case .notify: "notify"
            case .offset: "offset"
            case .onAgentRestart: "on_agent_restart"
            case .onLost: "on_lost"
            case .output: "output"
            case .reboot: "reboot"
            case .retry: "retry"
            case .schedule: "schedule"
            case .secrets: "secrets"
            case .shell: "shell"
            case .successExitCodes: "success_exit_codes"
            case .timeout: "timeout"
            case .timezone: "timezone"
            case .umask: "umask"
            case .user: "user"
            case .workdir: "workdir"
            }
        }

        /// Maps whose keys merge with those of `defaults` instead of replacing them.
        var mergesWithDefaults: Bool {
            switch self {
            case .env, .retry, .output, .dst, .limits: true
            default: false
            }
        }

        static let byName: [String: Key] = Dictionary(uniqueKeysWithValues: allCases.map { ($0.name, $0) })
    }

    /// One entry per ``Key``: the job's node, or for a merged map the default's then the job's.
    private var slots: [[YAMLNode]]

    /// The nodes of `key`, `nil` when neither the job nor `defaults` has it.
    subscript(key: Key) -> [YAMLNode]? {
        let nodes = slots[key.rawValue]
        return nodes.isEmpty ? nil : nodes
    }

    /// `job`'s keys over those of `defaults`: a merged map (``Key/mergesWithDefaults``) keeps
    /// both nodes, default first; any other key keeps the job's. So `.first` reads the winning
    /// value of a plain key. Walks the mappings' pairs in place.
    init(job: YAMLNode, defaults: YAMLNode?) {
        self.init(job: job, defaultSlots: JobFields.slots(ofDefaults: defaults))
    }

    /// As ``init(job:defaults:)``, with `defaults` already sorted into slots by
    /// ``slots(ofDefaults:)``: once per file rather than once per job.
    init(job: YAMLNode, defaultSlots: [[YAMLNode]]) {
        slots = defaultSlots
        guard case let .mapping(pairs) = job.kind else { return }
        for (k, v) in pairs {
            guard let key = k.scalarText.flatMap({ Key.byName[$0] }) else { continue }
            if key.mergesWithDefaults {
                slots[key.rawValue].append(v)
            } else {
                slots[key.rawValue] = [v]
            }
        }
    }

    /// The keys of a file's `defaults` by slot (all empty without one).
    static func slots(ofDefaults defaults: YAMLNode?) -> [[YAMLNode]] {
        var slots: [[YAMLNode]] = Array(repeating: [], count: Key.allCases.count)
        if let defaults, case let .mapping(pairs) = defaults.kind {
            for (k, v) in pairs {
                guard let key = k.scalarText.flatMap({ Key.byName[$0] }) else { continue }
                slots[key.rawValue] = [v]
            }
        }
        return slots
    }
}
