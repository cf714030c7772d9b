/// The connections a single-threaded server holds open, each with one deadline, at most
/// ``capacity`` of them: the bookkeeping the control socket and the metrics endpoint share.
///
/// **When full.** A new connection evicts the *oldest connection still waiting for its
/// request* (``admit(fd:now:deadline:state:evictable:)``'s `evictable`); only when every held
/// connection is past that stage (being answered or written, so about to end on its own) is the
/// newcomer refused. Why eviction rather than refusal: refusing lets whoever fills the table
/// first (clients that connect and trickle) keep it full by reconnecting as slots free up, so a
/// well-behaved client could lose every race. With eviction a newcomer always gets in, and a
/// well-behaved client — one that sends its request as it connects — is read at once (the
/// servers try a read right after accepting) and so leaves the evictable stage before anyone
/// can push it out: that takes ``capacity`` further connections, and the servers accept only a
/// small batch per loop turn, reading every ready connection in between.
///
/// Entries are kept in accept order, so the first evictable entry is the oldest. `capacity` is
/// small (128), so the linear scans cost less than any index would.
struct ConnectionTable<State> {
    struct Entry {
        /// Unique for the table's lifetime (never reused, unlike file descriptors).
        let id: UInt64
        let fd: Int32
        /// Monotonic milliseconds (``monotonicMillis()``) at which the connection is closed or,
        /// for a request being answered, answered with an error.
        var deadline: Int64
        var state: State
    }

    /// What ``admit(fd:now:deadline:state:evictable:)`` did.
    enum Admission {
        /// Added; `evicted` (if any) was removed to make room and is the caller's to close.
        case admitted(id: UInt64, evicted: Entry?)
        /// Full of connections that may not be evicted; the caller closes `fd`.
        case refused
    }

    let capacity: Int
    private(set) var entries: [Entry] = []
    private var lastID: UInt64 = 0

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        entries.reserveCapacity(self.capacity)
    }

    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }

    /// The earliest deadline, or nil when no connection is open (the server then sleeps
    /// without a timeout).
    var nextDeadline: Int64? { entries.lazy.map(\.deadline).min() }

    mutating func admit(fd: Int32, deadline: Int64, state: State, evictable: (State) -> Bool) -> Admission {
        var evicted: Entry?
        if entries.count >= capacity {
            guard let oldest = entries.firstIndex(where: { evictable($0.state) }) else { return .refused }
            evicted = entries.remove(at: oldest)
        }
        lastID &+= 1
        entries.append(Entry(id: lastID, fd: fd, deadline: deadline, state: state))
        return .admitted(id: lastID, evicted: evicted)
    }

    func index(of id: UInt64) -> Int? { entries.firstIndex { $0.id == id } }

    subscript(index: Int) -> Entry {
        get { entries[index] }
        set { entries[index] = newValue }
    }

    /// Removes and returns the entry `id` (nil when already gone).
    @discardableResult
    mutating func remove(id: UInt64) -> Entry? {
        guard let i = index(of: id) else { return nil }
        return entries.remove(at: i)
    }

    /// Ids of the entries whose deadline is at or before `now`.
    func expired(at now: Int64) -> [UInt64] { entries.filter { $0.deadline <= now }.map(\.id) }

    /// Removes and returns every entry (at shutdown).
    mutating func removeAll() -> [Entry] {
        defer { entries.removeAll() }
        return entries
    }
}
