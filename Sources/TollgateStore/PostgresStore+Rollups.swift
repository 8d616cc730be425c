import Foundation
import PostgresNIO
import TollgateCore

extension PostgresStore {
    static let rollupStatements: [String] = {
        let measures = RollupMeasures.columns.map { "\($0) BIGINT NOT NULL" }.joined(separator: ", ")
        let cube = Array(SpendRollups.CubeKey.columns.dropFirst())
        let sums = [
            "COUNT(*)", "SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END)", "SUM(input_tokens)", "SUM(cached_input_tokens)",
            "SUM(cache_write_tokens)", "SUM(output_tokens)", "SUM(reasoning_tokens)", "SUM(cost_nanos)",
            "SUM(COALESCE(baseline_cost_nanos, cost_nanos))", "SUM(CASE WHEN stream THEN 1 ELSE 0 END)",
            "SUM(CASE WHEN agentic THEN 1 ELSE 0 END)", "SUM(CASE WHEN route_reason LIKE 'fallback%' THEN 1 ELSE 0 END)",
            "SUM(CASE WHEN route_reason = 'budget downgrade' THEN 1 ELSE 0 END)", "SUM(latency_ms)",
            "SUM(COALESCE(ttft_ms, 0))", "COUNT(ttft_ms)",
        ]
        let dayStart = "floor(created_at::numeric / 86400000)::bigint * 86400000"
        return [
            """
            CREATE TABLE spend_daily (
                day BIGINT NOT NULL,
                \(cube.map { "\($0) TEXT NOT NULL" }.joined(separator: ", ")),
                \(measures),
                PRIMARY KEY (day, \(cube.joined(separator: ", ")))
            )
            """,
            "CREATE TABLE spend_daily_tags (day BIGINT NOT NULL, tag TEXT NOT NULL, \(measures), PRIMARY KEY (day, tag))",
            "INSERT INTO spend_daily (day, \(cube.joined(separator: ", ")), \(RollupMeasures.columns.joined(separator: ", "))) "
                + "SELECT \(dayStart), \(cube.map { "COALESCE(\($0), '')" }.joined(separator: ", ")), \(sums.joined(separator: ", ")) "
                + "FROM requests GROUP BY \((1...(cube.count + 1)).map(String.init).joined(separator: ", "))",
            "INSERT INTO spend_daily_tags (day, tag, \(RollupMeasures.columns.joined(separator: ", "))) "
                + "SELECT \(dayStart), tag, \(sums.joined(separator: ", ")) FROM (SELECT DISTINCT ON (r.id, j.value) r.*, j.value AS tag "
                + "FROM requests r CROSS JOIN LATERAL jsonb_array_elements_text(r.tags) AS j(value)) AS tagged GROUP BY 1, 2",
        ]
    }()

    /// Adds the rows just inserted to the rollups, in the ledger's transaction: one multi-row upsert per table.
    static func addToRollups(_ session: PostgresSession, _ rows: some Sequence<LedgerRecord>) throws {
        let (cube, tags) = SpendRollups.aggregate(rows)
        let update = RollupMeasures.columns.map { "\($0) = t.\($0) + excluded.\($0)" }.joined(separator: ", ")
        func upsert(table: String, keyColumns: [String], rows: [(keys: [RollupBind], measures: RollupMeasures)]) throws {
            guard !rows.isEmpty else { return }
            let columns = keyColumns + RollupMeasures.columns
            var binds = PostgresBindings(capacity: rows.count * columns.count)
            var sql = "INSERT INTO \(table) AS t (\(columns.joined(separator: ", "))) VALUES "
            for (index, row) in rows.enumerated() {
                sql += (index == 0 ? "(" : ",(") + columns.indices.map { "$\(index * columns.count + $0 + 1)" }.joined(separator: ",") + ")"
                for key in row.keys {
                    switch key {
                    case .int(let value): binds.append(value)
                    case .text(let value): binds.append(value)
                    }
                }
                for value in row.measures.values { binds.append(value) }
            }
            sql += " ON CONFLICT (\(keyColumns.joined(separator: ", "))) DO UPDATE SET \(update)"
            _ = try session.execute(PostgresQuery(unsafeSQL: sql, binds: binds))
        }
        // Sorted, so that concurrent instances lock the same rollup rows in the same order (no deadlock).
        try upsert(table: "spend_daily", keyColumns: SpendRollups.CubeKey.columns,
                   rows: cube.sorted { ($0.key.day, $0.key.texts.joined(separator: "\u{1}")) < ($1.key.day, $1.key.texts.joined(separator: "\u{1}")) }
                       .map { ([.int($0.key.day)] + $0.key.texts.map(RollupBind.text), $0.value) })
        try upsert(table: "spend_daily_tags", keyColumns: ["day", "tag"],
                   rows: tags.sorted { ($0.key.day, $0.key.tag) < ($1.key.day, $1.key.tag) }.map { ([.int($0.key.day), .text($0.key.tag)], $0.value) })
    }

    public func rollups(_ query: RollupQuery) throws -> [RollupRow] {
        let statements = try SpendRollups.sources(query).map { try SpendRollups.statement(query, $0, dialect: .postgres) }
        let parts = try pool.withConnection { session in
            try statements.map { statement in
                var binds = PostgresBindings()
                for bind in statement.binds {
                    switch bind {
                    case .int(let value): binds.append(value)
                    case .text(let value): binds.append(value)
                    }
                }
                return try session.query(PostgresQuery(unsafeSQL: statement.sql, binds: binds)).map { row in
                    RollupRow(groups: try query.dimensions.indices.map { try row.get("g\($0)", as: String?.self) },
                              measures: RollupMeasures(values: try RollupMeasures.columns.indices.map { try row.get("m\($0)", as: Int64.self) }))
                }
            }
        }
        return SpendRollups.merged(parts)
    }
}
