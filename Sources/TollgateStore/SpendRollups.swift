import Foundation
import TollgateCore

/// Per-day (UTC) totals of the ledger, kept beside it in the same transaction as the rows they sum, so that
/// reports and the dashboard read tens of thousands of rollup rows for a month instead of scanning a million
/// requests. A day, not an hour: the key dimension makes nearly every request of an hour its own combination
/// (1,000,000 requests of 240 people in a month made ~700,000 hourly rows, and pages took seconds).
///
/// `spend_daily` holds one row per day and combination of key, user, team, org, model, provider and route
/// (text columns hold '' for none: SQL unique constraints treat NULLs as distinct); `spend_daily_tags` one per
/// day and tag (a request counts once per distinct tag). Both are exact sums of the rows inserted: a row that
/// was already stored (a retried batch) is not counted again.
public enum RollupDimension: String, Sendable, CaseIterable, Hashable {
    case key, user, team, org, model, provider, route
    /// A request's tags (each counted once per request); only with `day`.
    case tag
    /// The calendar day, in the query's UTC offset (any offset but UTC is read from the ledger's rows).
    case day

    /// The column of `spend_daily` (and the expression over `requests` for the same group).
    var column: String? {
        switch self {
        case .key: "key_id"
        case .user: "user_name"
        case .team: "team_name"
        case .org: "org_id"
        case .model: "model"
        case .provider: "provider"
        case .route: "route"
        case .tag, .day: nil
        }
    }
}

/// The sums a rollup row keeps, all integers (money in nano-dollars).
public struct RollupMeasures: Hashable, Sendable {
    public var requests = 0
    /// Answers with a status of 400 or more.
    public var errors = 0
    public var inputTokens = 0
    public var cachedInputTokens = 0
    public var cacheWriteTokens = 0
    public var outputTokens = 0
    public var reasoningTokens = 0
    public var cost = Nanodollars.zero
    /// What the requested (or strong) model would have cost; the cost itself where no other model was in
    /// question, so that `baselineCost − cost` is what routing and downgrades saved.
    public var baselineCost = Nanodollars.zero
    public var streams = 0
    public var agentic = 0
    /// Requests a route served with a later model than its first (`route_reason` "fallback …").
    public var fallbacks = 0
    public var downgrades = 0
    public var latencyMs = 0
    public var ttftMs = 0
    /// Requests whose time to first token is known (the divisor of `ttftMs`).
    public var ttftCount = 0

    public init() {}

    public static let columns = [
        "requests", "errors", "input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens",
        "reasoning_tokens", "cost_nanos", "baseline_cost_nanos", "streams", "agentic", "fallbacks", "downgrades",
        "latency_ms", "ttft_ms", "ttft_count",
    ]

    /// In the order of `columns`.
    var values: [Int64] {
        [requests, errors, inputTokens, cachedInputTokens, cacheWriteTokens, outputTokens, reasoningTokens].map(Int64.init)
            + [cost.value, baselineCost.value]
            + [streams, agentic, fallbacks, downgrades, latencyMs, ttftMs, ttftCount].map(Int64.init)
    }

    init(values: [Int64]) {
        requests = Int(values[0]); errors = Int(values[1]); inputTokens = Int(values[2]); cachedInputTokens = Int(values[3])
        cacheWriteTokens = Int(values[4]); outputTokens = Int(values[5]); reasoningTokens = Int(values[6])
        cost = Nanodollars(values[7]); baselineCost = Nanodollars(values[8])
        streams = Int(values[9]); agentic = Int(values[10]); fallbacks = Int(values[11]); downgrades = Int(values[12])
        latencyMs = Int(values[13]); ttftMs = Int(values[14]); ttftCount = Int(values[15])
    }

    mutating func add(_ row: LedgerRecord) {
        requests += 1
        if row.status >= 400 { errors += 1 }
        inputTokens += row.usage.inputTokens
        cachedInputTokens += row.usage.cachedInputTokens
        cacheWriteTokens += row.usage.cacheWriteTokens
        outputTokens += row.usage.outputTokens
        reasoningTokens += row.usage.reasoningTokens
        cost += row.cost
        baselineCost += row.baselineCost ?? row.cost
        if row.stream { streams += 1 }
        if row.agentic { agentic += 1 }
        if row.routeReason?.hasPrefix("fallback") == true { fallbacks += 1 }
        if row.routeReason == "budget downgrade" { downgrades += 1 }
        latencyMs += row.latencyMs
        if let ttft = row.ttftMs {
            ttftMs += ttft
            ttftCount += 1
        }
    }

