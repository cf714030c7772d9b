/// The fleet's tables and functions in PostgreSQL, created and migrated by the agent
/// (docs/fleet-database.md describes them).
///
/// Why migrations run in the agent: a fleet has no installer with database rights; the first box
/// to start creates the schema. Five boxes starting together must not race: each migration runs
/// in its own transaction that first takes a transaction-level advisory lock, then (re)checks the
/// `sundial_schema` table; the others wait on the lock and then find the version applied.
/// Never edit a registered migration: add one.
public enum FleetDatabaseSchema {
    /// The advisory lock key that serialises migrations across the fleet (any fixed number).
    static let migrationLock = "7412059911"

    /// Migrations in order; version = index + 1. Each is a list of single statements (libpq's
    /// extended protocol runs one statement per call).
    static let migrations: [[String]] = [
        [
            // Milliseconds since the epoch <-> timestamptz, exactly (Instant is milliseconds).
            """
            CREATE FUNCTION sundial_ms(t timestamptz) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT
            AS $$ SELECT (extract(epoch FROM t) * 1000)::bigint $$
            """,
            """
            CREATE FUNCTION sundial_ts(ms bigint) RETURNS timestamptz LANGUAGE sql IMMUTABLE STRICT
            AS $$ SELECT timestamptz 'epoch' + ms * interval '1 millisecond' $$
            """,
            // Fencing tokens: one sequence for the whole fleet, so tokens only ever increase.
            "CREATE SEQUENCE sundial_tokens",
            """
            CREATE TABLE sundial_claims (
              job text NOT NULL,
              scheduled_for timestamptz NOT NULL,
              box text NOT NULL,
              token bigint NOT NULL,
              state text NOT NULL CHECK (state IN ('running', 'finished', 'lost')),
              lease_expires timestamptz NOT NULL,
              started_at timestamptz NOT NULL,
              finished_at timestamptz,
              outcome text,
              PRIMARY KEY (job, scheduled_for)
            )
            """,
            // expiredLeases and the forbid check read only the running claims.
            "CREATE INDEX sundial_claims_running ON sundial_claims (job, lease_expires) WHERE state = 'running'",
            // Retention deletes ended claims by age.
            "CREATE INDEX sundial_claims_ended ON sundial_claims (finished_at) WHERE state <> 'running'",
            """
            CREATE TABLE sundial_boxes (
              box text PRIMARY KEY,
              last_contact timestamptz NOT NULL,
              version text NOT NULL
            )
            """,
            """
            CREATE TABLE sundial_runs (
              run_id text PRIMARY KEY,
              job text NOT NULL,
              box text NOT NULL,
              attempt integer NOT NULL,
              scheduled_for timestamptz,
              started_at timestamptz NOT NULL,
              finished_at timestamptz NOT NULL,
              outcome text NOT NULL,
              exit_code integer,
              token bigint,
              output_tail text,
              published_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            "CREATE INDEX sundial_runs_by_job ON sundial_runs (job, finished_at DESC)",
            "CREATE INDEX sundial_runs_by_box ON sundial_runs (box, job, finished_at DESC)",
            // claim: one round trip. The advisory lock on the job is taken only for
            // `concurrency: forbid`, which must see every running claim of the job; the unique key
            // alone makes an instant's claim exclusive. Each statement of a VOLATILE plpgsql
            // function takes a fresh snapshot, so the SELECT after a conflicting insert sees the
            // winner (ON CONFLICT waited for it to commit).
            """
            CREATE FUNCTION sundial_claim(p_job text, p_at bigint, p_box text, p_lease_ms bigint, p_forbid boolean)
            RETURNS TABLE (r_won boolean, r_box text, r_token bigint, r_state text, r_lease bigint, r_busy_at bigint)
            LANGUAGE plpgsql VOLATILE AS $$
            DECLARE
              v_at timestamptz := sundial_ts(p_at);
              v_box text;
              v_at2 timestamptz;
            BEGIN
              IF p_forbid THEN
                PERFORM pg_advisory_xact_lock(hashtextextended('sundial_job:' || p_job, 0));
                SELECT c.box, c.scheduled_for INTO v_box, v_at2 FROM sundial_claims c
                  WHERE c.job = p_job AND c.state = 'running' AND c.lease_expires > clock_timestamp() AND c.scheduled_for <> v_at
                  ORDER BY c.scheduled_for LIMIT 1;
                IF FOUND THEN
                  RETURN QUERY SELECT false, v_box, NULL::bigint, 'busy'::text, NULL::bigint, sundial_ms(v_at2);
                  RETURN;
                END IF;
              END IF;
              RETURN QUERY
                WITH ins AS (
                  INSERT INTO sundial_claims AS c (job, scheduled_for, box, token, state, lease_expires, started_at)
                  VALUES (p_job, v_at, p_box, nextval('sundial_tokens'), 'running',
                          clock_timestamp() + p_lease_ms * interval '1 millisecond', clock_timestamp())
                  ON CONFLICT (job, scheduled_for) DO NOTHING
                  RETURNING c.box, c.token, c.state, c.lease_expires)
                SELECT true, ins.box, ins.token, ins.state, sundial_ms(ins.lease_expires), NULL::bigint FROM ins;
              IF FOUND THEN RETURN; END IF;
              RETURN QUERY SELECT false, c.box, c.token, c.state, sundial_ms(c.lease_expires), NULL::bigint
                FROM sundial_claims c WHERE c.job = p_job AND c.scheduled_for = v_at;
            END $$
            """,
            // renew: extends the lease if the token still holds it; otherwise says who does.
            """
            CREATE FUNCTION sundial_renew(p_job text, p_at bigint, p_token bigint, p_lease_ms bigint)
            RETURNS TABLE (r_ok boolean, r_box text, r_token bigint, r_lease bigint)
            LANGUAGE plpgsql VOLATILE AS $$
            BEGIN
              RETURN QUERY
                WITH u AS (
                  UPDATE sundial_claims c SET lease_expires = clock_timestamp() + p_lease_ms * interval '1 millisecond'
                  WHERE c.job = p_job AND c.scheduled_for = sundial_ts(p_at) AND c.token = p_token AND c.state = 'running'
                  RETURNING c.box, c.token, c.lease_expires)
                SELECT true, u.box, u.token, sundial_ms(u.lease_expires) FROM u;
              IF FOUND THEN RETURN; END IF;
              RETURN QUERY SELECT false, c.box, c.token, NULL::bigint
                FROM sundial_claims c WHERE c.job = p_job AND c.scheduled_for = sundial_ts(p_at);
            END $$
            """,
            // resolve_lost: acts on an expired lease once. The UPDATE's WHERE is rechecked on the
            // locked row, so of two boxes acting together exactly one changes it; the other then
            // reads what the first did.
            """
            CREATE FUNCTION sundial_resolve_lost(p_job text, p_at bigint, p_token bigint, p_rerun boolean, p_box text, p_lease_ms bigint)
            RETURNS TABLE (r_won boolean, r_box text, r_token bigint, r_state text, r_lease bigint)
            LANGUAGE plpgsql VOLATILE AS $$
            BEGIN
              RETURN QUERY
                WITH u AS (
                  UPDATE sundial_claims c SET
                    box = CASE WHEN p_rerun THEN p_box ELSE c.box END,
                    token = CASE WHEN p_rerun THEN nextval('sundial_tokens') ELSE c.token END,
                    state = CASE WHEN p_rerun THEN 'running' ELSE 'lost' END,
                    lease_expires = CASE WHEN p_rerun THEN clock_timestamp() + p_lease_ms * interval '1 millisecond' ELSE clock_timestamp() END,
                    started_at = CASE WHEN p_rerun THEN clock_timestamp() ELSE c.started_at END,
                    finished_at = CASE WHEN p_rerun THEN NULL ELSE clock_timestamp() END,
                    outcome = CASE WHEN p_rerun THEN NULL ELSE 'lost' END
                  WHERE c.job = p_job AND c.scheduled_for = sundial_ts(p_at) AND c.token = p_token
                    AND c.state = 'running' AND c.lease_expires <= clock_timestamp()
                  RETURNING c.box, c.token, c.state, c.lease_expires)
                SELECT true, u.box, u.token, u.state, sundial_ms(u.lease_expires) FROM u;
              IF FOUND THEN RETURN; END IF;
              RETURN QUERY SELECT false, c.box, c.token, c.state, sundial_ms(c.lease_expires)
                FROM sundial_claims c WHERE c.job = p_job AND c.scheduled_for = sundial_ts(p_at);
            END $$
            """,
        ]
    ]

    /// The newest version this build knows.
    public static var latestVersion: Int { migrations.count }

    /// Brings the database's schema to ``latestVersion``; safe to call from many boxes at once.
    /// Throws when the database was migrated by a newer Sundial (its version is higher).
    public static func migrate(_ db: PostgresConnection) throws(PostgresError) {
        for (index, statements) in migrations.enumerated() {
            let version = index + 1
            try db.transaction { () throws(PostgresError) in
                try db.query("SELECT pg_advisory_xact_lock(\(migrationLock))")
                try db.query("CREATE TABLE IF NOT EXISTS sundial_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
                let current = try currentVersion(db)
                if current >= version { return }
                for sql in statements { try db.query(sql) }
                try db.query("INSERT INTO sundial_schema (version) VALUES ($1)", [String(version)])
            }
        }
        let current = try currentVersion(db)
        if current > latestVersion {
            throw PostgresError(
                message: "the fleet database's schema is version \(current), newer than this sundial's \(latestVersion): upgrade sundial on this box",
                sqlState: nil, connectionLost: false)
        }
    }

    static func currentVersion(_ db: PostgresConnection) throws(PostgresError) -> Int {
        let exists = try db.query("SELECT to_regclass('sundial_schema') IS NOT NULL")
        guard exists.first?.first == "t" else { return 0 }
        let rows = try db.query("SELECT coalesce(max(version), 0) FROM sundial_schema")
        return Int(rows.first?.first.flatMap { $0 } ?? "0") ?? 0
    }
}
