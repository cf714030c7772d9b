#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The working directory of a job that sets no `workdir`.
///
/// A job running as the agent gets the agent's default (the state directory: it always exists
/// and belongs to the agent; docs/decisions.md). A job with `user:` cannot use that: the state
/// directory is mode 0700 and the directory is entered *after* switching users, so every such
/// job failed with "cannot enter workdir … Permission denied". It gets that user's home from
/// the password database instead, as cron and `su -` do, or `/` when the home is not an
/// existing directory (system users such as `nobody` have `/nonexistent`).
public enum DefaultWorkdir {
    /// - Parameters:
    ///   - user: the job's `user` (a name or numeric id), `nil` for the agent's own user.
    ///   - agentDefault: the directory for jobs running as the agent.
    ///   - home: the user's home from the password database (`getpwnam_r`/`getpwuid_r`);
    ///     injected by tests.
    ///   - isDirectory: whether a path names an existing directory; injected by tests.
    public static func resolve(
        user: String?, agentDefault: String,
        home: (String) -> String? = DefaultWorkdir.passwdHome,
        isDirectory: (String) -> Bool = DefaultWorkdir.isDirectory
    ) -> String {
        guard let user else { return agentDefault }
        guard let dir = home(user), dir.hasPrefix("/"), isDirectory(dir) else { return "/" }
        return dir
    }

    /// The home directory of `user` (a name or numeric id) in the password database.
    public static func passwdHome(_ user: String) -> String? { Credentials.lookupUser(user)?.home }

    /// `path` exists (following symlinks) and is a directory.
    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }
}
