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

        /// The key named `name`, nil for any other name.
        ///
        /// Why not a `[String: Key]`: every key of every job is looked up, and a dictionary
        /// hashes the whole name with SipHash first (about 350 instructions a key, 3.6 % of a
        /// loader child). The names are fixed, so a table of 256 slots indexed by the length and
        /// the first and last bytes (linear probing, built once, checked for every name by
        /// `JobFieldsTests`) finds the one candidate, and one comparison of bytes confirms it.
        init?(name: String) {
            var name = name
            guard let key = name.withUTF8({ Key.lookup($0) }) else { return nil }
            self = key
        }

        private static func slot(_ u: UnsafeBufferPointer<UInt8>) -> Int {
            guard let first = u.first, let last = u.last else { return 0 }
            return (u.count &* 31 &+ Int(first) &* 7 &+ Int(last)) & 255
        }

        private static func lookup(_ u: UnsafeBufferPointer<UInt8>) -> Key? {
            var i = slot(u)
            while true {
                let entry = table[i]
                guard entry >= 0, let key = Key(rawValue: Int(entry)) else { return nil }
                if key.utf8.elementsEqual(u) { return key }
                i = (i + 1) & 255
            }
        }

        /// Each key's name as bytes, by raw value.
        private static let names: [[UInt8]] = allCases.map { Array($0.name.utf8) }
        private var utf8: [UInt8] { Key.names[rawValue] }

        /// Slot → raw value of the key there, -1 for none. 35 keys in 256 slots.
        private static let table: [Int8] = {
            var t = [Int8](repeating: -1, count: 256)
            for key in allCases {
                var i = names[key.rawValue].withUnsafeBufferPointer { slot($0) }
                while t[i] >= 0 { i = (i + 1) & 255 }
                t[i] = Int8(key.rawValue)
            }
            return t
        }()
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
            guard let key = k.scalarText.flatMap(Key.init(name:)) else { continue }
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
                guard let key = k.scalarText.flatMap(Key.init(name:)) else { continue }
                slots[key.rawValue] = [v]
            }
        }
        return slots
    }
}
