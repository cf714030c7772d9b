/// Resolves a path component by component, like `realpath(3)`, but also reports every symbolic
/// link it passed through and where resolution stopped.
///
/// Why not `realpath`: the watcher must watch the directory *holding each link* to see the link
/// being swapped (Kubernetes renames a new `..data` link over the old one; `ln -sfn` does the
/// same for a directory link). `realpath` only returns the end of the chain.
struct SymlinkChain: Hashable, Sendable {
    /// A symbolic link named `name` inside the (resolved) directory `directory`.
    struct Hop: Hashable, Sendable {
        var directory: String
        var name: String
    }

    /// Every link passed through, in order.
    var hops: [Hop] = []
    /// The fully resolved absolute path, or nil when a component is missing or links loop.
    var resolved: String?
    /// When a component does not exist: the deepest existing directory and the missing name,
    /// so the watcher can wait for it to appear.
    var missing: Hop?

    /// The most links followed, as Linux's `MAXSYMLINKS`.
    static let maxLinks = 40

    /// Resolves `path` (absolute, or relative to the working directory).
    init(resolving path: String) {
        var pending = SymlinkChain.components(PathProbe.absolute(path)).reversed() as [Substring]
        var current = ""  // resolved so far, "" meaning "/"
        var followed = 0
        while let component = pending.popLast() {
            if component.isEmpty || component == "." { continue }
            if component == ".." {
                current = current.isEmpty ? "" : SymlinkChain.parentOrRoot(current)
                continue
            }
            let name = String(component)
            let directory = current.isEmpty ? "/" : current
            let candidate = current + "/" + name
            guard case .success(let status) = PathProbe.status(candidate, followLinks: false) else {
                missing = Hop(directory: directory, name: name)
                return
            }
            guard status.kind == .symlink else {
                current = candidate
                continue
            }
            hops.append(Hop(directory: directory, name: name))
            followed += 1
            guard followed <= SymlinkChain.maxLinks, let target = PathProbe.linkTarget(candidate) else {
                return  // a loop or an unreadable link: resolved stays nil
            }
            if target.hasPrefix("/") { current = "" }
            pending.append(contentsOf: SymlinkChain.components(target).reversed())
        }
        resolved = current.isEmpty ? "/" : current
    }

    private static func components(_ path: String) -> [Substring] {
        path.split(separator: "/", omittingEmptySubsequences: true)
    }

    private static func parentOrRoot(_ resolved: String) -> String {
        let parent = PathProbe.parent(resolved)
        return parent == "/" ? "" : parent
    }
}
