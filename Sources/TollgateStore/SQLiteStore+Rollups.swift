import Foundation
import GRDB
import TollgateCore

extension SQLiteStore {
    static let rollupSchema = """
        CREATE TABLE spend_daily (
            day INTEGER NOT NULL,
            key_id TEXT NOT NULL, user_id TEXT NOT NULL, user_name TEXT NOT NULL, team_id TEXT NOT NULL,
            team_name TEXT NOT NULL, org_id TEXT NOT NULL, model TEXT NOT NULL, provider TEXT NOT NULL,
            route TEXT NOT NULL,
            \(RollupMeasures.columns.map { "\($0) INTEGER NOT NULL" }.joined(separator: ", ")),
            PRIMARY KEY (day, key_id, user_id, user_name, team_id, team_name, org_id, model, provider, route)
        ) WITHOUT ROWID;
        CREATE TABLE spend_daily_tags (
            day INTEGER NOT NULL,
            tag TEXT NOT NULL,
            \(RollupMeasures.columns.map { "\($0) INTEGER NOT NULL" }.joined(separator: ", ")),
            PRIMARY KEY (day, tag)
        ) WITHOUT ROWID;
        """

    /// The rollups of the rows already in the ledger (the migration that adds them).
    static let rollupBackfill: [String] = {
        let cube = SpendRollups.CubeKey.columns.dropFirst()
        let sums = [
            "COUNT(*)", "SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END)", "SUM(input_tokens)", "SUM(cached_input_tokens)",
            "SUM(cache_write_tokens)", "SUM(output_tokens)", "SUM(reasoning_tokens)", "SUM(cost_nanos)",
            "SUM(COALESCE(baseline_cost_nanos, cost_nanos))", "SUM(stream)", "SUM(agentic)",
            "SUM(CASE WHEN route_reason LIKE 'fallback%' THEN 1 ELSE 0 END)",
            "SUM(CASE WHEN route_reason = 'budget downgrade' THEN 1 ELSE 0 END)", "SUM(latency_ms)",
            "SUM(COALESCE(ttft_ms, 0))", "COUNT(ttft_ms)",
        ]
        let dayStart = "(created_at / 86400000) * 86400000"
        return [
            "INSERT INTO spend_daily (day, \(cube.joined(separator: ", ")), \(RollupMeasures.columns.joined(separator: ", "))) "
                + "SELECT \(dayStart), \(cube.map { "COALESCE(\($0), '')" }.joined(separator: ", ")), \(sums.joined(separator: ", ")) "
                + "FROM requests GROUP BY 1, \(cube.indices.map { "\($0 - cube.startIndex + 2)" }.joined(separator: ", "))",
            "INSERT INTO spend_daily_tags (day, tag, \(RollupMeasures.columns.joined(separator: ", "))) "
                + "SELECT day, tag, \(sums.joined(separator: ", ")) FROM (SELECT DISTINCT r.rowid, \(dayStart) AS day, j.value AS tag, r.* "
                + "FROM requests r, json_each(r.tags) j) GROUP BY day, tag",
        ]
    }()

    private static let upsertCubeSQL: String = {
        let columns = SpendRollups.CubeKey.columns + RollupMeasures.columns
        return "INSERT INTO spend_daily (\(columns.joined(separator: ", "))) VALUES (\(columns.map { _ in "?" }.joined(separator: ", "))) "
            + "ON CONFLICT (\(SpendRollups.CubeKey.columns.joined(separator: ", "))) DO UPDATE SET "
            + RollupMeasures.columns.map { "\($0) = \($0) + excluded.\($0)" }.joined(separator: ", ")
    }()

    private static let upsertTagSQL: String = {
        let columns = ["day", "tag"] + RollupMeasures.columns
        return "INSERT INTO spend_daily_tags (\(columns.joined(separator: ", "))) VALUES (\(columns.map { _ in "?" }.joined(separator: ", "))) "
            + "ON CONFLICT (day, tag) DO UPDATE SET "
            + RollupMeasures.columns.map { "\($0) = \($0) + excluded.\($0)" }.joined(separator: ", ")
    }()

    /// Adds the rows just inserted to the rollups, in the ledger's transaction.
    static func addToRollups(_ db: Database, _ rows: some Sequence<LedgerRecord>) throws {
        let (cube, tags) = SpendRollups.aggregate(rows)
        let cubeStatement = try db.cachedStatement(sql: upsertCubeSQL)
        for (key, measures) in cube {
            let texts: [any DatabaseValueConvertible] = key.texts
            try cubeStatement.execute(arguments: StatementArguments([key.day] + texts + measures.values))
        }
        let tagStatement = try db.cachedStatement(sql: upsertTagSQL)
        for (key, measures) in tags {
            try tagStatement.execute(arguments: StatementArguments([key.day, key.tag] as [any DatabaseValueConvertible] + measures.values))
        }
    }

    public func rollups(_ query: RollupQuery) throws -> [RollupRow] {
        let statements = try SpendRollups.sources(query).map { try SpendRollups.statement(query, $0, dialect: .sqlite) }
        let parts = try database.read { db in
            try statements.map { statement in
                var arguments = StatementArguments()
                for bind in statement.binds {
                    switch bind {
                    case .int(let value): arguments += [value]
                    case .text(let value): arguments += [value]
                    }
                }
                return try Row.fetchAll(db, sql: statement.sql, arguments: arguments).map { row in
                    RollupRow(groups: query.dimensions.indices.map { row["g\($0)"] },
                              measures: RollupMeasures(values: RollupMeasures.columns.indices.map { row["m\($0)"] }))
                }
            }
        }
        return SpendRollups.merged(parts)
    }
}
