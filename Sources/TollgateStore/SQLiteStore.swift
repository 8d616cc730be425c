import Foundation
import GRDB
import GRDBSQLite
import TollgateCore

/// The embedded store: one SQLite file in WAL mode. Times are stored as INTEGER milliseconds since 1970
/// (UTC), money as INTEGER nano-dollars.
public final class SQLiteStore: Store {
    let database: any DatabaseWriter

    /// Opens (creating if needed) and, unless told not to, migrates the database at `path`; `":memory:"`
    /// gives a private in-memory database.
    public init(path: String, migrate: Bool = true) throws {
        var configuration = Configuration()
        configuration.label = "tollgate"
        // Other processes (a `sqlite3` shell, a backup) may hold the lock for a moment.
        configuration.busyMode = .timeout(5)
        // WAL with synchronous=NORMAL: a committed batch survives a crash of the process (kill -9); only
        // a power loss can take the last commits, and never corrupts the file.
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        if path == ":memory:" {
            database = try DatabaseQueue(configuration: configuration)
        } else {
            database = try DatabasePool(path: path, configuration: configuration)
        }
        if migrate { try self.migrate() }
    }

    public static func inMemory() throws -> SQLiteStore {
        try SQLiteStore(path: ":memory:")
    }

    @discardableResult
    public func migrate() throws -> [String] {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE orgs (
                    id TEXT PRIMARY KEY NOT NULL,
                    name TEXT NOT NULL UNIQUE,
                    created_at INTEGER NOT NULL
                );
                CREATE TABLE teams (
                    id TEXT PRIMARY KEY NOT NULL,
                    name TEXT NOT NULL UNIQUE,
                    org_id TEXT NOT NULL REFERENCES orgs(id),
                    created_at INTEGER NOT NULL
                );
                CREATE TABLE users (
                    id TEXT PRIMARY KEY NOT NULL,
                    name TEXT NOT NULL UNIQUE,
                    team_id TEXT REFERENCES teams(id),
                    org_id TEXT NOT NULL REFERENCES orgs(id),
                    created_at INTEGER NOT NULL
                );
                CREATE TABLE keys (
                    id TEXT PRIMARY KEY NOT NULL,
                    name TEXT UNIQUE,
                    hash_hex TEXT NOT NULL UNIQUE,
                    prefix TEXT NOT NULL,
                    user_id TEXT REFERENCES users(id),
                    team_id TEXT REFERENCES teams(id),
                    org_id TEXT NOT NULL REFERENCES orgs(id),
                    allowed_models TEXT,
                    expires_at INTEGER,
                    revoked_at INTEGER,
                    rpm INTEGER,
                    tpm INTEGER,
                    created_at INTEGER NOT NULL
                );
                CREATE TABLE requests (
                    id TEXT PRIMARY KEY NOT NULL,
                    created_at INTEGER NOT NULL,
                    endpoint TEXT NOT NULL,
                    key_id TEXT,
                    user_id TEXT,
                    user_name TEXT,
                    team_id TEXT,
                    team_name TEXT,
                    org_id TEXT,
                    requested_model TEXT,
                    model TEXT,
                    provider TEXT,
                    input_tokens INTEGER NOT NULL,
                    cached_input_tokens INTEGER NOT NULL,
                    cache_write_tokens INTEGER NOT NULL,
                    output_tokens INTEGER NOT NULL,
                    reasoning_tokens INTEGER NOT NULL,
                    usage_estimated INTEGER NOT NULL,
                    cost_nanos INTEGER NOT NULL,
                    baseline_cost_nanos INTEGER,
                    status INTEGER NOT NULL,
                    latency_ms INTEGER NOT NULL,
                    ttft_ms INTEGER,
                    stream INTEGER NOT NULL,
                    tags TEXT,
                    agentic INTEGER NOT NULL,
                    route TEXT,
                    route_reason TEXT,
                    error TEXT
                );
                CREATE INDEX requests_by_time ON requests(created_at, id);
                """)
            try db.execute(
                sql: "INSERT INTO orgs (id, name, created_at) VALUES (?, ?, ?)",
                arguments: [EntityID.make("org"), Self.defaultOrgName, Date().epochMilliseconds])
        }
        migrator.registerMigration("v2-settings") { db in
            try db.execute(sql: "CREATE TABLE settings (name TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)")
        }
        migrator.registerMigration("v3-budgets") { db in
            try db.execute(sql: """
                CREATE TABLE budgets (
                    id TEXT PRIMARY KEY NOT NULL,
                    scope TEXT NOT NULL,
                    subject_id TEXT NOT NULL,
                    subject_name TEXT NOT NULL,
                    model TEXT NOT NULL DEFAULT '',
                    limit_usd_nanos INTEGER,
                    limit_tokens INTEGER,
                    period TEXT NOT NULL,
                    time_zone TEXT NOT NULL,
                    mode TEXT NOT NULL,
                    on_exhaust TEXT NOT NULL,
                    soft_threshold_ppm INTEGER,
                    grace_usd_nanos INTEGER NOT NULL DEFAULT 0,
                    annual_salary_usd_nanos INTEGER,
                    salary_share_ppm INTEGER,
                    soft_crossed_at INTEGER,
                    soft_window_start INTEGER,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    UNIQUE (scope, subject_id, model, period)
                );
                CREATE INDEX requests_by_user_time ON requests(user_id, created_at);
                CREATE INDEX requests_by_team_time ON requests(team_id, created_at);
                CREATE INDEX requests_by_key_time ON requests(key_id, created_at);
                """)
        }
        migrator.registerMigration("v4-fleet") { db in
            try db.execute(sql: """
                CREATE TABLE budget_usage (
                    budget_id TEXT NOT NULL,
                    window_start INTEGER NOT NULL,
                    spent INTEGER NOT NULL DEFAULT 0,
                    leased INTEGER NOT NULL DEFAULT 0,
                    PRIMARY KEY (budget_id, window_start)
                );
                CREATE TABLE budget_leases (
                    budget_id TEXT NOT NULL,
                    window_start INTEGER NOT NULL,
                    instance TEXT NOT NULL,
                    amount INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    PRIMARY KEY (budget_id, window_start, instance)
                );
                CREATE INDEX budget_leases_by_instance ON budget_leases(instance);
                CREATE INDEX budget_leases_by_expiry ON budget_leases(expires_at);
                CREATE TABLE changes (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    kind TEXT NOT NULL,
                    subject TEXT NOT NULL,
                    at INTEGER NOT NULL
                );
                """)
        }
        migrator.registerMigration("v5-cache-write-1h") { db in
            try db.execute(sql: "ALTER TABLE requests ADD COLUMN cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0")
        }
        migrator.registerMigration("v6-forecast-crossing") { db in
            try db.execute(sql: """
                ALTER TABLE budgets ADD COLUMN forecast_crossed_at INTEGER;
                ALTER TABLE budgets ADD COLUMN forecast_window_start INTEGER;
                """)
        }
        migrator.registerMigration("v7-spend-rollups") { db in
            try db.execute(sql: Self.rollupSchema)
            for statement in Self.rollupBackfill { try db.execute(sql: statement) }
        }
        migrator.registerMigration("v8-viewer-keys") { db in
            try db.execute(sql: "ALTER TABLE keys ADD COLUMN role TEXT NOT NULL DEFAULT 'client'")
        }
        migrator.registerMigration("v9-usage-facts") { db in
            // Rows written before it: client `other`, no session named (inferred from the key alone), no tools
            // counted, no tool loop seen: they count as assisted unless an agent client's later rows join them.
            try db.execute(sql: """
                ALTER TABLE requests ADD COLUMN client TEXT NOT NULL DEFAULT 'other';
                ALTER TABLE requests ADD COLUMN session_id TEXT;
                ALTER TABLE requests ADD COLUMN session_fingerprint INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE requests ADD COLUMN tools_offered INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE requests ADD COLUMN tool_results INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE requests ADD COLUMN messages INTEGER NOT NULL DEFAULT 0;
                """)
        }
        let before = try database.read { db in try migrator.appliedIdentifiers(db) }
        try migrator.migrate(database)
        return migrator.migrations.filter { !before.contains($0) }
    }

    public func ping() throws {
        _ = try database.read { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }

    static let defaultOrgName = "default"

    // MARK: Identity

    public func setting(_ name: String) throws -> String? {
        try database.read { db in try String.fetchOne(db, sql: "SELECT value FROM settings WHERE name = ?", arguments: [name]) }
    }

    public func setSetting(_ name: String, _ value: String) throws {
        try database.write { db in
            try db.execute(sql: "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                           arguments: [name, value])
        }
    }

    public func defaultOrg() throws -> OrgRecord {
        try database.read { db in try Self.defaultOrg(db) }
    }

    public func createOrg(name: String) throws -> OrgRecord {
        try database.write { db in
            try Self.requireUnique(db, table: "orgs", entity: "org", name: name)
            let org = OrgRecord(id: EntityID.make("org"), name: name, createdAt: .nowInMilliseconds)
            try db.execute(sql: "INSERT INTO orgs (id, name, created_at) VALUES (?, ?, ?)",
                           arguments: [org.id, org.name, org.createdAt.epochMilliseconds])
            return org
        }
    }

    public func listOrgs() throws -> [OrgRecord] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM orgs ORDER BY created_at, rowid").map(OrgRecord.init(row:))
        }
    }

    public func createTeam(name: String, org: String?) throws -> TeamRecord {
        try database.write { db in
            try Self.requireUnique(db, table: "teams", entity: "team", name: name)
            let orgID: String
            if let org {
                guard let row = try Self.lookUp(db, table: "orgs", reference: org) else {
                    throw StoreError.notFound(entity: "org", reference: org)
                }
                orgID = OrgRecord(row: row).id
            } else {
                orgID = try Self.defaultOrg(db).id
            }
            let team = TeamRecord(id: EntityID.make("team"), name: name, orgID: orgID, createdAt: .nowInMilliseconds)
            try db.execute(sql: "INSERT INTO teams (id, name, org_id, created_at) VALUES (?, ?, ?, ?)",
                           arguments: [team.id, team.name, team.orgID, team.createdAt.epochMilliseconds])
            return team
        }
    }

    public func listTeams() throws -> [TeamRecord] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM teams ORDER BY created_at, rowid").map(TeamRecord.init(row:))
        }
    }

    public func team(_ reference: String) throws -> TeamRecord? {
        try database.read { db in try Self.lookUp(db, table: "teams", reference: reference).map(TeamRecord.init(row:)) }
    }

    public func createUser(name: String, team: String?) throws -> UserRecord {
        try database.write { db in
            try Self.requireUnique(db, table: "users", entity: "user", name: name)
            let teamID: String?
            let orgID: String
            if let team {
                guard let row = try Self.lookUp(db, table: "teams", reference: team) else {
                    throw StoreError.notFound(entity: "team", reference: team)
                }
                let record = TeamRecord(row: row)
                teamID = record.id
                orgID = record.orgID
            } else {
                teamID = nil
                orgID = try Self.defaultOrg(db).id
            }
            let user = UserRecord(id: EntityID.make("user"), name: name, teamID: teamID, orgID: orgID,
                                  createdAt: .nowInMilliseconds)
            try db.execute(sql: "INSERT INTO users (id, name, team_id, org_id, created_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [user.id, user.name, user.teamID, user.orgID, user.createdAt.epochMilliseconds])
            return user
        }
    }

    public func listUsers() throws -> [UserRecord] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM users ORDER BY created_at, rowid").map(UserRecord.init(row:))
        }
    }

    public func user(_ reference: String) throws -> UserRecord? {
        try database.read { db in try Self.lookUp(db, table: "users", reference: reference).map(UserRecord.init(row:)) }
    }

    // MARK: Keys

    public func insertKey(_ key: KeyRecord) throws {
        try database.write { db in
            if let name = key.name {
                try Self.requireUnique(db, table: "keys", entity: "key", name: name)
            }
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM keys WHERE hash_hex = ? OR id = ?",
                                 arguments: [key.hashHex, key.id]) != nil {
                throw StoreError.duplicate(entity: "key", name: key.name ?? key.prefix)
            }
            do {
                try db.execute(sql: """
                    INSERT INTO keys (id, name, hash_hex, prefix, user_id, team_id, org_id, allowed_models,
                                      expires_at, revoked_at, rpm, tpm, created_at, role)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [
                        key.id, key.name, key.hashHex, key.prefix, key.userID, key.teamID, key.orgID,
                        key.allowedModels.map(JSONText.array), key.expiresAt?.epochMilliseconds,
                        key.revokedAt?.epochMilliseconds, key.rpm, key.tpm, key.createdAt.epochMilliseconds,
                        key.role.rawValue,
                    ])
            } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_FOREIGNKEY {
                throw StoreError.invalid("key \(key.id) names a user, team or org that does not exist")
            }
            try Self.recordChange(db, .key, key.id)
        }
    }

    public func listKeys() throws -> [KeyRecord] {
        var keys: [KeyRecord] = []
        try forEachKey { keys.append($0) }
        return keys
    }

    /// Row by row through a cursor: 100,000 keys never exist as 100,000 rows in memory at once.
    public func forEachKey(_ body: (KeyRecord) throws -> Void) throws {
        try database.read { db in
            let cursor = try Row.fetchCursor(db, sql: "SELECT * FROM keys ORDER BY created_at, rowid")
            while let row = try cursor.next() { try body(try KeyRecord(row: row)) }
        }
    }

    public func revokeKey(_ reference: String, at time: Date) throws -> KeyRecord {
        try database.write { db in
            guard let row = try Self.lookUp(db, table: "keys", reference: reference) else {
                throw StoreError.notFound(entity: "key", reference: reference)
            }
            let id: String = row["id"]
            try db.execute(sql: "UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                           arguments: [time.epochMilliseconds, id])
            try Self.recordChange(db, .key, id)
            let updated = try Row.fetchOne(db, sql: "SELECT * FROM keys WHERE id = ?", arguments: [id])!
            return try KeyRecord(row: updated)
        }
    }

    // MARK: Ledger

    /// A retried batch whose commit did in fact happen must not count twice: rows already present by id
    /// are skipped.
    private static let insertRequestSQL = """
        INSERT INTO requests (id, created_at, endpoint, key_id, user_id, user_name, team_id, team_name, org_id,
                              requested_model, model, provider, input_tokens, cached_input_tokens,
                              cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, usage_estimated,
                              cost_nanos, baseline_cost_nanos, status, latency_ms, ttft_ms, stream, tags, agentic, route,
                              route_reason, error, client, session_id, session_fingerprint, tools_offered, tool_results,
                              messages)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT(id) DO NOTHING
        """

    public func upsertBudget(_ budget: BudgetRecord) throws -> BudgetRecord {
        try database.write { db in
            let existing = try Row.fetchOne(db, sql: """
                SELECT id, created_at FROM budgets WHERE scope = ? AND subject_id = ? AND model = ? AND period = ?
                """, arguments: [budget.scope, budget.subjectID, budget.model ?? "", budget.period])
            var stored = budget
            if let existing {
                stored.id = existing["id"]
                stored.createdAt = Date(epochMilliseconds: existing["created_at"])
            }
            try db.execute(sql: """
                INSERT INTO budgets (id, scope, subject_id, subject_name, model, limit_usd_nanos, limit_tokens, period,
                                     time_zone, mode, on_exhaust, soft_threshold_ppm, grace_usd_nanos,
                                     annual_salary_usd_nanos, salary_share_ppm, soft_crossed_at, soft_window_start,
                                     created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET
                    subject_name = excluded.subject_name, limit_usd_nanos = excluded.limit_usd_nanos,
                    limit_tokens = excluded.limit_tokens, time_zone = excluded.time_zone, mode = excluded.mode,
                    on_exhaust = excluded.on_exhaust, soft_threshold_ppm = excluded.soft_threshold_ppm,
                    grace_usd_nanos = excluded.grace_usd_nanos, annual_salary_usd_nanos = excluded.annual_salary_usd_nanos,
                    salary_share_ppm = excluded.salary_share_ppm, updated_at = excluded.updated_at
                """, arguments: [
                    stored.id, stored.scope, stored.subjectID, stored.subjectName, stored.model ?? "",
                    stored.limitUSD?.value, stored.limitTokens, stored.period, stored.timeZone, stored.mode,
                    stored.onExhaust, stored.softThresholdPPM, stored.graceUSD.value, stored.annualSalaryUSD?.value,
                    stored.salarySharePPM, stored.softThresholdCrossedAt?.epochMilliseconds,
                    stored.softThresholdWindowStart?.epochMilliseconds, stored.createdAt.epochMilliseconds,
                    stored.updatedAt.epochMilliseconds,
                ])
            try Self.recordChange(db, .budget, stored.id)
            return try Row.fetchOne(db, sql: "SELECT * FROM budgets WHERE id = ?", arguments: [stored.id]).map(BudgetRecord.init(row:))!
        }
    }

    public func listBudgets() throws -> [BudgetRecord] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM budgets ORDER BY scope, subject_name, model, period").map(BudgetRecord.init(row:))
        }
    }

    public func deleteBudget(_ id: String) throws {
        try database.write { db in
            try db.execute(sql: "DELETE FROM budgets WHERE id = ?", arguments: [id])
            guard db.changesCount > 0 else { throw StoreError.notFound(entity: "budget", reference: id) }
            try Self.recordChange(db, .budget, id)
        }
    }

    public func markSoftThresholdCrossed(budgetID: String, windowStart: Date, at time: Date) throws {
        try database.write { db in
            try db.execute(sql: "UPDATE budgets SET soft_crossed_at = ?, soft_window_start = ? WHERE id = ?",
                           arguments: [time.epochMilliseconds, windowStart.epochMilliseconds, budgetID])
        }
    }

    public func markForecastExceeded(budgetID: String, windowStart: Date, at time: Date) throws -> Bool {
        try database.write { db in
            try db.execute(sql: """
                UPDATE budgets SET forecast_crossed_at = ?, forecast_window_start = ?
                WHERE id = ? AND (forecast_window_start IS NULL OR forecast_window_start <> ?)
                """, arguments: [time.epochMilliseconds, windowStart.epochMilliseconds, budgetID, windowStart.epochMilliseconds])
            return db.changesCount > 0
        }
    }

    public func dailySpend(scope: BudgetScope, subjectID: String, model: String?, from: Date, to: Date,
                           timeZone: TimeZone) throws -> [DaySpend] {
        guard to > from else { return [] }
        let column = DailySpendQuery.column(scope)
        let plan = DailySpendQuery.plan(from: from, to: to, timeZone: timeZone)
        var reads: [(sql: String, arguments: StatementArguments)] = []
        for (low, high) in plan.raw {
            reads.append(("""
                SELECT created_at / \(DailySpendQuery.quarterHourMilliseconds) AS quarter, SUM(cost_nanos) AS usd,
                       SUM(input_tokens + cached_input_tokens + cache_write_tokens + output_tokens) AS tokens
                FROM requests WHERE \(column) = ? AND created_at >= ? AND created_at < ?
                """, [subjectID, low ?? from.epochMilliseconds, high ?? to.epochMilliseconds]))
        }
        // Whole UTC days come from the rollups: a month of an org's traffic is a few thousand rollup rows, not
        // the million rows of the ledger.
        if let (low, high) = plan.rollup {
            reads.append((DailySpendQuery.rollupSelect + " WHERE \(column) = ? AND day >= ? AND day < ?",
                          [subjectID, low ?? from.epochMilliseconds, high ?? to.epochMilliseconds]))
        }
        var quarters: [DailySpendQuery.Quarter] = []
        try database.read { db in
            for var read in reads {
                if let model {
                    read.sql += " AND model = ?"
                    read.arguments += [model]
                }
                read.sql += " GROUP BY quarter ORDER BY quarter"
                for row in try Row.fetchAll(db, sql: read.sql, arguments: read.arguments) {
                    quarters.append(DailySpendQuery.Quarter(index: row["quarter"], usd: row["usd"], tokens: row["tokens"]))
                }
            }
        }
        return DailySpendQuery.days(quarters.sorted { $0.index < $1.index }, from: from, to: to, timeZone: timeZone)
    }

    public func spendSince(_ since: Date, scope: String, subjectID: String, model: String?) throws -> LedgerSpend {
        let column: String
        switch scope {
        case "org": column = "org_id"
        case "team": column = "team_id"
        case "user": column = "user_id"
        case "key": column = "key_id"
        default: throw StoreError.invalid("unknown budget scope \(scope)")
        }
        var sql = """
            SELECT COALESCE(SUM(cost_nanos), 0) AS usd,
                   COALESCE(SUM(input_tokens + cached_input_tokens + cache_write_tokens + output_tokens), 0) AS tokens
            FROM requests WHERE \(column) = ? AND created_at >= ?
            """
        var arguments: StatementArguments = [subjectID, since.epochMilliseconds]
        if let model {
            sql += " AND model = ?"
            arguments += [model]
        }
        return try database.read { db in
            let row = try Row.fetchOne(db, sql: sql, arguments: arguments)!
            return LedgerSpend(usd: Nanodollars(row["usd"]), tokens: row["tokens"])
        }
    }

    public func appendLedger(_ rows: [LedgerRecord], settling settlements: [LeaseSettlement]) throws {
        guard !rows.isEmpty || !settlements.isEmpty else { return }
        try database.write { db in
            var alreadyStored: Set<String> = []
            var inserted: [LedgerRecord] = []
            inserted.reserveCapacity(rows.count)
            let statement = try db.cachedStatement(sql: Self.insertRequestSQL)
            // Bound through SQLite's C API: GRDB's boxed arguments cost more than the insert itself, and
            // this is the writer that keeps up with the whole request rate.
            let handle = statement.sqliteStatement
            for row in rows {
                sqlite3_reset(handle)
                var bind = Binder(handle: handle)
                bind.text(row.id); bind.int(row.createdAt.epochMilliseconds); bind.text(row.endpoint); bind.text(row.keyID)
                bind.text(row.userID); bind.text(row.userName); bind.text(row.teamID); bind.text(row.teamName)
                bind.text(row.orgID); bind.text(row.requestedModel); bind.text(row.model); bind.text(row.provider)
                bind.int(row.usage.inputTokens); bind.int(row.usage.cachedInputTokens); bind.int(row.usage.cacheWriteTokens)
                bind.int(row.usage.cacheWrite1hTokens); bind.int(row.usage.outputTokens); bind.int(row.usage.reasoningTokens); bind.bool(row.usageEstimated)
                bind.int(row.cost.value); bind.int(row.baselineCost?.value); bind.int(row.status); bind.int(row.latencyMs)
                bind.int(row.ttftMs); bind.bool(row.stream); bind.text(row.tags.isEmpty ? nil : JSONText.array(row.tags.map(\.withoutNUL)))
                bind.bool(row.agentic); bind.text(row.route); bind.text(row.routeReason); bind.text(row.error)
                bind.text(row.facts.client.rawValue); bind.text(row.facts.sessionID)
                bind.int(Int64(bitPattern: row.facts.fingerprint)); bind.int(row.facts.toolsOffered)
                bind.bool(row.facts.toolResults); bind.int(row.facts.messages)
                let result = sqlite3_step(handle)
                guard result == SQLITE_DONE else {
                    throw DatabaseError(resultCode: ResultCode(rawValue: result), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
                }
                if sqlite3_changes(db.sqliteConnection) == 0 { alreadyStored.insert(row.id) } else { inserted.append(row) }
            }
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
            try Self.addToRollups(db, inserted)
            for settlement in try LeaseRules.merged(settlements, alreadyStored: alreadyStored) {
                try Self.settle(db, settlement)
            }
        }
    }

    public func ledgerPage(limit: Int, cursor: String?) throws -> LedgerPage {
        try ledgerPage(limit: limit, cursor: cursor, filter: LedgerFilter())
    }

    public func ledgerPage(limit: Int, cursor: String?, filter: LedgerFilter) throws -> LedgerPage {
        guard limit > 0 else { throw StoreError.invalid("limit must be at least 1") }
        var conditions: [String] = []
        var arguments: StatementArguments = []
        if let cursor = try cursor.map(LedgerCursor.init) {
            conditions.append("(created_at, id) < (?, ?)")
            arguments += [cursor.milliseconds, cursor.id]
        }
        if let user = filter.user { conditions.append("user_name = ?"); arguments += [user] }
        if let team = filter.team { conditions.append("team_name = ?"); arguments += [team] }
        if let model = filter.model { conditions.append("model = ?"); arguments += [model] }
        if let status = filter.status { conditions.append("status = ?"); arguments += [status] }
        if let tag = filter.tag { conditions.append("EXISTS (SELECT 1 FROM json_each(requests.tags) WHERE value = ?)"); arguments += [tag] }
        if let from = filter.from { conditions.append("created_at >= ?"); arguments += [from.epochMilliseconds] }
        if let to = filter.to { conditions.append("created_at < ?"); arguments += [to.epochMilliseconds] }
        var sql = "SELECT * FROM requests"
        if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        arguments += [limit + 1]
        let fetched = try database.read { db in
            try Row.fetchAll(db, sql: sql, arguments: arguments).map { try LedgerRecord(row: $0) }
        }
        return LedgerPage(fetched: fetched, limit: limit)
    }

    /// Through a cursor on the time index, so that rows are decoded as they are read.
    public func forEachUsageSample(model: String, from: Date, to: Date, _ body: (LedgerUsageSample) throws -> Void) throws {
        try database.read { db in
            let cursor = try Row.fetchCursor(db, sql: """
                SELECT created_at, latency_ms, input_tokens, cached_input_tokens, cache_write_tokens, cache_write_1h_tokens,
                       output_tokens, reasoning_tokens, cost_nanos
                FROM requests WHERE created_at >= ? AND created_at < ? AND (model = ? OR route = ?)
                ORDER BY created_at, id
                """, arguments: [from.epochMilliseconds, to.epochMilliseconds, model, model])
            while let row = try cursor.next() {
                try body(LedgerUsageSample(
                    startMilliseconds: row[0], latencyMilliseconds: row[1],
                    usage: Usage(inputTokens: row[2], cachedInputTokens: row[3], cacheWriteTokens: row[4], cacheWrite1hTokens: row[5],
                                 outputTokens: row[6], reasoningTokens: row[7]),
                    cost: Nanodollars(row[8])))
            }
        }
    }

    public func spend(_ query: SpendQuery) throws -> [SpendRow] {
        SpendRollups.spendRows(try rollups(RollupQuery(dimensions: [SpendRollups.dimension(query.groupBy)], from: query.from,
                                                       to: query.to, utcOffsetSeconds: query.utcOffsetSeconds)))
    }

    public func forEachUsageEvent(from: Date?, to: Date?, _ body: (UsageEvent) throws -> Void) throws {
        var conditions: [String] = []
        var arguments: StatementArguments = []
        if let from { conditions.append("created_at >= ?"); arguments += [from.epochMilliseconds] }
        if let to { conditions.append("created_at < ?"); arguments += [to.epochMilliseconds] }
        var sql = "SELECT \(UsageEventColumns.list) FROM requests"
        if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
        sql += " ORDER BY created_at, id"
        // Through a cursor: a month of a company's traffic is never held as rows at once.
        try database.read { db in
            let cursor = try Row.fetchCursor(db, sql: sql, arguments: arguments)
            while let row = try cursor.next() {
                try body(UsageEvent(
                    at: row[0], keyID: row[1], user: row[2], team: row[3], client: ClientKind(rawValue: row[4]) ?? .other,
                    sessionID: row[5], fingerprint: UInt64(bitPattern: row[6]), toolResults: row[7], cost: Nanodollars(row[8]),
                    usage: Usage(inputTokens: row[9], cachedInputTokens: row[10], cacheWriteTokens: row[11], outputTokens: row[12])))
            }
        }
    }

    // MARK: Helpers

    /// Created by the first migration; nothing deletes or renames it.
    private static func defaultOrg(_ db: Database) throws -> OrgRecord {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM orgs WHERE name = ?", arguments: [defaultOrgName])
        else { throw StoreError.notFound(entity: "org", reference: defaultOrgName) }
        return OrgRecord(row: row)
    }

    /// An entity by id when the reference is shaped like one, else by name (`EntityReference`). `table` is
    /// always one of our literal table names.
    private static func lookUp(_ db: Database, table: String, reference: String) throws -> Row? {
        switch EntityReference(reference) {
        case .id(let id): try Row.fetchOne(db, sql: "SELECT * FROM \(table) WHERE id = ?", arguments: [id])
        case .name(let name): try Row.fetchOne(db, sql: "SELECT * FROM \(table) WHERE name = ?", arguments: [name])
        }
    }

    private static func requireUnique(_ db: Database, table: String, entity: String, name: String) throws {
        if try Bool.fetchOne(db, sql: "SELECT 1 FROM \(table) WHERE name = ?", arguments: [name]) != nil {
            throw StoreError.duplicate(entity: entity, name: name)
        }
    }
}

