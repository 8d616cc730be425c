import Foundation
import Testing
import TollgateCore
@testable import TollgateStore

/// The per-day rollups kept with the ledger answer every report exactly as a scan of the ledger's rows would,
/// at any instant, on both stores.
@Suite("Spend rollups")
struct SpendRollupTests {
    /// Three users over three days, two models, tags, errors, streams and a fallback; times not on the hour.
    static let rows: [LedgerRecord] = {
        var rows: [LedgerRecord] = []
        var n = 0
        for dayIndex in 0..<3 {
            for minute in stride(from: 7, to: 24 * 60, by: 97) {
                n += 1
                let user = ["ana", "ben", "chen"][n % 3]
                var row = request("req_\(n)", at: day0 + Int64(dayIndex) * 24 * hour + Int64(minute) * 60_000 + Int64(n % 1000),
                                  user: user, team: user == "chen" ? "infra" : "apps", key: "key_\(user)",
                                  model: n % 4 == 0 ? "claude" : "gpt", tags: n % 5 == 0 ? ["x", "y", "x"] : (n % 2 == 0 ? ["x"] : []),
                                  cost: Int64(1000 + n * 37), input: 100 + n, cached: n % 3, output: 50 + n % 17)
                row.status = n % 11 == 0 ? 502 : 200
                row.stream = n % 2 == 1
                row.ttftMs = row.stream ? 40 + n % 9 : nil
                row.route = n % 6 == 0 ? "auto" : nil
                row.routeReason = n % 12 == 0 ? "fallback after 503" : nil
                row.baselineCost = n % 6 == 0 ? Nanodollars(5000) : nil
                rows.append(row)
            }
        }
        return rows
    }()