    public static func += (lhs: inout RollupMeasures, rhs: RollupMeasures) {
        lhs = RollupMeasures(values: zip(lhs.values, rhs.values).map { $0 + $1 })
    }
}

/// A report over the rollups: totals grouped by `dimensions`, only of rows whose dimensions equal `filters`,
/// between `from` (inclusive) and `to` (exclusive). Edges that cut a UTC day are read from the ledger's own
/// rows, so the answer is exact for any instant.
public struct RollupQuery: Sendable {
    public var dimensions: [RollupDimension]
    public var filters: [RollupDimension: String]
    public var from: Date?
    public var to: Date?
    /// Seconds east of UTC for `day`; with any other than 0 such a query reads the ledger's rows.
    public var utcOffsetSeconds: Int

    public init(dimensions: [RollupDimension], filters: [RollupDimension: String] = [:], from: Date? = nil,
                to: Date? = nil, utcOffsetSeconds: Int = 0) {
        self.dimensions = dimensions; self.filters = filters; self.from = from; self.to = to
        self.utcOffsetSeconds = utcOffsetSeconds
    }
}

public struct RollupRow: Hashable, Sendable {
    /// One value per dimension of the query, in its order; nil for none (a key of a team has no user).
    public var groups: [String?]
    public var measures: RollupMeasures
}

/// The part of a query read from the rollups and the parts read from the ledger's rows.
struct RollupPlan: Equatable {
    var rollup: (from: Int64?, to: Int64?)?
    var raw: [(from: Int64?, to: Int64?)]

    static func == (a: RollupPlan, b: RollupPlan) -> Bool {
        a.rollup?.from == b.rollup?.from && a.rollup?.to == b.rollup?.to
            && a.raw.map(\.from) == b.raw.map(\.from) && a.raw.map(\.to) == b.raw.map(\.to)
    }

    static let grain: Int64 = 86_400_000

    /// Whole UTC days inside the range come from the rollups; what is left at either end, from the rows.
    /// `localDays`: the query groups by day in a zone other than UTC, which the rollups cannot split.
    init(from: Date?, to: Date?, localDays: Bool = false) {
        let fromMs = from?.epochMilliseconds
        let toMs = to?.epochMilliseconds
        guard !localDays else {
            rollup = nil
            raw = [(fromMs, toMs)]
            return
        }
        let start = fromMs.map { Self.ceilGrain($0) }
        let end = toMs.map { Self.floorGrain($0) }
        if let start, let end, start >= end {
            rollup = nil
            raw = [(fromMs, toMs)]
            return
        }
        rollup = (start, end)
        raw = []
        if let fromMs, let start, fromMs < start { raw.append((fromMs, start)) }
        if let toMs, let end, end < toMs { raw.append((end, toMs)) }
    }

    static func floorGrain(_ ms: Int64) -> Int64 { ms >= 0 ? ms / grain * grain : -((-ms + grain - 1) / grain) * grain }
    static func ceilGrain(_ ms: Int64) -> Int64 { -floorGrain(-ms) }
}

extension SpendRollups {
    /// The rollup rows of `rows` (those actually inserted), keyed by day and dimensions.
    static func aggregate(_ rows: some Sequence<LedgerRecord>) -> (cube: [CubeKey: RollupMeasures], tags: [TagKey: RollupMeasures]) {
        var cube: [CubeKey: RollupMeasures] = [:]
        var tags: [TagKey: RollupMeasures] = [:]
        for row in rows {
            let day = RollupPlan.floorGrain(row.createdAt.epochMilliseconds)
            let key = CubeKey(day: day, keyID: row.keyID ?? "", userID: row.userID ?? "", userName: (row.userName ?? "").withoutNUL,
                              teamID: row.teamID ?? "", teamName: (row.teamName ?? "").withoutNUL, orgID: row.orgID ?? "",
                              model: (row.model ?? "").withoutNUL, provider: row.provider ?? "", route: (row.route ?? "").withoutNUL)
            cube[key, default: RollupMeasures()].add(row)
            for tag in Set(row.tags) {
                tags[TagKey(day: day, tag: tag.withoutNUL), default: RollupMeasures()].add(row)
            }
        }
        return (cube, tags)
    }

