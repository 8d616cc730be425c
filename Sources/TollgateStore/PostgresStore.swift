import Foundation
import Logging
import PostgresNIO
import TollgateCore

/// The shared store: PostgreSQL, for any number of gateway instances. The same contract as `SQLiteStore`
/// (one test suite runs against both); concurrent instances are kept apart by transactions, unique
/// constraints and row locks. Calls block (see `PostgresConnectionPool`): never call it on an event loop.
public final class PostgresStore: Store {
    /// Statements sent to PostgreSQL by this process so far (each one a network round trip).
    public static var roundTrips: Int { PostgresSession.roundTrips.load(ordering: .relaxed) }

    let pool: PostgresConnectionPool

    /// Connects (lazily: the first call opens the first connection) and, unless told not to, migrates:
    /// then an unreachable server is a `StoreError.unavailable` naming its host and port.
    public init(endpoint: PostgresEndpoint, connections: Int = 4, migrate: Bool = true,
                logger: Logger = Logger(label: "tollgate.postgres")) throws {
        pool = try PostgresConnectionPool(endpoint: endpoint, size: connections, logger: logger)
        if migrate { try self.migrate() }
    }

    /// `postgres://user:password@host:port/database`, see `PostgresEndpoint`.
    public convenience init(url: String, connections: Int = 4, migrate: Bool = true,
                            logger: Logger = Logger(label: "tollgate.postgres")) throws {
        try self.init(endpoint: try PostgresEndpoint(url: url), connections: connections, migrate: migrate, logger: logger)
    }

    public var endpoint: PostgresEndpoint { pool.endpoint }

    @discardableResult
    public func migrate() throws -> [String] {
        try PostgresMigration.apply(pool)
    }

    public func ping() throws {
        try pool.withConnection { session in _ = try session.execute("SELECT 1") }
    }

    /// Closes the idle connections (a later call opens new ones).
    public func close() {
        pool.close()
    }

    // MARK: Identity

    public func setting(_ name: String) throws -> String? {
        try pool.withConnection { session in
            try session.query("SELECT value FROM settings WHERE name = \(name)").first?.get("value")
        }
    }

    public func setSetting(_ name: String, _ value: String) throws {
        _ = try pool.withConnection { session in
            try session.execute("""
                INSERT INTO settings (name, value) VALUES (\(name), \(value))
                ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value
                """)
        }
    }

    public func defaultOrg() throws -> OrgRecord {
        try pool.withConnection { session in try Self.defaultOrg(session) }
    }

    public func createOrg(name: String) throws -> OrgRecord {
        try creating(entity: "org", name: name) { session in
            let org = OrgRecord(id: EntityID.make("org"), name: name, createdAt: .nowInMilliseconds)
            try session.execute("""
                INSERT INTO orgs (id, name, created_at) VALUES (\(org.id), \(org.name), \(org.createdAt.epochMilliseconds))
                """)
            return org
        }
    }

    public func listOrgs() throws -> [OrgRecord] {
        try pool.withConnection { session in
            try session.query("SELECT id, name, created_at FROM orgs ORDER BY created_at, seq").map(OrgRecord.init(row:))
        }
    }

    public func createTeam(name: String, org: String?) throws -> TeamRecord {
        try creating(entity: "team", name: name) { session in
            let orgID: String
            if let org {
                guard let row = try Self.lookUp(session, table: "orgs", reference: org) else {
                    throw StoreError.notFound(entity: "org", reference: org)
                }
                orgID = try OrgRecord(row: row).id
            } else {
                orgID = try Self.defaultOrg(session).id
            }
            let team = TeamRecord(id: EntityID.make("team"), name: name, orgID: orgID, createdAt: .nowInMilliseconds)
            try session.execute("""
                INSERT INTO teams (id, name, org_id, created_at)
                VALUES (\(team.id), \(team.name), \(team.orgID), \(team.createdAt.epochMilliseconds))
                """)
            return team
        }
    }

    public func listTeams() throws -> [TeamRecord] {
        try pool.withConnection { session in
            try session.query("SELECT * FROM teams ORDER BY created_at, seq").map(TeamRecord.init(row:))
        }
    }