    /// The same report computed from the rows in Swift: the specification.
    static func expected(_ query: RollupQuery) -> [RollupRow] {
        var totals: [[String?]: RollupMeasures] = [:]
        for row in rows {
            let at = row.createdAt.epochMilliseconds
            if let from = query.from?.epochMilliseconds, at < from { continue }
            if let to = query.to?.epochMilliseconds, at >= to { continue }
            if let user = query.filters[.user], row.userName != user { continue }
            let tags: [String?] = query.dimensions.contains(.tag) ? Set(row.tags).sorted() : [nil]
            for tag in tags {
                let groups: [String?] = query.dimensions.map { dimension in
                    switch dimension {
                    case .user: row.userName
                    case .team: row.teamName
                    case .model: row.model
                    case .route: row.route
                    case .key: row.keyID
                    case .tag: tag
                    case .day:
                        {
                            var calendar = Calendar(identifier: .gregorian)
                            calendar.timeZone = TimeZone(secondsFromGMT: query.utcOffsetSeconds)!
                            let c = calendar.dateComponents([.year, .month, .day], from: row.createdAt)
                            return String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!)
                        }()
                    default: nil
                    }
                }
                totals[groups, default: RollupMeasures()].add(row)
            }
        }
        return SpendRollups.merged([totals.map { RollupRow(groups: $0.key, measures: $0.value) }])
    }

    static let queries: [RollupQuery] = [
        RollupQuery(dimensions: []),
        RollupQuery(dimensions: [.user]),
        RollupQuery(dimensions: [.team, .model]),
        RollupQuery(dimensions: [.day, .team], utcOffsetSeconds: -5 * 3600),
        RollupQuery(dimensions: [.route, .model], filters: [.user: "ana"]),
        RollupQuery(dimensions: [.tag]),
        RollupQuery(dimensions: [.day, .tag]),
        // Edges that cut days: read from the rows, the whole days between from the rollups.
        RollupQuery(dimensions: [.user], from: date(day0 + 5 * hour + 1234), to: date(day0 + 50 * hour + 59 * 60_000)),
        RollupQuery(dimensions: [.tag], from: date(day0 + 30 * 60_000), to: date(day0 + 31 * 60_000 + 7)),
        RollupQuery(dimensions: [.model], from: date(day0 + 26 * hour)),
        // Days of another zone (India): read from the rows; the offset does not matter without days.
        RollupQuery(dimensions: [.day], utcOffsetSeconds: 5 * 3600 + 1800),
        RollupQuery(dimensions: [.user], utcOffsetSeconds: 3600),
    ]

    @Test("every report from the rollups equals the same report over the rows", arguments: StoreBackend.available)
    func rollupsMatchRows(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            // In several batches, one of them written twice (a retried flush), one row twice in one batch.
            let batches = stride(from: 0, to: Self.rows.count, by: 7).map { Array(Self.rows[$0..<min($0 + 7, Self.rows.count)]) }
            for (index, batch) in batches.enumerated() {
                try store.appendLedger(batch + (index == 1 ? [batch[0]] : []))
                if index == 2 { try store.appendLedger(batch) }
            }
            for query in Self.queries {
                #expect(try store.rollups(query) == Self.expected(query), "\(query.dimensions) \(String(describing: query.from))")
            }
        }
    }

    @Test("/admin/spend's groupings read the rollups and agree with the rows", arguments: StoreBackend.available)
    func spendFromRollups(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            try store.appendLedger(Self.rows)
            let byUser = try store.spend(SpendQuery(groupBy: .user, from: date(day0 + 90 * 60_000)))
            #expect(byUser == SpendRollups.spendRows(Self.expected(RollupQuery(dimensions: [.user], from: date(day0 + 90 * 60_000)))))
            #expect(byUser.reduce(0) { $0 + $1.requests } == Self.rows.filter { $0.createdAt >= date(day0 + 90 * 60_000) }.count)
        }
    }

    @Test("whole UTC days come from the rollups, partial ones from the rows")
    func plan() {
        let day = 24 * hour
        let plan = RollupPlan(from: date(day0 + 1), to: date(day0 + 3 * day + 5))
        #expect(plan.rollup?.from == day0 + day && plan.rollup?.to == day0 + 3 * day)
        #expect(plan.raw.map(\.from) == [day0 + 1, day0 + 3 * day] && plan.raw.map(\.to) == [day0 + day, day0 + 3 * day + 5])
        let aligned = RollupPlan(from: date(day0), to: nil)
        #expect(aligned.rollup?.from == day0 && aligned.rollup?.to == nil && aligned.raw.isEmpty)
        let inside = RollupPlan(from: date(day0 + 10), to: date(day0 + 20))
        #expect(inside.rollup == nil && inside.raw.count == 1)
        let local = RollupPlan(from: date(day0), to: nil, localDays: true)
        #expect(local.rollup == nil && local.raw.count == 1)
    }

    @Test("tags group only with time", arguments: StoreBackend.available)
    func tagsWithTimeOnly(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            #expect(throws: StoreError.self) { try store.rollups(RollupQuery(dimensions: [.tag, .user])) }
        }
    }
}

@Suite("Ledger pages with filters")
struct LedgerFilterTests {
    @Test("a filtered page holds exactly the matching rows, newest first, paged by cursor", arguments: StoreBackend.available)
    func filtered(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            try store.appendLedger(SpendRollupTests.rows)
            let filters = [
                LedgerFilter(user: "ana"), LedgerFilter(team: "infra", model: "claude"), LedgerFilter(status: 502),
                LedgerFilter(tag: "y"), LedgerFilter(user: "ben", from: date(day0 + 24 * hour), to: date(day0 + 48 * hour)),
            ]
            for filter in filters {
                let want = SpendRollupTests.rows.filter { row in
                    (filter.user.map { row.userName == $0 } ?? true) && (filter.team.map { row.teamName == $0 } ?? true)
                        && (filter.model.map { row.model == $0 } ?? true) && (filter.status.map { row.status == $0 } ?? true)
                        && (filter.tag.map { row.tags.contains($0) } ?? true)
                        && (filter.from.map { row.createdAt >= $0 } ?? true) && (filter.to.map { row.createdAt < $0 } ?? true)
                }.sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) }.map(\.id)
                var got: [String] = []
                var cursor: String?
                repeat {
                    let page = try store.ledgerPage(limit: 4, cursor: cursor, filter: filter)
                    got += page.rows.map(\.id)
                    cursor = page.next
                } while cursor != nil
                #expect(got == want && !want.isEmpty, "\(filter)")
            }
        }
    }
}