    /// Sums rows of several parts of a query (rollups and edges) that share their groups, most spent first.
    static func merged(_ parts: [[RollupRow]]) -> [RollupRow] {
        var totals: [[String?]: RollupMeasures] = [:]
        var order: [[String?]] = []
        for row in parts.joined() {
            if totals[row.groups] == nil { order.append(row.groups) }
            totals[row.groups, default: RollupMeasures()] += row.measures
        }
        return order.map { RollupRow(groups: $0, measures: totals[$0]!) }.sorted { a, b in
            if a.measures.cost != b.measures.cost { return a.measures.cost > b.measures.cost }
            return a.groups.lexicographicallyPrecedes(b.groups) { ($0 ?? "") < ($1 ?? "") }
        }
    }
}

/// Names shared by both stores' rollup code.
enum SpendRollups {
    struct CubeKey: Hashable {
        var day: Int64
        var keyID, userID, userName, teamID, teamName, orgID, model, provider, route: String

        static let columns = ["day", "key_id", "user_id", "user_name", "team_id", "team_name", "org_id", "model", "provider", "route"]
        var texts: [String] { [keyID, userID, userName, teamID, teamName, orgID, model, provider, route] }
    }

    struct TagKey: Hashable {
        var day: Int64
        var tag: String
    }
}

// MARK: SQL shared by both stores

/// A value bound into a rollup statement.
enum RollupBind: Equatable {
    case int(Int64)
    case text(String)
}

enum RollupDialect {
    case sqlite, postgres

    /// `YYYY-MM-DD` of an epoch-milliseconds expression moved by `offset` (a bound parameter).
    func day(_ milliseconds: String, offset: String) -> String {
        switch self {
        case .sqlite: "date((\(milliseconds) + \(offset)) / 1000, 'unixepoch')"
        // Whole days since 1970 in exact arithmetic, then the calendar date (never through a float).
        case .postgres: "to_char(DATE '1970-01-01' + floor((\(milliseconds) + \(offset))::numeric / 86400000)::integer, 'YYYY-MM-DD')"
        }
    }

    func text(_ integer: String) -> String {
        switch self {
        case .sqlite: "CAST(\(integer) AS TEXT)"
        case .postgres: "(\(integer))::text"
        }
    }

    func sum(_ expression: String) -> String {
        switch self {
        case .sqlite: "COALESCE(SUM(\(expression)), 0)"
        case .postgres: "COALESCE(SUM(\(expression)), 0)::bigint"
        }
    }

    /// A request's tags, one row each, as `j.value`.
    func tags(of row: String) -> String {
        switch self {
        case .sqlite: "json_each(\(row).tags) j"
        case .postgres: "LATERAL jsonb_array_elements_text(\(row).tags) AS j(value)"
        }
    }
}

extension SpendRollups {
    /// Where one part of a query reads: the rollups between two UTC days, or the ledger's rows between two instants.
    enum Source {
        case rollups(from: Int64?, to: Int64?)
        case rows(from: Int64?, to: Int64?)
    }

