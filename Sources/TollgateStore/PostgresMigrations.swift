import Foundation
import PostgresNIO
import TollgateCore

/// The PostgreSQL schema, as numbered migrations recorded in `schema_migrations`. A migration, once
/// released, never changes: a change to the schema is a new migration at the end.
///
/// Conventions: times are BIGINT milliseconds since 1970 (UTC), money BIGINT nano-dollars, tokens BIGINT,
/// as in the SQLite store. Identifiers and the text that listings sort by use the "C" collation, so that
/// orders are byte orders whatever the database's locale (SQLite's, too).
struct PostgresMigration: Sendable {
    var version: Int
    var name: String
    var statements: [String]

    static let all: [PostgresMigration] = [
        PostgresMigration(version: 1, name: "identity, keys, ledger, budgets", statements: [
            """
            CREATE TABLE orgs (
                id TEXT COLLATE "C" PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                created_at BIGINT NOT NULL,
                seq BIGINT GENERATED ALWAYS AS IDENTITY
            )
            """,
            """
            CREATE TABLE teams (
                id TEXT COLLATE "C" PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                org_id TEXT COLLATE "C" NOT NULL REFERENCES orgs(id),
                created_at BIGINT NOT NULL,
                seq BIGINT GENERATED ALWAYS AS IDENTITY
            )
            """,
            """
            CREATE TABLE users (
                id TEXT COLLATE "C" PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                team_id TEXT COLLATE "C" REFERENCES teams(id),
                org_id TEXT COLLATE "C" NOT NULL REFERENCES orgs(id),
                created_at BIGINT NOT NULL,
                seq BIGINT GENERATED ALWAYS AS IDENTITY
            )
            """,
            """
            CREATE TABLE keys (
                id TEXT COLLATE "C" PRIMARY KEY,
                name TEXT UNIQUE,
                hash_hex TEXT NOT NULL UNIQUE,
                prefix TEXT NOT NULL,
                user_id TEXT COLLATE "C" REFERENCES users(id),
                team_id TEXT COLLATE "C" REFERENCES teams(id),
                org_id TEXT COLLATE "C" NOT NULL REFERENCES orgs(id),
                allowed_models TEXT,
                expires_at BIGINT,
                revoked_at BIGINT,
                rpm BIGINT,
                tpm BIGINT,
                created_at BIGINT NOT NULL,
                seq BIGINT GENERATED ALWAYS AS IDENTITY
            )
            """,
            "CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
            """
            CREATE TABLE requests (
                id TEXT COLLATE "C" PRIMARY KEY,
                created_at BIGINT NOT NULL,
                endpoint TEXT NOT NULL,
                key_id TEXT COLLATE "C",
                user_id TEXT COLLATE "C",
                user_name TEXT COLLATE "C",
                team_id TEXT COLLATE "C",
                team_name TEXT COLLATE "C",
                org_id TEXT COLLATE "C",
                requested_model TEXT,
                model TEXT COLLATE "C",
                provider TEXT,
                input_tokens BIGINT NOT NULL,
                cached_input_tokens BIGINT NOT NULL,
                cache_write_tokens BIGINT NOT NULL,
                output_tokens BIGINT NOT NULL,
                reasoning_tokens BIGINT NOT NULL,
                usage_estimated BOOLEAN NOT NULL,
                cost_nanos BIGINT NOT NULL,
                baseline_cost_nanos BIGINT,
                status INTEGER NOT NULL,
                latency_ms BIGINT NOT NULL,
                ttft_ms BIGINT,
                stream BOOLEAN NOT NULL,
                tags JSONB,
                agentic BOOLEAN NOT NULL,
                route TEXT,
                route_reason TEXT,
                error TEXT
            )
            """,
            "CREATE INDEX requests_by_time ON requests (created_at, id)",
            "CREATE INDEX requests_by_user_time ON requests (user_id, created_at)",
            "CREATE INDEX requests_by_team_time ON requests (team_id, created_at)",
            "CREATE INDEX requests_by_key_time ON requests (key_id, created_at)",
            "CREATE INDEX requests_by_org_time ON requests (org_id, created_at)",
            """
            CREATE TABLE budgets (
                id TEXT COLLATE "C" PRIMARY KEY,
                scope TEXT COLLATE "C" NOT NULL,
                subject_id TEXT COLLATE "C" NOT NULL,
                subject_name TEXT COLLATE "C" NOT NULL,
                model TEXT COLLATE "C" NOT NULL DEFAULT '',
                limit_usd_nanos BIGINT,
                limit_tokens BIGINT,
                period TEXT COLLATE "C" NOT NULL,
                time_zone TEXT NOT NULL,
                mode TEXT NOT NULL,
                on_exhaust TEXT NOT NULL,
                soft_threshold_ppm BIGINT,
                grace_usd_nanos BIGINT NOT NULL DEFAULT 0,
                annual_salary_usd_nanos BIGINT,
                salary_share_ppm BIGINT,
                soft_crossed_at BIGINT,
                soft_window_start BIGINT,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                UNIQUE (scope, subject_id, model, period)
            )
            """,
            """
            CREATE TABLE budget_usage (
                budget_id TEXT COLLATE "C" NOT NULL,
                window_start BIGINT NOT NULL,
                spent BIGINT NOT NULL DEFAULT 0,
                leased BIGINT NOT NULL DEFAULT 0,
                PRIMARY KEY (budget_id, window_start)
            )
            """,
            """
            CREATE TABLE budget_leases (
                budget_id TEXT COLLATE "C" NOT NULL,
                window_start BIGINT NOT NULL,
                instance TEXT COLLATE "C" NOT NULL,
                amount BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                PRIMARY KEY (budget_id, window_start, instance)
            )
            """,
            "CREATE INDEX budget_leases_by_instance ON budget_leases (instance)",
            "CREATE INDEX budget_leases_by_expiry ON budget_leases (expires_at)",
            """
            CREATE TABLE changes (
                id BIGSERIAL PRIMARY KEY,
                kind TEXT NOT NULL,
                subject TEXT NOT NULL,
                at BIGINT NOT NULL
            )
            """,
        ], seed: { session in
            try session.execute("""
                INSERT INTO orgs (id, name, created_at)
                VALUES (\(EntityID.make("org")), \(SQLiteStore.defaultOrgName), \(Date().epochMilliseconds))
                """)
        }),
        PostgresMigration(version: 2, name: "one-hour cache writes", statements: [
            "ALTER TABLE requests ADD COLUMN cache_write_1h_tokens BIGINT NOT NULL DEFAULT 0",
        ]),
        PostgresMigration(version: 3, name: "forecast crossings", statements: [
            "ALTER TABLE budgets ADD COLUMN forecast_crossed_at BIGINT",
            "ALTER TABLE budgets ADD COLUMN forecast_window_start BIGINT",
        ]),
        PostgresMigration(version: 4, name: "per-day spend rollups", statements: PostgresStore.rollupStatements),
        PostgresMigration(version: 5, name: "viewer keys", statements: [
            "ALTER TABLE keys ADD COLUMN role TEXT NOT NULL DEFAULT 'client'",
        ]),
        PostgresMigration(version: 6, name: "usage facts", statements: [
            "ALTER TABLE requests ADD COLUMN client TEXT NOT NULL DEFAULT 'other'",
            "ALTER TABLE requests ADD COLUMN session_id TEXT",
            "ALTER TABLE requests ADD COLUMN session_fingerprint BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE requests ADD COLUMN tools_offered INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE requests ADD COLUMN tool_results BOOLEAN NOT NULL DEFAULT FALSE",
            "ALTER TABLE requests ADD COLUMN messages INTEGER NOT NULL DEFAULT 0",
        ]),
    ]

