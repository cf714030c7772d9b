/// Applies the state database's versioned schema changes, each once, in order.
///
/// The record of applied migrations is the table `grdb_migrations(identifier)`, the one GRDB's
/// `DatabaseMigrator` kept when the store was built on GRDB: databases written by earlier
/// releases carry it, so keeping its name and shape is what makes an upgrade a no-op.
struct SQLiteMigrator {
    private var migrations: [(identifier: String, apply: (SQLiteConnection) throws -> Void)] = []

    mutating func register(_ identifier: String, _ apply: @escaping (SQLiteConnection) throws -> Void) {
        migrations.append((identifier, apply))
    }

    private static let createLog = "CREATE TABLE IF NOT EXISTS grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY)"

    /// The identifiers recorded in `db`, or none on a fresh database.
    func applied(in db: SQLiteConnection) throws -> Set<String> {
        let exists = try db.value("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'grdb_migrations'")
        guard exists == .integer(1) else { return [] }
        return Set(try db.rows("SELECT identifier FROM grdb_migrations").map { try $0.text(0) })
    }

    /// True when `db` was migrated by a newer release (it records a migration this one lacks).
    func hasBeenSuperseded(_ db: SQLiteConnection) throws -> Bool {
        let known = Set(migrations.map(\.identifier))
        return try !applied(in: db).isSubset(of: known)
    }

    /// Applies every migration not yet recorded, each in its own transaction with its record.
    func migrate(_ db: SQLiteConnection) throws {
        try db.execute(script: Self.createLog)
        let done = try applied(in: db)
        for m in migrations where !done.contains(m.identifier) {
            try db.transaction {
                try m.apply(db)
                try db.execute("INSERT INTO grdb_migrations(identifier) VALUES (?)", m.identifier)
            }
        }
    }
}
