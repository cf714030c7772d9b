import SundialCore

/// Bulk history reads for the status pages: one query per page rather than one `history` call
/// per job.
///
/// With 1,000 jobs, a `history` call per job costs the jobs page about 0.45 ms each on the
/// SQLite store (release build, 2-core machine): 450 ms of a 200 ms budget. A store that
/// conforms is asked once per page; any other ``StateStore`` still works, one `history` call
/// per job. (The SQLite store should conform, with one windowed query each:
/// `ROW_NUMBER() OVER (PARTITION BY job ORDER BY started_at DESC, id DESC) <= limit`.)
public protocol StatusHistoryReading: StateStore {
    /// The newest `limit` runs of every job that has any, newest first per job.
    func recentRuns(limit: Int) throws -> [JobID: [RunSummary]]

    /// The runs of every job that were in flight or finished at or after `since`, at most the
    /// newest `limit` per job, newest first per job.
    func runs(since: Instant, limit: Int) throws -> [JobID: [RunSummary]]
}