    /// Rows the migration writes after its statements.
    var seed: (@Sendable (PostgresSession) throws -> Void)?

    init(version: Int, name: String, statements: [String], seed: (@Sendable (PostgresSession) throws -> Void)? = nil) {
        self.version = version; self.name = name; self.statements = statements; self.seed = seed
    }

    /// `pg_advisory_xact_lock` keys: ("toll", n). Held to the end of the transaction that takes them.
    static let lockSpace: Int32 = 0x746f_6c6c
    static let migrationLock: Int32 = 1
    static let changeFeedLock: Int32 = 2

    /// Applies what is missing, each migration in its own transaction under an advisory lock, so that
    /// instances starting together apply each migration once and none starts on a half-made schema.
    /// Returns the names of the migrations applied now.
    static func apply(_ pool: PostgresConnectionPool) throws -> [String] {
        var applied: [String] = []
        for migration in all {
            let ran = try pool.transaction { session in
                try session.execute("SELECT pg_advisory_xact_lock(\(lockSpace), \(migrationLock))")
                try session.execute("""
                    CREATE TABLE IF NOT EXISTS schema_migrations (
                        version INTEGER PRIMARY KEY,
                        name TEXT NOT NULL,
                        applied_at BIGINT NOT NULL
                    )
                    """)
                guard try session.query("SELECT 1 FROM schema_migrations WHERE version = \(migration.version)").isEmpty else {
                    return false
                }
                for statement in migration.statements {
                    try session.execute(PostgresQuery(unsafeSQL: statement))
                }
                try migration.seed?(session)
                try session.execute("""
                    INSERT INTO schema_migrations (version, name, applied_at)
                    VALUES (\(migration.version), \(migration.name), \(Date().epochMilliseconds))
                    """)
                return true
            }
            if ran { applied.append("\(migration.version) \(migration.name)") }
        }
        return applied
    }
}