    public func team(_ reference: String) throws -> TeamRecord? {
        try pool.withConnection { session in
            try Self.lookUp(session, table: "teams", reference: reference).map(TeamRecord.init(row:))
        }
    }

    public func createUser(name: String, team: String?) throws -> UserRecord {
        try creating(entity: "user", name: name) { session in
            let teamID: String?
            let orgID: String
            if let team {
                guard let row = try Self.lookUp(session, table: "teams", reference: team) else {
                    throw StoreError.notFound(entity: "team", reference: team)
                }
                let record = try TeamRecord(row: row)
                teamID = record.id
                orgID = record.orgID
            } else {
                teamID = nil
                orgID = try Self.defaultOrg(session).id
            }
            let user = UserRecord(id: EntityID.make("user"), name: name, teamID: teamID, orgID: orgID,
                                  createdAt: .nowInMilliseconds)
            try session.execute("""
                INSERT INTO users (id, name, team_id, org_id, created_at)
                VALUES (\(user.id), \(user.name), \(user.teamID), \(user.orgID), \(user.createdAt.epochMilliseconds))
                """)
            return user
        }
    }

    public func listUsers() throws -> [UserRecord] {
        try pool.withConnection { session in
            try session.query("SELECT * FROM users ORDER BY created_at, seq").map(UserRecord.init(row:))
        }
    }

    public func user(_ reference: String) throws -> UserRecord? {
        try pool.withConnection { session in
            try Self.lookUp(session, table: "users", reference: reference).map(UserRecord.init(row:))
        }
    }

    // MARK: Keys

    public func insertKey(_ key: KeyRecord) throws {
        let duplicate = StoreError.duplicate(entity: "key", name: key.name ?? key.prefix)
        do {
            try pool.transaction { session in
                if let name = key.name {
                    try Self.requireUnique(session, table: "keys", entity: "key", name: name)
                }
                guard try session.query("SELECT 1 FROM keys WHERE hash_hex = \(key.hashHex) OR id = \(key.id)").isEmpty else {
                    throw duplicate
                }
                try session.execute("""
                    INSERT INTO keys (id, name, hash_hex, prefix, user_id, team_id, org_id, allowed_models,
                                      expires_at, revoked_at, rpm, tpm, created_at, role)
                    VALUES (\(key.id), \(key.name), \(key.hashHex), \(key.prefix), \(key.userID), \(key.teamID),
                            \(key.orgID), \(key.allowedModels.map(JSONText.array)), \(key.expiresAt?.epochMilliseconds),
                            \(key.revokedAt?.epochMilliseconds), \(key.rpm), \(key.tpm), \(key.createdAt.epochMilliseconds),
                            \(key.role.rawValue))
                    """)
                try Self.recordChange(session, .key, key.id)
            }
        } catch let error as PostgresServerError where error.isUniqueViolation {
            throw duplicate
        } catch let error as PostgresServerError where error.isForeignKeyViolation {
            throw StoreError.invalid("key \(key.id) names a user, team or org that does not exist")
        }
    }

    public func listKeys() throws -> [KeyRecord] {
        try pool.withConnection { session in
            try session.query("SELECT * FROM keys ORDER BY created_at, seq").map(KeyRecord.init(row:))
        }
    }

    public func revokeKey(_ reference: String, at time: Date) throws -> KeyRecord {
        try pool.transaction { session in
            guard let row = try Self.lookUp(session, table: "keys", reference: reference) else {
                throw StoreError.notFound(entity: "key", reference: reference)
            }
            let id: String = try row.get("id")
            try session.execute("UPDATE keys SET revoked_at = \(time.epochMilliseconds) WHERE id = \(id) AND revoked_at IS NULL")
            try Self.recordChange(session, .key, id)
            return try KeyRecord(row: try session.query("SELECT * FROM keys WHERE id = \(id)")[0])
        }
    }

    // MARK: Budgets

    public func upsertBudget(_ budget: BudgetRecord) throws -> BudgetRecord {
        var attempt = 1
        while true {
            do {
                return try pool.transaction { session in try Self.upsertBudget(session, budget) }
            } catch let error as PostgresServerError where error.isUniqueViolation && attempt == 1 {
                // Another instance created the same (scope, subject, model, period) meanwhile: update that one.
                attempt += 1
            }
        }
    }

