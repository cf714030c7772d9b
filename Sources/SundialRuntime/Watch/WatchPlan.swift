/// The directories the watcher must watch for a set of config paths, and which names in each
/// one matter.
///
/// inotify watches directories, not paths, and reports names relative to them. So:
/// - each directory of a config tree is watched *as a tree*: any job file or subdirectory
///   name that `ConfigFiles` would not ignore is relevant;
/// - the directory holding each config path, each symbolic link on the way to a config path or
///   to a linked job file, and each linked file's real location is watched for *that name
///   only*. This is how a Kubernetes `..data` swap is seen: `..data` is hidden, so a tree would
///   ignore it, but it lies on the chain of `jobs.yaml -> ..data/jobs.yaml`;
/// - a config path that does not exist yet is awaited in its deepest existing directory.
///
/// Recomputed from the file system after every structural change; bounded by `maxDirectories`
/// and `maxEntries` (a link to `/` must not make each recomputation a walk of /proc).
struct WatchPlan: Sendable {
    /// What matters inside one watched directory.
    struct Interest: Hashable, Sendable {
        /// Every non-ignored job file or subdirectory name is relevant.
        var tree = false
        /// These names are relevant whatever they look like (links, a config path, a linked file).
        var names: Set<String> = []

        mutating func merge(_ other: Interest) {
            tree = tree || other.tree
            names.formUnion(other.names)
        }

        /// Whether an event about `name` (a directory when `isDirectory`) in this directory is
        /// a change of the config set. `isSymlink` is asked only when it could matter.
        func isRelevant(name: String, isDirectory: Bool, isSymlink: () -> Bool) -> Bool {
            if names.contains(name) { return true }
            guard tree, !ConfigFiles.isIgnoredName(name) else { return false }
            if isDirectory || ConfigFiles.isConfigFileName(name) { return true }
            // A new link to a directory, named like one (`conf.d`), is not flagged IN_ISDIR.
            return isSymlink()
        }
    }

    /// The most directories watched; a larger tree makes the watcher poll instead.
    static let maxDirectories = ConfigFiles.maxDirectories
    /// The most directory entries examined while planning; more also makes the watcher poll.
    static let maxEntries = ConfigFiles.maxEntries

    /// Watched directory (resolved absolute path) → what matters in it.
    private(set) var directories: [String: Interest] = [:]
    /// Set when the trees hold more than `maxDirectories` directories or `maxEntries` entries.
    private(set) var exceeded = false

    private let maxDirectories: Int
    private let maxEntries: Int
    private var entriesExamined = 0

    private var seenTrees: Set<PathProbe.FileID> = []

    init(paths: [String]) { self.init(paths: paths, maxDirectories: WatchPlan.maxDirectories, maxEntries: WatchPlan.maxEntries) }

    /// A plan with explicit bounds (tests use small ones).
    init(paths: [String], maxDirectories: Int, maxEntries: Int) {
        self.maxDirectories = maxDirectories
        self.maxEntries = maxEntries
        for path in paths where !exceeded { addConfigPath(path) }
    }

    private mutating func add(_ directory: String, _ interest: Interest) {
        if directories[directory] == nil, directories.count >= maxDirectories {
            exceeded = true
            return
        }
        directories[directory, default: Interest()].merge(interest)
    }

    private mutating func add(_ directory: String, name: String) {
        add(directory, Interest(tree: false, names: [name]))
    }

    /// Watches the chain to `path` and returns where it resolved to (nil when missing).
    private mutating func follow(_ path: String) -> String? {
        let chain = SymlinkChain(resolving: path)
        for hop in chain.hops { add(hop.directory, name: hop.name) }
        if let missing = chain.missing { add(missing.directory, name: missing.name) }
        guard let resolved = chain.resolved, resolved != "/" else { return chain.resolved }
        // The real file or directory itself: its replacement or removal in its directory.
        add(PathProbe.parent(resolved), name: PathProbe.baseName(resolved))
        return resolved
    }

    private mutating func addConfigPath(_ path: String) {
        let absolute = PathProbe.absolute(PathProbe.trimmed(path))
        guard let resolved = follow(absolute) else { return }
        if case .success(let status) = PathProbe.status(resolved, followLinks: false), status.kind == .directory {
            addTree(resolved, id: status.id, depth: 0)
        }
    }

    private mutating func addTree(_ directory: String, id: PathProbe.FileID, depth: Int) {
        guard !exceeded, depth <= ConfigFiles.maxDepth, seenTrees.insert(id).inserted else { return }
        add(directory, Interest(tree: true))
        // One past what is left, so that a huge directory is not read whole to learn it is too big.
        guard case .success(let names) = PathProbe.entries(of: directory, limit: maxEntries - entriesExamined + 1) else { return }
        guard names.count <= maxEntries - entriesExamined else {
            exceeded = true
            return
        }
        entriesExamined += names.count
        for name in names.sorted() where !ConfigFiles.isIgnoredName(name) {
            // Past a bound the plan is abandoned (the watcher polls): stat no more entries.
            if exceeded { return }
            let child = PathProbe.join(directory, name)
            guard case .success(let status) = PathProbe.status(child, followLinks: false) else { continue }
            switch status.kind {
            case .directory:
                addTree(child, id: status.id, depth: depth + 1)
            case .symlink:
                // Its name matters even when it does not look like a job file or a directory
                // (removing a link to a subdirectory), and so does everything it goes through.
                // Its chain is followed only when it denotes a job file or a directory (or
                // dangles), so a link to some unrelated file does not cause reloads.
                add(directory, name: name)
                let target = PathProbe.status(child, followLinks: true)
                if case .success(let t) = target, t.kind != .directory, !ConfigFiles.isConfigFileName(name) { continue }
                guard let resolved = follow(child),
                    case .success(let status) = PathProbe.status(resolved, followLinks: false)
                else { continue }
                if status.kind == .directory { addTree(resolved, id: status.id, depth: depth + 1) }
            default:
                continue
            }
        }
    }
}