// MARK: Rows

extension Date {
    var epochMilliseconds: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }

    init(epochMilliseconds: Int64) { self.init(timeIntervalSince1970: Double(epochMilliseconds) / 1000) }

    /// Now, at the precision the store keeps, so that a record returned equals the record read back.
    static var nowInMilliseconds: Date { Date(epochMilliseconds: Date().epochMilliseconds) }
}

extension String {
    /// PostgreSQL text cannot hold U+0000, and SQLite cuts a bound C string at it: a ledger row carrying
    /// one (a model name sent as "a\u0000b") is stored with U+FFFD in its place by both stores, rather
    /// than refused (a batch refused for ever) or cut short.
    var withoutNUL: String {
        utf8.contains(0) ? replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") : self
    }
}

/// JSON arrays of strings, written by hand because the ledger writes one per tagged request and
/// `JSONEncoder` costs more than the whole row insert.
enum JSONText {
    static func array(_ strings: [String]) -> String {
        var text = "["
        for (index, string) in strings.enumerated() {
            if index > 0 { text += "," }
            text += "\""
            for scalar in string.unicodeScalars {
                switch scalar {
                case "\"": text += "\\\""
                case "\\": text += "\\\\"
                case "\n": text += "\\n"
                case "\r": text += "\\r"
                case "\t": text += "\\t"
                case _ where scalar.value < 0x20:
                    let hex = String(scalar.value, radix: 16)
                    text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                default: text.unicodeScalars.append(scalar)
                }
            }
            text += "\""
        }
        return text + "]"
    }

