/// Why the state directory or database could not be used. Every message names the file, so an
/// operator reading the agent's one-line error knows what to look at.
public struct StateError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable {
        /// The database file is damaged, truncated or not an SQLite database.
        case corrupt
        /// The database was written by a newer Sundial (unknown schema migrations).
        case newerSchema
        /// Another agent holds the state directory's lock.
        case locked
        /// Any other I/O or SQLite failure (permissions, full disk...).
        case io
        /// The store was closed.
        case closed
    }

    public var code: Code
    /// The file or directory concerned.
    public var path: String
    public var message: String
    /// For ``Code/locked``: the pid written by the holder, when readable.
    public var holderPID: Int32?

    public init(_ code: Code, path: String, message: String, holderPID: Int32? = nil) {
        self.code = code
        self.path = path
        self.message = message
        self.holderPID = holderPID
    }

    public var description: String {
        switch code {
        case .corrupt:
            "state database \(path) is corrupt or not a Sundial database (\(message)); start with --reset-state to move it aside and start fresh"
        case .newerSchema:
            "state database \(path) was written by a newer version of Sundial (\(message))"
        case .locked:
            "state directory \(path) is in use by another agent (pid \(holderPID.map(String.init) ?? "unknown"))"
        case .io, .closed:
            "state \(path): \(message)"
        }
    }
}
