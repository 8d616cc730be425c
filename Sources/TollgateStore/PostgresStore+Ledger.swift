import Foundation
import PostgresNIO
import TollgateCore

extension PostgresStore {
    static let ledgerColumns = [
        "id", "created_at", "endpoint", "key_id", "user_id", "user_name", "team_id", "team_name", "org_id",
        "requested_model", "model", "provider", "input_tokens", "cached_input_tokens", "cache_write_tokens",
        "cache_write_1h_tokens", "output_tokens", "reasoning_tokens", "usage_estimated", "cost_nanos", "baseline_cost_nanos", "status",
        "latency_ms", "ttft_ms", "stream", "tags", "agentic", "route", "route_reason", "error",
    ]
    /// Rows per INSERT: 1,000 × 30 parameters stays well under the protocol's 65,535.
    static let ledgerRowsPerInsert = 1000
    private static let tagsColumn = ledgerColumns.firstIndex(of: "tags")!

    /// Multi-row INSERTs, one transaction for the whole batch with its settlements. A retried batch whose
    /// commit did in fact happen must not count twice: rows already present by id are skipped.
    public func appendLedger(_ rows: [LedgerRecord], settling settlements: [LeaseSettlement]) throws {
        guard !rows.isEmpty || !settlements.isEmpty else { return }
        let needStoredIDs = settlements.contains { $0.requestID != nil }
        try pool.transaction { session in
            var alreadyStored: Set<String> = []
            var start = 0
            while start < rows.count {
                let chunk = rows[start..<min(start + Self.ledgerRowsPerInsert, rows.count)]
                start = chunk.endIndex
                let inserted = try session.query(Self.insertLedger(chunk, returningIDs: needStoredIDs))
                if needStoredIDs {
                    let insertedIDs = Set(try inserted.map { try $0.get("id", as: String.self) })
                    alreadyStored.formUnion(chunk.lazy.map(\.id).filter { !insertedIDs.contains($0) })
                }
            }
            for settlement in try LeaseRules.merged(settlements, alreadyStored: alreadyStored) {
                try Self.settle(session, settlement)
            }
        }
    }

    private static func insertLedger(_ rows: ArraySlice<LedgerRecord>, returningIDs: Bool) -> PostgresQuery {
        var sql = "INSERT INTO requests (\(ledgerColumns.joined(separator: ", "))) VALUES "
        sql.reserveCapacity(64 + rows.count * ledgerColumns.count * 8)
        var binds = PostgresBindings(capacity: rows.count * ledgerColumns.count)
        for (index, row) in rows.enumerated() {
            sql += index == 0 ? "(" : ",("
            for column in ledgerColumns.indices {
                if column > 0 { sql += "," }
                sql += "$\(index * ledgerColumns.count + column + 1)"
                if column == tagsColumn { sql += "::jsonb" }
            }
            sql += ")"
            binds.append(storable(row.id)); binds.append(row.createdAt.epochMilliseconds); binds.append(storable(row.endpoint))
            binds.append(storable(row.keyID)); binds.append(storable(row.userID)); binds.append(storable(row.userName))
            binds.append(storable(row.teamID)); binds.append(storable(row.teamName)); binds.append(storable(row.orgID))
            binds.append(storable(row.requestedModel)); binds.append(storable(row.model)); binds.append(storable(row.provider))
            binds.append(row.usage.inputTokens); binds.append(row.usage.cachedInputTokens)
            binds.append(row.usage.cacheWriteTokens); binds.append(row.usage.cacheWrite1hTokens); binds.append(row.usage.outputTokens)
            binds.append(row.usage.reasoningTokens); binds.append(row.usageEstimated); binds.append(row.cost.value)
            binds.append(row.baselineCost?.value); binds.append(row.status); binds.append(row.latencyMs)
            binds.append(row.ttftMs); binds.append(row.stream)
            binds.append(row.tags.isEmpty ? nil : JSONText.array(row.tags.map(storable)))
            binds.append(row.agentic); binds.append(storable(row.route)); binds.append(storable(row.routeReason))
            binds.append(storable(row.error))
        }
        sql += " ON CONFLICT (id) DO NOTHING"
        if returningIDs { sql += " RETURNING id" }
        return PostgresQuery(unsafeSQL: sql, binds: binds)
    }

    private static func storable(_ text: String) -> String { text.withoutNUL }
    private static func storable(_ text: String?) -> String? { text?.withoutNUL }

