import Foundation
import PostgresNIO
import TollgateCore

extension PostgresStore {
    static let ledgerColumns = [
        "id", "created_at", "endpoint", "key_id", "user_id", "user_name", "team_id", "team_name", "org_id",
        "requested_model", "model", "provider", "input_tokens", "cached_input_tokens", "cache_write_tokens",
        "cache_write_1h_tokens", "output_tokens", "reasoning_tokens", "usage_estimated", "cost_nanos", "baseline_cost_nanos", "status",
        "latency_ms", "ttft_ms", "stream", "tags", "agentic", "route", "route_reason", "error",
        "client", "session_id", "session_fingerprint", "tools_offered", "tool_results", "messages",
    ]
    /// Rows per INSERT: 1,000 × 36 parameters stays well under the protocol's 65,535.
    static let ledgerRowsPerInsert = 1000
    private static let tagsColumn = ledgerColumns.firstIndex(of: "tags")!

    /// Multi-row INSERTs, one transaction for the whole batch with its settlements. A retried batch whose
    /// commit did in fact happen must not count twice: rows already present by id are skipped.
    public func appendLedger(_ rows: [LedgerRecord], settling settlements: [LeaseSettlement]) throws {
        guard !rows.isEmpty || !settlements.isEmpty else { return }
        try pool.transaction { session in
            var alreadyStored: Set<String> = []
            var inserted: [LedgerRecord] = []
            var start = 0
            while start < rows.count {
                let chunk = rows[start..<min(start + Self.ledgerRowsPerInsert, rows.count)]
                start = chunk.endIndex
                // The rollups and settlements count only the rows really inserted.
                var insertedIDs = Set(try session.query(Self.insertLedger(chunk)).map { try $0.get("id", as: String.self) })
                for row in chunk {
                    // An id given twice in one batch is inserted once: the first copy is the one counted.
                    if insertedIDs.remove(row.id) != nil { inserted.append(row) } else { alreadyStored.insert(row.id) }
                }
            }
            try Self.addToRollups(session, inserted)
            for settlement in try LeaseRules.merged(settlements, alreadyStored: alreadyStored) {
                try Self.settle(session, settlement)
            }
        }
    }