    private static func upsertBudget(_ session: PostgresSession, _ budget: BudgetRecord) throws -> BudgetRecord {
        var stored = budget
        if let existing = try session.query("""
            SELECT id, created_at FROM budgets
            WHERE scope = \(budget.scope) AND subject_id = \(budget.subjectID) AND model = \(budget.model ?? "")
              AND period = \(budget.period)
            """).first {
            stored.id = try existing.get("id")
            stored.createdAt = Date(epochMilliseconds: try existing.get("created_at"))
        }
        try session.execute("""
            INSERT INTO budgets (id, scope, subject_id, subject_name, model, limit_usd_nanos, limit_tokens, period,
                                 time_zone, mode, on_exhaust, soft_threshold_ppm, grace_usd_nanos,
                                 annual_salary_usd_nanos, salary_share_ppm, soft_crossed_at, soft_window_start,
                                 created_at, updated_at)
            VALUES (\(stored.id), \(stored.scope), \(stored.subjectID), \(stored.subjectName), \(stored.model ?? ""),
                    \(stored.limitUSD?.value), \(stored.limitTokens), \(stored.period), \(stored.timeZone), \(stored.mode),
                    \(stored.onExhaust), \(stored.softThresholdPPM), \(stored.graceUSD.value), \(stored.annualSalaryUSD?.value),
                    \(stored.salarySharePPM), \(stored.softThresholdCrossedAt?.epochMilliseconds),
                    \(stored.softThresholdWindowStart?.epochMilliseconds), \(stored.createdAt.epochMilliseconds),
                    \(stored.updatedAt.epochMilliseconds))
            ON CONFLICT (id) DO UPDATE SET
                subject_name = EXCLUDED.subject_name, limit_usd_nanos = EXCLUDED.limit_usd_nanos,
                limit_tokens = EXCLUDED.limit_tokens, time_zone = EXCLUDED.time_zone, mode = EXCLUDED.mode,
                on_exhaust = EXCLUDED.on_exhaust, soft_threshold_ppm = EXCLUDED.soft_threshold_ppm,
                grace_usd_nanos = EXCLUDED.grace_usd_nanos, annual_salary_usd_nanos = EXCLUDED.annual_salary_usd_nanos,
                salary_share_ppm = EXCLUDED.salary_share_ppm, updated_at = EXCLUDED.updated_at
            """)
        try recordChange(session, .budget, stored.id)
        return try BudgetRecord(row: try session.query("SELECT * FROM budgets WHERE id = \(stored.id)")[0])
    }

    public func listBudgets() throws -> [BudgetRecord] {
        try pool.withConnection { session in
            try session.query("SELECT * FROM budgets ORDER BY scope, subject_name, model, period").map(BudgetRecord.init(row:))
        }
    }

    public func deleteBudget(_ id: String) throws {
        try pool.transaction { session in
            guard try session.execute("DELETE FROM budgets WHERE id = \(id)") > 0 else {
                throw StoreError.notFound(entity: "budget", reference: id)
            }
            try Self.recordChange(session, .budget, id)
        }
    }

    public func markSoftThresholdCrossed(budgetID: String, windowStart: Date, at time: Date) throws {
        _ = try pool.withConnection { session in
            try session.execute("""
                UPDATE budgets SET soft_crossed_at = \(time.epochMilliseconds),
                                   soft_window_start = \(windowStart.epochMilliseconds)
                WHERE id = \(budgetID)
                """)
        }
    }

    public func markForecastExceeded(budgetID: String, windowStart: Date, at time: Date) throws -> Bool {
        try pool.withConnection { session in
            try session.execute("""
                UPDATE budgets SET forecast_crossed_at = \(time.epochMilliseconds),
                                   forecast_window_start = \(windowStart.epochMilliseconds)
                WHERE id = \(budgetID)
                  AND (forecast_window_start IS NULL OR forecast_window_start <> \(windowStart.epochMilliseconds))
                """) > 0
        }
    }