    /// One statement answering `query` over `source`: columns `g0…` (the groups, text) and the measures in
    /// `RollupMeasures.columns` order. `placeholder` gives the text of the next bound parameter.
    static func statement(_ query: RollupQuery, _ source: Source, dialect: RollupDialect) throws -> (sql: String, binds: [RollupBind]) {
        let byTag = query.dimensions.contains(.tag) || query.filters[.tag] != nil
        if byTag, query.dimensions.contains(where: { $0.column != nil }) || query.filters.keys.contains(where: { $0 != .tag }) {
            throw StoreError.invalid("tags can only be grouped with day")
        }
        var binds: [RollupBind] = []
        func bind(_ value: RollupBind) -> String {
            binds.append(value)
            return dialect == .sqlite ? "?" : "$\(binds.count)"
        }
        var groups: [String] = []
        var conditions: [String] = []
        let inner: String
        switch source {
        case .rollups(let from, let to):
            let table = byTag ? "spend_daily_tags h" : "spend_daily h"
            for dimension in query.dimensions {
                switch dimension {
                case .day: groups.append(dialect.day("h.day", offset: bind(.int(Int64(query.utcOffsetSeconds) * 1000))))
                case .tag: groups.append("h.tag")
                default: groups.append("NULLIF(h.\(dimension.column!), '')")
                }
            }
            for (dimension, value) in query.filters.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                conditions.append("h.\(dimension == .tag ? "tag" : dimension.column!) = \(bind(.text(value)))")
            }
            if let from { conditions.append("h.day >= \(bind(.int(from)))") }
            if let to { conditions.append("h.day < \(bind(.int(to)))") }
            let measures = RollupMeasures.columns.enumerated().map { "h.\($1) AS m\($0)" }
            inner = "SELECT " + (groups.enumerated().map { "\($1) AS g\($0)" } + measures).joined(separator: ", ")
                + " FROM \(table)" + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "))
        case .rows(let from, let to):
            for dimension in query.dimensions {
                switch dimension {
                case .day: groups.append(dialect.day("r.created_at", offset: bind(.int(Int64(query.utcOffsetSeconds) * 1000))))
                case .tag: groups.append("j.value")
                default: groups.append("r.\(dimension.column!)")
                }
            }
            for (dimension, value) in query.filters.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                conditions.append("\(dimension == .tag ? "j.value" : "r." + dimension.column!) = \(bind(.text(value)))")
            }
            if let from { conditions.append("r.created_at >= \(bind(.int(from)))") }
            if let to { conditions.append("r.created_at < \(bind(.int(to)))") }
            let measures = [
                "1", "CASE WHEN r.status >= 400 THEN 1 ELSE 0 END", "r.input_tokens", "r.cached_input_tokens",
                "r.cache_write_tokens", "r.output_tokens", "r.reasoning_tokens", "r.cost_nanos",
                "COALESCE(r.baseline_cost_nanos, r.cost_nanos)", "CASE WHEN r.stream THEN 1 ELSE 0 END",
                "CASE WHEN r.agentic THEN 1 ELSE 0 END", "CASE WHEN r.route_reason LIKE 'fallback%' THEN 1 ELSE 0 END",
                "CASE WHEN r.route_reason = 'budget downgrade' THEN 1 ELSE 0 END", "r.latency_ms",
                "COALESCE(r.ttft_ms, 0)", "CASE WHEN r.ttft_ms IS NULL THEN 0 ELSE 1 END",
            ].enumerated().map { "\($1) AS m\($0)" }
            // A tag given twice on one request counts it once: one row per (request, tag).
            let distinct = byTag ? "DISTINCT \(dialect == .sqlite ? "r.rowid" : "r.id") AS rid, " : ""
            inner = "SELECT " + distinct + (groups.enumerated().map { "\($1) AS g\($0)" } + measures).joined(separator: ", ")
                + " FROM requests r" + (byTag ? (dialect == .sqlite ? ", " : " CROSS JOIN ") + dialect.tags(of: "r") : "")
                + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "))
        }
        let groupColumns = groups.indices.map { "g\($0)" }
        let sums = RollupMeasures.columns.indices.map { dialect.sum("m\($0)") + " AS m\($0)" }
        var sql = "SELECT " + (groupColumns + sums).joined(separator: ", ") + " FROM (\(inner)) AS part"
        if !groupColumns.isEmpty { sql += " GROUP BY " + groupColumns.joined(separator: ", ") }
        return (sql, binds)
    }

    /// The sources of a query: rollups for its whole UTC days, rows for the edges.
    static func sources(_ query: RollupQuery) -> [Source] {
        let plan = RollupPlan(from: query.from, to: query.to,
                              localDays: query.utcOffsetSeconds != 0 && query.dimensions.contains(.day))
        return (plan.rollup.map { [Source.rollups(from: $0.from, to: $0.to)] } ?? []) + plan.raw.map { Source.rows(from: $0.from, to: $0.to) }
    }

    /// `/admin/spend`'s rows from a one-dimension rollup query.
    static func spendRows(_ rows: [RollupRow]) -> [SpendRow] {
        rows.map { row in
            SpendRow(group: row.groups.first ?? nil, requests: row.measures.requests, inputTokens: row.measures.inputTokens,
                     cachedInputTokens: row.measures.cachedInputTokens, outputTokens: row.measures.outputTokens,
                     cost: row.measures.cost, baselineCost: row.measures.baselineCost)
        }
    }

    static func dimension(_ grouping: SpendGrouping) -> RollupDimension {
        switch grouping {
        case .user: .user
        case .team: .team
        case .key: .key
        case .model: .model
        case .tag: .tag
        case .day: .day
        }
    }
}