    /// A stored list that does not decode is an error, never `nil`: for a key's models `nil` means all.
    static func decodeArray(_ text: String?) throws -> [String]? {
        guard let text else { return nil }
        do {
            return try JSONDecoder().decode([String].self, from: Data(text.utf8))
        } catch {
            throw StoreError.invalid("stored list \(text) is not a JSON array of strings")
        }
    }
}

extension OrgRecord {
    init(row: Row) {
        self.init(id: row["id"], name: row["name"], createdAt: Date(epochMilliseconds: row["created_at"]))
    }
}

extension TeamRecord {
    init(row: Row) {
        self.init(id: row["id"], name: row["name"], orgID: row["org_id"],
                  createdAt: Date(epochMilliseconds: row["created_at"]))
    }
}

extension UserRecord {
    init(row: Row) {
        self.init(id: row["id"], name: row["name"], teamID: row["team_id"], orgID: row["org_id"],
                  createdAt: Date(epochMilliseconds: row["created_at"]))
    }
}

extension KeyRecord {
    init(row: Row) throws {
        let expiresAt: Int64? = row["expires_at"]
        let revokedAt: Int64? = row["revoked_at"]
        self.init(id: row["id"], name: row["name"], hashHex: row["hash_hex"], prefix: row["prefix"],
                  userID: row["user_id"], teamID: row["team_id"], orgID: row["org_id"],
                  allowedModels: try JSONText.decodeArray(row["allowed_models"]),
                  expiresAt: expiresAt.map(Date.init(epochMilliseconds:)),
                  revokedAt: revokedAt.map(Date.init(epochMilliseconds:)),
                  rpm: row["rpm"], tpm: row["tpm"], createdAt: Date(epochMilliseconds: row["created_at"]),
                  role: try KeyRecord.role(row["role"]))
    }
}