    public func dailySpend(scope: BudgetScope, subjectID: String, model: String?, from: Date, to: Date,
                           timeZone: TimeZone) throws -> [DaySpend] {
        guard to > from else { return [] }
        let column = DailySpendQuery.column(scope)
        let plan = DailySpendQuery.plan(from: from, to: to, timeZone: timeZone)
        var reads: [(String, Int64, Int64)] = plan.raw.map { low, high in
            ("""
             SELECT created_at / \(DailySpendQuery.quarterHourMilliseconds) AS quarter, SUM(cost_nanos)::bigint AS usd,
                    SUM(input_tokens + cached_input_tokens + cache_write_tokens + output_tokens)::bigint AS tokens
             FROM requests WHERE \(column) = $1 AND created_at >= $2 AND created_at < $3
             """, low ?? from.epochMilliseconds, high ?? to.epochMilliseconds)
        }
        // Whole UTC days come from the rollups, not from the month's ledger rows.
        if let (low, high) = plan.rollup {
            reads.append(("""
                SELECT day / \(DailySpendQuery.quarterHourMilliseconds) AS quarter, SUM(cost_nanos)::bigint AS usd,
                       SUM(input_tokens + cached_input_tokens + cache_write_tokens + output_tokens)::bigint AS tokens
                FROM spend_daily WHERE \(column) = $1 AND day >= $2 AND day < $3
                """, low ?? from.epochMilliseconds, high ?? to.epochMilliseconds))
        }
        let quarters = try pool.withConnection { session in
            var quarters: [DailySpendQuery.Quarter] = []
            for (sql, low, high) in reads {
                var binds = PostgresBindings()
                binds.append(subjectID)
                binds.append(low)
                binds.append(high)
                var text = sql
                if let model {
                    binds.append(model)
                    text += " AND model = $4"
                }
                text += " GROUP BY quarter ORDER BY quarter"
                for row in try session.query(PostgresQuery(unsafeSQL: text, binds: binds)) {
                    quarters.append(DailySpendQuery.Quarter(index: try row.get("quarter"), usd: try row.get("usd"), tokens: try row.get("tokens")))
                }
            }
            return quarters
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
        var binds = PostgresBindings()
        binds.append(subjectID)
        binds.append(since.epochMilliseconds)
        var sql = """
            SELECT COALESCE(SUM(cost_nanos), 0)::bigint AS usd,
                   COALESCE(SUM(input_tokens + cached_input_tokens + cache_write_tokens + output_tokens), 0)::bigint AS tokens
            FROM requests WHERE \(column) = $1 AND created_at >= $2
            """
        if let model {
            binds.append(model)
            sql += " AND model = $3"
        }
        let query = PostgresQuery(unsafeSQL: sql, binds: binds)
        let row = try pool.withConnection { session in try session.query(query)[0] }
        return LedgerSpend(usd: Nanodollars(try row.get("usd")), tokens: try row.get("tokens"))
    }

    // MARK: Helpers

    /// Creates a uniquely named entity: a name taken (checked first, or found taken by the insert when
    /// another instance got there first) is a duplicate.
    private func creating<T>(entity: String, name: String, _ body: (PostgresSession) throws -> T) throws -> T {
        do {
            return try pool.transaction { session in
                try Self.requireUnique(session, table: entity + "s", entity: entity, name: name)
                return try body(session)
            }
        } catch let error as PostgresServerError where error.isUniqueViolation {
            throw StoreError.duplicate(entity: entity, name: name)
        }
    }

    /// Created by the first migration; nothing deletes or renames it.
    private static func defaultOrg(_ session: PostgresSession) throws -> OrgRecord {
        guard let row = try session.query("SELECT * FROM orgs WHERE name = \(SQLiteStore.defaultOrgName)").first else {
            throw StoreError.notFound(entity: "org", reference: SQLiteStore.defaultOrgName)
        }
        return try OrgRecord(row: row)
    }

    /// An entity by id when the reference is shaped like one, else by name (`EntityReference`). `table` is
    /// always one of our literal table names.
    private static func lookUp(_ session: PostgresSession, table: String, reference: String) throws -> PostgresRandomAccessRow? {
        switch EntityReference(reference) {
        case .id(let id): try session.query("SELECT * FROM \(unescaped: table) WHERE id = \(id)").first
        case .name(let name): try session.query("SELECT * FROM \(unescaped: table) WHERE name = \(name)").first
        }
    }

    private static func requireUnique(_ session: PostgresSession, table: String, entity: String, name: String) throws {
        guard try session.query("SELECT 1 FROM \(unescaped: table) WHERE name = \(name)").isEmpty else {
            throw StoreError.duplicate(entity: entity, name: name)
        }
    }

    /// Appends to the change feed under a transaction-long lock, so that change ids become visible in
    /// their order: a sequence alone hands out ids in one order and commits may land in another, and a
    /// reader past id n would never see an n − 1 committed after it.
    static func recordChange(_ session: PostgresSession, _ kind: ChangeKind, _ subject: String) throws {
        try session.execute("SELECT pg_advisory_xact_lock(\(PostgresMigration.lockSpace), \(PostgresMigration.changeFeedLock))")
        try session.execute("""
            INSERT INTO changes (kind, subject, at) VALUES (\(kind.rawValue), \(subject), \(Date().epochMilliseconds))
            """)
    }
}

// MARK: Rows

extension OrgRecord {
    init(row: PostgresRandomAccessRow) throws {
        self.init(id: try row.get("id"), name: try row.get("name"), createdAt: Date(epochMilliseconds: try row.get("created_at")))
    }
}

extension TeamRecord {
    init(row: PostgresRandomAccessRow) throws {
        self.init(id: try row.get("id"), name: try row.get("name"), orgID: try row.get("org_id"),
                  createdAt: Date(epochMilliseconds: try row.get("created_at")))
    }
}

extension UserRecord {
    init(row: PostgresRandomAccessRow) throws {
        self.init(id: try row.get("id"), name: try row.get("name"), teamID: try row.get("team_id"), orgID: try row.get("org_id"),
                  createdAt: Date(epochMilliseconds: try row.get("created_at")))
    }
}

extension KeyRecord {
    init(row: PostgresRandomAccessRow) throws {
        self.init(id: try row.get("id"), name: try row.get("name"), hashHex: try row.get("hash_hex"), prefix: try row.get("prefix"),
                  userID: try row.get("user_id"), teamID: try row.get("team_id"), orgID: try row.get("org_id"),
                  allowedModels: try JSONText.decodeArray(try row.get("allowed_models")),
                  expiresAt: try row.get("expires_at", as: Int64?.self).map(Date.init(epochMilliseconds:)),
                  revokedAt: try row.get("revoked_at", as: Int64?.self).map(Date.init(epochMilliseconds:)),
                  rpm: try row.get("rpm"), tpm: try row.get("tpm"), createdAt: Date(epochMilliseconds: try row.get("created_at")),
                  role: try KeyRecord.role(try row.get("role")))
    }
}

extension BudgetRecord {
    init(row: PostgresRandomAccessRow) throws {
        let model: String = try row.get("model")
        self.init(
            id: try row.get("id"), scope: try row.get("scope"), subjectID: try row.get("subject_id"),
            subjectName: try row.get("subject_name"), model: model.isEmpty ? nil : model,
            limitUSD: try row.get("limit_usd_nanos", as: Int64?.self).map(Nanodollars.init),
            limitTokens: try row.get("limit_tokens"), period: try row.get("period"), timeZone: try row.get("time_zone"),
            mode: try row.get("mode"), onExhaust: try row.get("on_exhaust"), softThresholdPPM: try row.get("soft_threshold_ppm"),
            graceUSD: Nanodollars(try row.get("grace_usd_nanos")),
            annualSalaryUSD: try row.get("annual_salary_usd_nanos", as: Int64?.self).map(Nanodollars.init),
            salarySharePPM: try row.get("salary_share_ppm"),
            softThresholdCrossedAt: try row.get("soft_crossed_at", as: Int64?.self).map(Date.init(epochMilliseconds:)),
            softThresholdWindowStart: try row.get("soft_window_start", as: Int64?.self).map(Date.init(epochMilliseconds:)),
            forecastExceededAt: try row.get("forecast_crossed_at", as: Int64?.self).map(Date.init(epochMilliseconds:)),
            forecastWindowStart: try row.get("forecast_window_start", as: Int64?.self).map(Date.init(epochMilliseconds:)),
            createdAt: Date(epochMilliseconds: try row.get("created_at")),
            updatedAt: Date(epochMilliseconds: try row.get("updated_at")))
    }
}