    public func ledgerPage(limit: Int, cursor: String?) throws -> LedgerPage {
        guard limit > 0 else { throw StoreError.invalid("limit must be at least 1") }
        let columns = Self.ledgerColumns.map { $0 == "tags" ? "tags::text AS tags" : $0 }.joined(separator: ", ")
        let query: PostgresQuery
        if let cursor = try cursor.map(LedgerCursor.init) {
            query = """
                SELECT \(unescaped: columns) FROM requests WHERE (created_at, id) < (\(cursor.milliseconds), \(cursor.id))
                ORDER BY created_at DESC, id DESC LIMIT \(limit + 1)
                """
        } else {
            query = "SELECT \(unescaped: columns) FROM requests ORDER BY created_at DESC, id DESC LIMIT \(limit + 1)"
        }
        let fetched = try pool.withConnection { session in try session.query(query).map(LedgerRecord.init(row:)) }
        return LedgerPage(fetched: fetched, limit: limit)
    }

    /// The same groups as the SQLite store: a request counts once under each distinct tag it carries,
    /// untagged requests in no tag group; for the other groupings, requests without the value form the
    /// `nil` group.
    public func spend(_ query: SpendQuery) throws -> [SpendRow] {
        var binds = PostgresBindings()
        func parameter(_ value: Int64) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }
        let groupExpression: String
        switch query.groupBy {
        case .user: groupExpression = "r.user_name"
        case .team: groupExpression = "r.team_name"
        case .key: groupExpression = "r.key_id"
        case .model: groupExpression = "r.model"
        case .tag: groupExpression = "t.value"
        case .day:
            // Whole days since 1970 in exact arithmetic, then the calendar date (never through a float).
            let offset = parameter(Int64(query.utcOffsetSeconds) * 1000)
            groupExpression = "to_char(DATE '1970-01-01' + floor((r.created_at + \(offset))::numeric / 86400000)::integer, 'YYYY-MM-DD')"
        }
        var conditions: [String] = []
        if let from = query.from { conditions.append("r.created_at >= \(parameter(from.epochMilliseconds))") }
        if let to = query.to { conditions.append("r.created_at < \(parameter(to.epochMilliseconds))") }
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        let measures = "r.input_tokens, r.cached_input_tokens, r.output_tokens, r.cost_nanos, r.baseline_cost_nanos"
        let source = query.groupBy == .tag
            // DISTINCT on the row id: a tag repeated on one request still counts it once.
            ? "SELECT DISTINCT r.id, \(groupExpression) AS grp, \(measures) FROM requests r CROSS JOIN LATERAL jsonb_array_elements_text(r.tags) AS t(value)\(filter)"
            : "SELECT \(groupExpression) AS grp, \(measures) FROM requests r\(filter)"
        let sql = """
            SELECT grp, COUNT(*) AS requests, SUM(input_tokens)::bigint AS input_tokens,
                   SUM(cached_input_tokens)::bigint AS cached_input_tokens, SUM(output_tokens)::bigint AS output_tokens,
                   SUM(cost_nanos)::bigint AS cost,
                   SUM(COALESCE(baseline_cost_nanos, cost_nanos))::bigint AS baseline
            FROM (\(source)) AS grouped
            GROUP BY grp
            ORDER BY cost DESC, grp COLLATE "C" NULLS FIRST
            """
        return try pool.withConnection { session in
            try session.query(PostgresQuery(unsafeSQL: sql, binds: binds)).map { row in
                SpendRow(group: try row.get("grp"), requests: try row.get("requests"), inputTokens: try row.get("input_tokens"),
                         cachedInputTokens: try row.get("cached_input_tokens"), outputTokens: try row.get("output_tokens"),
                         cost: Nanodollars(try row.get("cost")), baselineCost: Nanodollars(try row.get("baseline")))
            }
        }
    }
}

extension LedgerRecord {
    init(row: PostgresRandomAccessRow) throws {
        self.init(
            id: try row.get("id"), createdAt: Date(epochMilliseconds: try row.get("created_at")), endpoint: try row.get("endpoint"),
            keyID: try row.get("key_id"), userID: try row.get("user_id"), userName: try row.get("user_name"),
            teamID: try row.get("team_id"), teamName: try row.get("team_name"), orgID: try row.get("org_id"),
            requestedModel: try row.get("requested_model"), model: try row.get("model"), provider: try row.get("provider"),
            usage: Usage(inputTokens: try row.get("input_tokens"), cachedInputTokens: try row.get("cached_input_tokens"),
                         cacheWriteTokens: try row.get("cache_write_tokens"), cacheWrite1hTokens: try row.get("cache_write_1h_tokens"),
                         outputTokens: try row.get("output_tokens"),
                         reasoningTokens: try row.get("reasoning_tokens")),
            usageEstimated: try row.get("usage_estimated"), cost: Nanodollars(try row.get("cost_nanos")),
            baselineCost: try row.get("baseline_cost_nanos", as: Int64?.self).map(Nanodollars.init),
            status: try row.get("status"), latencyMs: try row.get("latency_ms"), ttftMs: try row.get("ttft_ms"),
            stream: try row.get("stream"), tags: try JSONText.decodeArray(try row.get("tags")) ?? [],
            agentic: try row.get("agentic"), route: try row.get("route"), routeReason: try row.get("route_reason"),
            error: try row.get("error"))
    }
}
