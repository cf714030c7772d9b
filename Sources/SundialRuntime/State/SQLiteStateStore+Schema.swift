extension SQLiteStateStore {
    /// The versioned schema. Never edit a registered migration: add a new one.
    ///
    /// Sizes matter (1,000 jobs × 30 days of minutely history must stay under 200 MB): jobs are
    /// referred to by a small integer, runs by their rowid; the run's ULID is stored once.
    static var migrator: SQLiteMigrator {
        var m = SQLiteMigrator()
        m.register("v1") { db in
            // One row per job ever seen; `last_fired` is the latest scheduled instant consumed
            // (fired, skipped or missed), the guard against firing an instant twice. Never pruned.
            try db.execute(
                script: """
                    CREATE TABLE jobs (
                      id INTEGER PRIMARY KEY,
                      name TEXT NOT NULL UNIQUE,
                      last_fired INTEGER
                    );
                    CREATE TABLE agent (
                      id INTEGER PRIMARY KEY CHECK (id = 1),
                      last_seen INTEGER NOT NULL
                    );
                    CREATE TABLE runs (
                      id INTEGER PRIMARY KEY,
                      run_id TEXT NOT NULL UNIQUE,
                      job INTEGER NOT NULL,
                      trigger TEXT NOT NULL,
                      scheduled_for INTEGER,
                      started_at INTEGER NOT NULL,
                      finished_at INTEGER,
                      outcome TEXT,
                      exit_code INTEGER,
                      signal INTEGER,
                      detail TEXT,
                      attempts INTEGER NOT NULL DEFAULT 0
                    );
                    -- `history JOB` and per-job pruning.
                    CREATE INDEX runs_by_job ON runs(job, started_at);
                    -- The runs in flight: a partial index rather than a table of its own, so it can
                    -- never disagree with `runs` (it holds only rows whose finished_at is NULL).
                    CREATE INDEX runs_in_flight ON runs(started_at) WHERE finished_at IS NULL;
                    CREATE TABLE attempts (
                      run INTEGER NOT NULL,
                      attempt INTEGER NOT NULL,
                      pid INTEGER,
                      started_at INTEGER,
                      finished_at INTEGER,
                      outcome TEXT,
                      exit_code INTEGER,
                      signal INTEGER,
                      detail TEXT,
                      duration_ms INTEGER,
                      PRIMARY KEY (run, attempt)
                    ) WITHOUT ROWID;
                    -- The planned-fire ledger (`why JOB`): one row per planned fire, keyed for the
                    -- per-job time-range query and pruning.
                    CREATE TABLE ledger (
                      job INTEGER NOT NULL,
                      scheduled_for INTEGER NOT NULL,
                      disposition TEXT NOT NULL,
                      reason TEXT,
                      run_id TEXT,
                      at INTEGER NOT NULL,
                      PRIMARY KEY (job, scheduled_for)
                    ) WITHOUT ROWID;
                    """)
        }
        m.register("v2") { db in
            // A one-row table the background checkpoint writes to right after it completes, so
            // that the WAL restart (and SQLite's sync of the WAL header that comes with it)
            // happens there and not in the commit that precedes the next launch.
            try db.execute(script: "CREATE TABLE wal_touch (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL)")
        }
        m.register("v3") { db in
            // The process of each run's current attempt, beyond its pid (ProcessIdentity), so
            // that a restarted agent can adopt or kill what outlived a crash and never touches a
            // stranger that got the same pid. Rows live only while the attempt does (deleted
            // when it or its run finishes), so the table stays as small as the runs in flight.
            // `cgroup` is filled when the runner gives runs a cgroup of their own.
            try db.execute(
                script: """
                    CREATE TABLE processes (
                      run INTEGER PRIMARY KEY,
                      attempt INTEGER NOT NULL,
                      pid INTEGER NOT NULL,
                      start_ticks INTEGER NOT NULL,
                      pgid INTEGER NOT NULL,
                      boot_id TEXT NOT NULL,
                      cgroup TEXT
                    )
                    """)
        }
        m.register("v4") { db in
            // The boot in which an agent last started, so that `@reboot` jobs run once per boot
            // (a restart by a package upgrade or Restart=on-failure does not run them again).
            try db.execute(script: "CREATE TABLE boot (id INTEGER PRIMARY KEY CHECK (id = 1), boot_id TEXT NOT NULL)")
        }
        m.register("v5") { db in
            // The tail of each attempt's output (`sundial logs`), bounded per job at write time
            // and in total by `prune` (StateRetention).
            try db.execute(
                script: """
                    CREATE TABLE outputs (
                      run INTEGER NOT NULL,
                      attempt INTEGER NOT NULL,
                      text TEXT NOT NULL,
                      dropped INTEGER NOT NULL,
                      PRIMARY KEY (run, attempt)
                    ) WITHOUT ROWID
                    """)
        }
        m.register("v6") { db in
            // Jobs paused by `sundial pause`: a pause outlives a restart (and a crash).
            try db.execute(script: "CREATE TABLE paused (name TEXT PRIMARY KEY) WITHOUT ROWID")
        }
        m.register("v7") { db in
            // Notification deliveries not yet ended (issue 17), so that they survive a restart:
            // a row from the queueing of a delivery until it is sent or fails for good. Bounded
            // by the enqueue (StoredNotification.capacity rows); `payload` is the request's JSON.
            try db.execute(
                script: """
                    CREATE TABLE notifications (
                      id INTEGER PRIMARY KEY,
                      payload TEXT NOT NULL,
                      enqueued_at INTEGER NOT NULL,
                      attempts INTEGER NOT NULL DEFAULT 0
                    )
                    """)
        }
        m.register("v8") { db in
            // The fleet outbox (issue 19): each ended run's record, written in the run's own
            // commit when the agent runs with --fleet, until the publisher has sent it to the
            // fleet's PostgreSQL (SQLiteStateStore+Outbox.swift). Self-contained (no reference to
            // `runs`), so that retention pruning a run cannot lose its record during an outage.
            // Bounded by Options.fleetOutboxCapacity; rows dropped beyond it are counted.
            try db.execute(
                script: """
                    CREATE TABLE fleet_outbox (
                      id INTEGER PRIMARY KEY,
                      run_id TEXT NOT NULL,
                      job TEXT NOT NULL,
                      attempt INTEGER NOT NULL,
                      scheduled_for INTEGER,
                      started_at INTEGER NOT NULL,
                      finished_at INTEGER NOT NULL,
                      outcome TEXT NOT NULL,
                      exit_code INTEGER,
                      output_tail TEXT
                    );
                    CREATE TABLE fleet_outbox_dropped (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
                    """)
        }
        m.register("v9") { db in
            // When the retention was last applied, so that a restart does not apply it again
            // within its interval: finding the jobs past it reads the whole of `runs_by_job`
            // and the ledger's key (30 ms for 300,000 runs; ten times that at the bounds of a
            // 10,000-job box), at every start of the agent.
            try db.execute(script: "ALTER TABLE agent ADD COLUMN last_pruned INTEGER")
        }
        m.register("v10") { db in
            // Fires that were due but had not started when the agent stopped cleanly (a
            // `catchup: all` backlog, a fire queued behind a running one): the next start runs
            // them as the job's `catchup` allows, and deletes the job's rows in the commit before
            // the first of them launches. Written only at a stop, so no fire pays for it; bounded
            // by the jobs' backlogs (at most `maxCatchupRuns` + 1 per job).
            try db.execute(
                script: "CREATE TABLE owed (job INTEGER NOT NULL, scheduled_for INTEGER NOT NULL, PRIMARY KEY (job, scheduled_for)) WITHOUT ROWID"
            )
        }
        return m
    }
}