extension LedgerRecord {
    init(row: Row) throws {
        let baselineCost: Int64? = row["baseline_cost_nanos"]
        self.init(
            id: row["id"], createdAt: Date(epochMilliseconds: row["created_at"]), endpoint: row["endpoint"],
            keyID: row["key_id"], userID: row["user_id"], userName: row["user_name"], teamID: row["team_id"],
            teamName: row["team_name"], orgID: row["org_id"], requestedModel: row["requested_model"],
            model: row["model"], provider: row["provider"],
            usage: Usage(inputTokens: row["input_tokens"], cachedInputTokens: row["cached_input_tokens"],
                         cacheWriteTokens: row["cache_write_tokens"], cacheWrite1hTokens: row["cache_write_1h_tokens"],
                         outputTokens: row["output_tokens"],
                         reasoningTokens: row["reasoning_tokens"]),
            usageEstimated: row["usage_estimated"], cost: Nanodollars(row["cost_nanos"]),
            baselineCost: baselineCost.map(Nanodollars.init), status: row["status"], latencyMs: row["latency_ms"],
            ttftMs: row["ttft_ms"], stream: row["stream"], tags: try JSONText.decodeArray(row["tags"]) ?? [],
            agentic: row["agentic"],
            facts: UsageFacts(client: ClientKind(rawValue: row["client"]) ?? .other, sessionID: row["session_id"],
                              fingerprint: UInt64(bitPattern: row["session_fingerprint"]), toolsOffered: row["tools_offered"],
                              toolResults: row["tool_results"], messages: row["messages"]),
            route: row["route"], routeReason: row["route_reason"], error: row["error"])
    }
}