    private static func insertLedger(_ rows: ArraySlice<LedgerRecord>) -> PostgresQuery {
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
            binds.append(row.facts.client.rawValue); binds.append(storable(row.facts.sessionID))
            binds.append(Int64(bitPattern: row.facts.fingerprint)); binds.append(row.facts.toolsOffered)
            binds.append(row.facts.toolResults); binds.append(row.facts.messages)
        }
        sql += " ON CONFLICT (id) DO NOTHING RETURNING id"
        return PostgresQuery(unsafeSQL: sql, binds: binds)
    }

    private static func storable(_ text: String) -> String { text.withoutNUL }
    private static func storable(_ text: String?) -> String? { text?.withoutNUL }

    public func ledgerPage(limit: Int, cursor: String?) throws -> LedgerPage {
        try ledgerPage(limit: limit, cursor: cursor, filter: LedgerFilter())
    }

    public func ledgerPage(limit: Int, cursor: String?, filter: LedgerFilter) throws -> LedgerPage {
        guard limit > 0 else { throw StoreError.invalid("limit must be at least 1") }
        let columns = Self.ledgerColumns.map { $0 == "tags" ? "tags::text AS tags" : $0 }.joined(separator: ", ")
        var binds = PostgresBindings()
        func parameter(_ value: String) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }
        func parameter(_ value: Int64) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }
        var conditions: [String] = []
        if let cursor = try cursor.map(LedgerCursor.init) {
            conditions.append("(created_at, id) < (\(parameter(cursor.milliseconds)), \(parameter(cursor.id)))")
        }
        if let user = filter.user { conditions.append("user_name = \(parameter(user))") }
        if let team = filter.team { conditions.append("team_name = \(parameter(team))") }
        if let model = filter.model { conditions.append("model = \(parameter(model))") }
        if let status = filter.status { conditions.append("status = \(parameter(Int64(status)))") }
        if let tag = filter.tag { conditions.append("tags @> jsonb_build_array(\(parameter(tag))::text)") }
        if let from = filter.from { conditions.append("created_at >= \(parameter(from.epochMilliseconds))") }
        if let to = filter.to { conditions.append("created_at < \(parameter(to.epochMilliseconds))") }
        var sql = "SELECT \(columns) FROM requests"
        if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
        sql += " ORDER BY created_at DESC, id DESC LIMIT \(limit + 1)"
        let query = PostgresQuery(unsafeSQL: sql, binds: binds)
        let fetched = try pool.withConnection { session in try session.query(query).map(LedgerRecord.init(row:)) }
        return LedgerPage(fetched: fetched, limit: limit)
    }

    /// In pages of 10,000 rows by (created_at, id): a month of a company's traffic is never held at once.
    public func forEachUsageEvent(from: Date?, to: Date?, _ body: (UsageEvent) throws -> Void) throws {
        var after: (Int64, String)?
        while true {
            var binds = PostgresBindings()
            var conditions: [String] = []
            if let from { binds.append(from.epochMilliseconds); conditions.append("created_at >= $\(binds.count)") }
            if let to { binds.append(to.epochMilliseconds); conditions.append("created_at < $\(binds.count)") }
            if let after {
                binds.append(after.0)
                binds.append(after.1)
                conditions.append("(created_at, id) > ($\(binds.count - 1), $\(binds.count))")
            }
            var sql = "SELECT \(UsageEventColumns.list), id FROM requests"
            if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
            sql += " ORDER BY created_at, id LIMIT \(Self.usagePageRows)"
            let query = PostgresQuery(unsafeSQL: sql, binds: binds)
            let rows = try pool.withConnection { session in try session.query(query) }
            for row in rows {
                try body(UsageEvent(
                    at: try row.get("created_at"), keyID: try row.get("key_id"), user: try row.get("user_name"),
                    team: try row.get("team_name"), client: ClientKind(rawValue: try row.get("client")) ?? .other,
                    sessionID: try row.get("session_id"), fingerprint: UInt64(bitPattern: try row.get("session_fingerprint")),
                    toolResults: try row.get("tool_results"), cost: Nanodollars(try row.get("cost_nanos")),
                    usage: Usage(inputTokens: try row.get("input_tokens"), cachedInputTokens: try row.get("cached_input_tokens"),
                                 cacheWriteTokens: try row.get("cache_write_tokens"), outputTokens: try row.get("output_tokens"))))
            }
            guard rows.count == Self.usagePageRows, let last = rows.last else { return }
            after = (try last.get("created_at"), try last.get("id"))
        }
    }

    static let usagePageRows = 10_000

    /// Pages of `usageSampleBatch` rows on the time index, each starting after the last row of the one before,
    /// in one repeatable-read transaction: one snapshot of the ledger however long the caller takes, and a
    /// few megabytes in flight at most.
    public func forEachUsageSample(model: String, from: Date, to: Date, _ body: (LedgerUsageSample) throws -> Void) throws {
        try pool.transaction { session in
            try session.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            var after: (Int64, String)?
            while true {
                let end = to.epochMilliseconds
                let query: PostgresQuery
                if let last = after {
                    query = """
                        SELECT id, created_at, latency_ms, input_tokens, cached_input_tokens, cache_write_tokens, cache_write_1h_tokens,
                               output_tokens, reasoning_tokens, cost_nanos
                        FROM requests WHERE (created_at, id) > (\(last.0), \(last.1)) AND created_at < \(end)
                          AND (model = \(model) OR route = \(model))
                        ORDER BY created_at, id LIMIT \(unescaped: String(Self.usageSampleBatch))
                        """
                } else {
                    query = """
                        SELECT id, created_at, latency_ms, input_tokens, cached_input_tokens, cache_write_tokens, cache_write_1h_tokens,
                               output_tokens, reasoning_tokens, cost_nanos
                        FROM requests WHERE created_at >= \(from.epochMilliseconds) AND created_at < \(end)
                          AND (model = \(model) OR route = \(model))
                        ORDER BY created_at, id LIMIT \(unescaped: String(Self.usageSampleBatch))
                        """
                }
                let rows = try session.query(query)
                for row in rows {
                    try body(LedgerUsageSample(
                        startMilliseconds: try row.get("created_at"), latencyMilliseconds: Int(try row.get("latency_ms", as: Int64.self)),
                        usage: Usage(inputTokens: Int(try row.get("input_tokens", as: Int64.self)),
                                     cachedInputTokens: Int(try row.get("cached_input_tokens", as: Int64.self)),
                                     cacheWriteTokens: Int(try row.get("cache_write_tokens", as: Int64.self)),
                                     cacheWrite1hTokens: Int(try row.get("cache_write_1h_tokens", as: Int64.self)),
                                     outputTokens: Int(try row.get("output_tokens", as: Int64.self)),
                                     reasoningTokens: Int(try row.get("reasoning_tokens", as: Int64.self))),
                        cost: Nanodollars(try row.get("cost_nanos"))))
                }
                guard rows.count == Self.usageSampleBatch, let last = rows.last else { break }
                after = (try last.get("created_at", as: Int64.self), try last.get("id", as: String.self))
            }
        }
    }

    /// Rows per page.
    static let usageSampleBatch = 10_000

    /// The same groups as the SQLite store: a request counts once under each distinct tag it carries,
    /// untagged requests in no tag group; for the other groupings, requests without the value form the
    /// `nil` group.
    public func spend(_ query: SpendQuery) throws -> [SpendRow] {
        SpendRollups.spendRows(try rollups(RollupQuery(dimensions: [SpendRollups.dimension(query.groupBy)], from: query.from,
                                                       to: query.to, utcOffsetSeconds: query.utcOffsetSeconds)))
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
            agentic: try row.get("agentic"),
            facts: UsageFacts(client: ClientKind(rawValue: try row.get("client")) ?? .other, sessionID: try row.get("session_id"),
                              fingerprint: UInt64(bitPattern: try row.get("session_fingerprint")),
                              toolsOffered: try row.get("tools_offered"), toolResults: try row.get("tool_results"),
                              messages: try row.get("messages")),
            route: try row.get("route"), routeReason: try row.get("route_reason"), error: try row.get("error"))
    }
}