/// Binds a prepared statement's parameters in order through SQLite's C API.
struct Binder {
    let handle: OpaquePointer
    var column: Int32 = 0

    /// SQLite's `SQLITE_TRANSIENT`, a macro Swift cannot import: SQLite copies the bytes at once.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    mutating func text(_ value: String?) {
        column += 1
        guard let value else { sqlite3_bind_null(handle, column); return }
        sqlite3_bind_text(handle, column, value.withoutNUL, -1, Self.transient)
    }

    mutating func int(_ value: Int64?) {
        column += 1
        guard let value else { sqlite3_bind_null(handle, column); return }
        sqlite3_bind_int64(handle, column, value)
    }

    mutating func int(_ value: Int?) { int(value.map(Int64.init)) }
    mutating func bool(_ value: Bool) { int(value ? 1 : 0) }
}

extension BudgetRecord {
    init(row: Row) {
        let model: String = row["model"]
        self.init(
            id: row["id"], scope: row["scope"], subjectID: row["subject_id"], subjectName: row["subject_name"],
            model: model.isEmpty ? nil : model, limitUSD: (row["limit_usd_nanos"] as Int64?).map(Nanodollars.init),
            limitTokens: row["limit_tokens"], period: row["period"], timeZone: row["time_zone"], mode: row["mode"],
            onExhaust: row["on_exhaust"], softThresholdPPM: row["soft_threshold_ppm"],
            graceUSD: Nanodollars(row["grace_usd_nanos"]), annualSalaryUSD: (row["annual_salary_usd_nanos"] as Int64?).map(Nanodollars.init),
            salarySharePPM: row["salary_share_ppm"],
            softThresholdCrossedAt: (row["soft_crossed_at"] as Int64?).map(Date.init(epochMilliseconds:)),
            softThresholdWindowStart: (row["soft_window_start"] as Int64?).map(Date.init(epochMilliseconds:)),
            forecastExceededAt: (row["forecast_crossed_at"] as Int64?).map(Date.init(epochMilliseconds:)),
            forecastWindowStart: (row["forecast_window_start"] as Int64?).map(Date.init(epochMilliseconds:)),
            createdAt: Date(epochMilliseconds: row["created_at"]), updatedAt: Date(epochMilliseconds: row["updated_at"]))
    }
}

extension KeyRecord {
    /// A stored role; one this version does not know is refused rather than read as a client key.
    static func role(_ text: String) throws -> KeyRole {
        guard let role = KeyRole(rawValue: text) else { throw StoreError.invalid("a key has the unknown role '\(text)'") }
        return role
    }
}
