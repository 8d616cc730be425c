import Foundation
import Synchronization
import Testing
import TollgateCore
@testable import TollgateStore

/// What every `Store` does, run against each backend: SQLite always, PostgreSQL when
/// `TOLLGATE_TEST_PG_URL` is set (when it is not, the first test below shows as skipped, saying so).
@Suite("Store contract")
struct StoreContract {
    @Test("PostgreSQL backend: the server of TOLLGATE_TEST_PG_URL answers",
          .enabled(if: StoreBackend.postgresURL != nil, Comment(rawValue: StoreBackend.postgresSkipped)))
    func postgresBackend() throws {
        try #require(PostgresScratch.admin).ping()
    }

    // MARK: Identity

    @Test("the default org exists from the start and stays the same; migrating again changes nothing",
          arguments: StoreBackend.available)
    func defaultOrg(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            let org = try store.defaultOrg()
            #expect(org.name == "default")
            #expect(try store.defaultOrg() == org)
            #expect(try store.migrate() == [])
            #expect(try store.listOrgs() == [org])
            try store.ping()
        }
    }

    @Test("orgs, teams and users are created, listed and found by id or name", arguments: StoreBackend.available)
    func createAndFind(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            let acme = try store.createOrg(name: "acme")
            let platform = try store.createTeam(name: "platform", org: nil)
            let research = try store.createTeam(name: "research", org: "acme")
            let labs = try store.createTeam(name: "labs", org: acme.id)
            #expect(platform.orgID == (try store.defaultOrg().id))
            #expect(research.orgID == acme.id)
            #expect(labs.orgID == acme.id)
            #expect(try store.listTeams() == [platform, research, labs])

            let alice = try store.createUser(name: "alice", team: "research")
            let bob = try store.createUser(name: "bob", team: platform.id)
            let carol = try store.createUser(name: "carol", team: nil)
            #expect(alice.teamID == research.id && alice.orgID == acme.id)
            #expect(bob.teamID == platform.id && bob.orgID == platform.orgID)
            let defaultOrgID = try store.defaultOrg().id
            #expect(carol.teamID == nil && carol.orgID == defaultOrgID)
            #expect(try store.listUsers() == [alice, bob, carol])

            #expect(try store.team("research") == research)
            #expect(try store.team(research.id) == research)
            #expect(try store.user("alice") == alice)
            #expect(try store.user(alice.id) == alice)
            #expect(try store.team("nobody") == nil)
            #expect(try store.user("user_0000000000000000") == nil)
            #expect(try store.listOrgs().map(\.name) == ["default", "acme"])
        }
    }

    @Test("a reference shaped like an id names only the entity with that id, never one of that name; any other names only a name",
          arguments: StoreBackend.available)
    func unambiguousReferences(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            let org = try store.defaultOrg()
            let alice = try store.createUser(name: "alice", team: nil)
            let platform = try store.createTeam(name: "platform", org: nil)
            // Names of this shape are refused by the admin API; a database written before that may hold them.
            let mallory = try store.createUser(name: alice.id, team: nil)
            let lookalike = try store.createUser(name: "user_0123456789abcdef", team: nil)
            let shadow = try store.createTeam(name: platform.id, org: nil)
            try store.insertKey(key("key_000000000000000a", name: "ci", orgID: org.id))
            try store.insertKey(key("key_000000000000000b", name: "key_000000000000000c", orgID: org.id))

            #expect(try store.user(alice.id) == alice)
            #expect(try store.user(mallory.id) == mallory)
            #expect(try store.user("user_0123456789abcdef") == nil)
            #expect(try store.user("USER_0123456789ABCDEF") == nil)
            #expect(try store.user(lookalike.id) == lookalike)
            #expect(try store.team(platform.id) == platform)
            #expect(try store.team(shadow.id) == shadow)
            #expect(throws: StoreError.notFound(entity: "team", reference: "team_0123456789abcdef")) {
                _ = try store.createTeam(name: "team_0123456789abcdef", org: nil)
                _ = try store.createUser(name: "u", team: "team_0123456789abcdef")
            }
            #expect(throws: StoreError.notFound(entity: "key", reference: "key_000000000000000c")) {
                try store.revokeKey("key_000000000000000c", at: Date())
            }
            #expect(try store.revokeKey("ci", at: date(day0)).id == "key_000000000000000a")
        }
    }

    @Test("a name taken within a kind is a duplicate; the same name in another kind is not",
          arguments: StoreBackend.available)
    func duplicates(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            _ = try store.createOrg(name: "acme")
            _ = try store.createTeam(name: "platform", org: nil)
            _ = try store.createUser(name: "alice", team: nil)
            #expect(throws: StoreError.duplicate(entity: "org", name: "acme")) { try store.createOrg(name: "acme") }
            #expect(throws: StoreError.duplicate(entity: "org", name: "default")) {
                try store.createOrg(name: "default")
            }
            #expect(throws: StoreError.duplicate(entity: "team", name: "platform")) {
                try store.createTeam(name: "platform", org: nil)
            }
            #expect(throws: StoreError.duplicate(entity: "user", name: "alice")) {
                try store.createUser(name: "alice", team: nil)
            }
            _ = try store.createTeam(name: "alice", org: "acme")
        }
    }

    @Test("an unknown org or team reference is not found", arguments: StoreBackend.available)
    func unknownReferences(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            #expect(throws: StoreError.notFound(entity: "org", reference: "nope")) {
                try store.createTeam(name: "t", org: "nope")
            }
            #expect(throws: StoreError.notFound(entity: "team", reference: "team_0123456789abcdef")) {
                try store.createUser(name: "u", team: "team_0123456789abcdef")
            }
            #expect(try store.listTeams().isEmpty)
            #expect(try store.listUsers().isEmpty)
        }
    }

    @Test("settings are stored, replaced and read back", arguments: StoreBackend.available)
    func settings(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            #expect(try store.setting("admin_key_sha256") == nil)
            try store.setSetting("admin_key_sha256", "aa")
            try store.setSetting("admin_key_sha256", "bb")
            #expect(try store.setting("admin_key_sha256") == "bb")
        }
    }

    // MARK: Keys

    @Test("a key is stored and listed as given, with or without a model list", arguments: StoreBackend.available)
    func keyRoundTrip(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            let org = try store.defaultOrg()
            let alice = try store.createUser(name: "alice", team: nil)
            let limited = key("key_a", name: "ci", orgID: org.id, userID: alice.id, models: ["gpt-4o-mini", "auto"])
            let open = key("key_b", name: nil, orgID: org.id)
            var viewer = key("key_c", name: nil, orgID: org.id)
            viewer.role = .viewer
            try store.insertKey(limited)
            try store.insertKey(open)
            try store.insertKey(viewer)
            #expect(try store.listKeys() == [limited, open, viewer])
            #expect(try store.listKeys().map(\.role) == [.client, .client, .viewer])
            var seen: [KeyRole] = []
            try store.forEachKey { seen.append($0.role) }
            #expect(seen == [.client, .client, .viewer])
        }
    }

    @Test("a key name or hash already taken is a duplicate", arguments: StoreBackend.available)
    func duplicateKeys(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            let org = try store.defaultOrg()
            try store.insertKey(key("key_a", name: "ci", orgID: org.id))
            #expect(throws: StoreError.duplicate(entity: "key", name: "ci")) {
                try store.insertKey(key("key_b", name: "ci", orgID: org.id))
            }
            var sameHash = key("key_c", name: "other", orgID: org.id)
            sameHash.hashHex = VirtualKey.hashHex(of: "key_a")
            #expect(throws: StoreError.duplicate(entity: "key", name: "other")) { try store.insertKey(sameHash) }
            #expect(try store.listKeys().count == 1)
        }
    }

    @Test("a key naming an unknown user is refused", arguments: StoreBackend.available)
    func unknownOwner(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            let org = try store.defaultOrg()
            #expect(throws: StoreError.self) {
                try store.insertKey(key("key_a", name: nil, orgID: org.id, userID: "user_0000000000000000"))
            }
            #expect(try store.listKeys().isEmpty)
        }
    }

    @Test("revoking by id or name marks the key, and a second revocation keeps the first time",
          arguments: StoreBackend.available)
    func revoke(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            let org = try store.defaultOrg()
            try store.insertKey(key("key_000000000000000a", name: "ci", orgID: org.id))
            try store.insertKey(key("key_000000000000000b", name: nil, orgID: org.id))

            let first = try store.revokeKey("ci", at: date(day0 + hour))
            #expect(first.id == "key_000000000000000a" && first.revokedAt == date(day0 + hour))
            let again = try store.revokeKey("key_000000000000000a", at: date(day0 + 2 * hour))
            #expect(again.revokedAt == date(day0 + hour))
            let byID = try store.revokeKey("key_000000000000000b", at: date(day0 + 3 * hour))
            #expect(byID.revokedAt == date(day0 + 3 * hour))
            #expect(try store.listKeys().map(\.revokedAt) == [date(day0 + hour), date(day0 + 3 * hour)])

            #expect(throws: StoreError.notFound(entity: "key", reference: "missing")) {
                try store.revokeKey("missing", at: Date())
            }
        }
    }

    // MARK: Ledger

    @Test("every field of a ledger row is read back as written", arguments: StoreBackend.available)
    func ledgerRoundTrip(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            let full = LedgerRecord(
                id: "req_full", createdAt: date(day0 + 123), endpoint: "messages", keyID: "key_a",
                userID: "user_a", userName: "alice", teamID: "team_a", teamName: "platform", orgID: "org_a",
                requestedModel: "auto", model: "claude-sonnet", provider: "anthropic",
                usage: Usage(inputTokens: 1000, cachedInputTokens: 200, cacheWriteTokens: 30, outputTokens: 400,
                             reasoningTokens: 100),
                usageEstimated: true, cost: Nanodollars(12_345_678_901), baselineCost: Nanodollars(99),
                status: 502, latencyMs: 1234, ttftMs: 321, stream: true,
                tags: ["a \"quoted\" tag", "back\\slash", "new\nline\u{01}", "élan 🚀"], agentic: true,
                route: "auto", routeReason: "budget downgrade", error: "upstream closed")
            let bare = request("req_bare", at: day0)
            try store.appendLedger([full, bare])
            let page = try store.ledgerPage(limit: 10, cursor: nil)
            #expect(page.rows == [full, bare])
            #expect(page.next == nil)
        }
    }

    @Test("three pages of ten, newest first, cut inside a run of equal times", arguments: StoreBackend.available)
    func paging(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            // Pairs share a millisecond, so the page boundary (15 | 14) falls between two equal times.
            let rows = (0..<25).map { index in
                request(String(format: "req_%02d", index), at: day0 + Int64(index / 2) * 1000)
            }
            try store.appendLedger(rows.shuffled())
            let expected = rows.reversed().map(\.id)

            let first = try store.ledgerPage(limit: 10, cursor: nil)
            let firstCursor = try #require(first.next)
            let second = try store.ledgerPage(limit: 10, cursor: firstCursor)
            let secondCursor = try #require(second.next)
            let third = try store.ledgerPage(limit: 10, cursor: secondCursor)
            #expect(first.rows.map(\.id) == Array(expected[0..<10]))
            #expect(second.rows.map(\.id) == Array(expected[10..<20]))
            #expect(third.rows.map(\.id) == Array(expected[20..<25]))
            #expect(third.next == nil)

            // Rows written after the first page was read do not shift the later pages.
            try store.appendLedger([request("req_new", at: day0 + 100_000)])
            #expect(try store.ledgerPage(limit: 10, cursor: first.next).rows.map(\.id) == second.rows.map(\.id))

            let exact = try store.ledgerPage(limit: 26, cursor: nil)
            #expect(exact.rows.count == 26 && exact.next == nil)
        }
    }

    @Test("a cursor this store did not hand out is refused", arguments: StoreBackend.available)
    func badCursor(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            #expect(throws: StoreError.self) { try store.ledgerPage(limit: 10, cursor: "garbage") }
            #expect(throws: StoreError.self) { try store.ledgerPage(limit: 0, cursor: nil) }
        }
    }

    @Test("a row written twice is kept once", arguments: StoreBackend.available)
    func idempotentAppend(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            let row = request("req_1", at: day0, cost: 7)
            try store.appendLedger([row])
            try store.appendLedger([row])
            #expect(try store.ledgerPage(limit: 10, cursor: nil).rows == [row])
        }
    }

    @Test("a batch of 2,500 rows is written whole, in one call", arguments: StoreBackend.available)
    func largeBatch(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            let rows = (0..<2500).map { request("req_\($0)", at: day0 + Int64($0), tags: $0 % 2 == 0 ? ["even"] : [], cost: 3) }
            try store.appendLedger(rows + [rows[7]])
            #expect(try store.ledgerPage(limit: 3000, cursor: nil).rows.count == 2500)
            #expect(try store.spend(SpendQuery(groupBy: .model)).first?.cost == Nanodollars(7500))
            #expect(try store.spend(SpendQuery(groupBy: .tag)).first?.requests == 1250)
        }
    }

    @Test("a NUL character in a ledger row never blocks the batch", arguments: StoreBackend.available)
    func nulInLedgerRow(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            var row = request("req_nul", at: day0, model: "a\u{0}b", tags: ["x\u{0}"])
            row.error = "bad\u{0}"
            try store.appendLedger([row, request("req_next", at: day0 + 1)])
            let stored = try store.ledgerPage(limit: 10, cursor: nil).rows
            #expect(stored.map(\.id) == ["req_next", "req_nul"])
            // PostgreSQL text cannot hold U+0000: both stores keep U+FFFD in its place.
            #expect(stored[1].model == "a\u{FFFD}b" && stored[1].tags == ["x\u{FFFD}"] && stored[1].error == "bad\u{FFFD}")
        }
    }

    // MARK: Spend reports

    /// Four requests over three UTC days; costs chosen so that every grouping has a distinct order.
    private static let spendRows = [
        request("req_1", at: day0 + hour, user: "alice", team: "platform", key: "key_a", model: "gpt-4o",
                tags: ["a", "b"], cost: 1_000_000_001, input: 100, cached: 10, output: 50),
        request("req_2", at: day0 + 23 * hour, user: "alice", team: "platform", key: "key_a",
                model: "gpt-4o-mini", tags: ["a", "a"], cost: 2, input: 1, output: 1),
        request("req_3", at: day0 + 25 * hour, user: "bob", key: "key_b", model: "gpt-4o",
                cost: 999_999_990, input: 10, cached: 5, output: 5),
        request("req_4", at: day0 + 48 * hour, team: "research", key: "key_c", model: "claude",
                tags: ["b"], cost: 5, input: 3, output: 4),
    ]

    /// Every report of `queries` on one store holding `spendRows`.
    private func reports(_ backend: StoreBackend, _ queries: [SpendQuery]) throws -> [[String?: SpendRow]] {
        try backend.withStore { store throws in
            try store.appendLedger(Self.spendRows)
            return try queries.map { query in
                let rows = try store.spend(query)
                #expect(rows.map(\.cost) == rows.map(\.cost).sorted(by: >), "ordered by cost, highest first")
                return Dictionary(uniqueKeysWithValues: rows.map { ($0.group, $0) })
            }
        }
    }

    @Test("by user, with requests without a user in the nil group, sums exact to the nano-dollar",
          arguments: StoreBackend.available)
    func spendByUser(_ backend: StoreBackend) throws {
        let rows = try reports(backend, [SpendQuery(groupBy: .user)])[0]
        #expect(rows["alice"] == SpendRow(group: "alice", requests: 2, inputTokens: 101, cachedInputTokens: 10,
                                          outputTokens: 51, cost: Nanodollars(1_000_000_003)))
        #expect(rows["bob"]?.cost == Nanodollars(999_999_990))
        #expect(rows[nil as String?]?.requests == 1)
        #expect(rows.count == 3)
    }

    @Test("by team, key and model", arguments: StoreBackend.available)
    func spendByTeamKeyModel(_ backend: StoreBackend) throws {
        let costs = try reports(backend, [SpendQuery(groupBy: .team), SpendQuery(groupBy: .key), SpendQuery(groupBy: .model)])
            .map { $0.mapValues(\.cost.value) }
        #expect(costs[0] == ["platform": 1_000_000_003, nil: 999_999_990, "research": 5])
        #expect(costs[1] == ["key_a": 1_000_000_003, "key_b": 999_999_990, "key_c": 5])
        #expect(costs[2] == ["gpt-4o": 1_999_999_991, "gpt-4o-mini": 2, "claude": 5])
    }

    @Test("by tag, a request counts once per distinct tag and untagged requests in no group",
          arguments: StoreBackend.available)
    func spendByTag(_ backend: StoreBackend) throws {
        let rows = try reports(backend, [SpendQuery(groupBy: .tag)])[0]
        #expect(rows.count == 2)
        #expect(rows["a"] == SpendRow(group: "a", requests: 2, inputTokens: 101, cachedInputTokens: 10,
                                      outputTokens: 51, cost: Nanodollars(1_000_000_003)))
        #expect(rows["b"] == SpendRow(group: "b", requests: 2, inputTokens: 103, cachedInputTokens: 10,
                                      outputTokens: 54, cost: Nanodollars(1_000_000_006)))
    }

    @Test("by day in UTC and shifted by a time-zone offset either way", arguments: StoreBackend.available)
    func spendByDay(_ backend: StoreBackend) throws {
        let costs = try reports(backend, [
            SpendQuery(groupBy: .day), SpendQuery(groupBy: .day, utcOffsetSeconds: 7200),
            SpendQuery(groupBy: .day, utcOffsetSeconds: -7200),
        ]).map { $0.mapValues(\.cost.value) }
        #expect(costs[0] == ["2025-03-10": 1_000_000_003, "2025-03-11": 999_999_990, "2025-03-12": 5])
        // +02:00: 23:00 UTC on the 10th is 01:00 on the 11th.
        #expect(costs[1] == ["2025-03-10": 1_000_000_001, "2025-03-11": 999_999_992, "2025-03-12": 5])
        // -02:00: 01:00 UTC on the 10th is 23:00 on the 9th, 01:00 on the 11th is 23:00 on the 10th, and
        // midnight on the 12th is 22:00 on the 11th.
        #expect(costs[2] == ["2025-03-09": 1_000_000_001, "2025-03-10": 999_999_992, "2025-03-11": 5])
    }

    @Test("from is inclusive and to exclusive", arguments: StoreBackend.available)
    func spendBounds(_ backend: StoreBackend) throws {
        let requests = try reports(backend, [
            SpendQuery(groupBy: .user, from: date(day0 + hour), to: date(day0 + 25 * hour)),
            SpendQuery(groupBy: .user, from: date(day0 + hour + 1)),
            SpendQuery(groupBy: .user, to: date(day0 + hour + 1)),
            SpendQuery(groupBy: .tag, from: date(day0 + 24 * hour)),
        ]).map { $0.mapValues(\.requests) }
        #expect(requests[0] == ["alice": 2])
        #expect(requests[1] == ["alice": 1, "bob": 1, nil: 1])
        #expect(requests[2] == ["alice": 1])
        #expect(requests[3] == ["b": 1])
    }

    @Test("savings: the baseline is the cost itself for requests that were not rerouted", arguments: StoreBackend.available)
    func spendBaseline(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            var rerouted = request("req_r", at: day0, user: "alice", cost: 100)
            rerouted.baselineCost = Nanodollars(1000)
            try store.appendLedger([rerouted, request("req_s", at: day0 + 1, user: "alice", cost: 50)])
            let row = try #require(try store.spend(SpendQuery(groupBy: .user)).first)
            #expect(row.cost == Nanodollars(150) && row.baselineCost == Nanodollars(1050) && row.savings == Nanodollars(900))
        }
    }

    // MARK: Budgets

    static func budget(scope: String = "user", subject: String, model: String? = nil, limit: String = "1500",
                       period: String = "month") -> BudgetRecord {
        BudgetRecord(id: EntityID.make("budget"), scope: scope, subjectID: subject, subjectName: "alice", model: model,
                     limitUSD: Nanodollars(decimalString: limit), limitTokens: nil, period: period, timeZone: "UTC",
                     mode: "strict", onExhaust: "reject", softThresholdPPM: 800_000, graceUSD: .zero,
                     annualSalaryUSD: nil, salarySharePPM: nil, createdAt: .nowInMilliseconds, updatedAt: .nowInMilliseconds)
    }

    @Test("a budget is upserted on (scope, subject, model, period), keeping its id", arguments: StoreBackend.available)
    func upsertBudget(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            let first = try store.upsertBudget(Self.budget(subject: "user_1"))
            let changed = try store.upsertBudget(Self.budget(subject: "user_1", limit: "2000"))
            #expect(changed.id == first.id && changed.createdAt == first.createdAt)
            #expect(changed.limitUSD == Nanodollars(decimalString: "2000"))
            let perModel = try store.upsertBudget(Self.budget(subject: "user_1", model: "gpt-4o"))
            let daily = try store.upsertBudget(Self.budget(subject: "user_1", period: "day"))
            #expect(Set([first.id, perModel.id, daily.id]).count == 3)
            #expect(try store.listBudgets() == [daily, perModel, changed].sorted { ($0.model ?? "", $0.period) < ($1.model ?? "", $1.period) })
            try store.markSoftThresholdCrossed(budgetID: first.id, windowStart: Date(timeIntervalSince1970: 0), at: Date(timeIntervalSince1970: 10))
            let marked = try store.listBudgets().first { $0.id == first.id }
            #expect(marked?.softThresholdCrossedAt == Date(timeIntervalSince1970: 10))
            #expect(marked?.softThresholdWindowStart == Date(timeIntervalSince1970: 0))
            #expect(marked?.forecastExceededAt == nil)
            #expect(try store.markForecastExceeded(budgetID: first.id, windowStart: Date(timeIntervalSince1970: 20), at: Date(timeIntervalSince1970: 30)))
            // Once per window: the same window again is not recorded again (nor its time moved).
            #expect(try !store.markForecastExceeded(budgetID: first.id, windowStart: Date(timeIntervalSince1970: 20), at: Date(timeIntervalSince1970: 40)))
            let forecastMarked = try #require(try store.listBudgets().first { $0.id == first.id })
            #expect(forecastMarked.forecastExceededAt == Date(timeIntervalSince1970: 30))
            #expect(forecastMarked.forecastWindowStart == Date(timeIntervalSince1970: 20))
            #expect(forecastMarked.softThresholdCrossedAt == Date(timeIntervalSince1970: 10))
            // A budget set again (a new limit) keeps its crossings: the window's webhooks were sent.
            let reset = try store.upsertBudget(Self.budget(subject: "user_1", limit: "3000"))
            #expect(reset.forecastExceededAt == Date(timeIntervalSince1970: 30))
            // The next window is announced again.
            #expect(try store.markForecastExceeded(budgetID: first.id, windowStart: Date(timeIntervalSince1970: 50), at: Date(timeIntervalSince1970: 60)))
            try store.deleteBudget(daily.id)
            #expect(try store.listBudgets().count == 2)
            #expect(throws: StoreError.notFound(entity: "budget", reference: daily.id)) { try store.deleteBudget(daily.id) }
        }
    }

    @Test("a subject's spend since a time is the sum of its ledger rows, optionally for one model",
          arguments: StoreBackend.available)
    func spendSince(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            func row(_ id: String, user: String, model: String, cost: Int64, at seconds: Double) -> LedgerRecord {
                LedgerRecord(id: id, createdAt: Date(timeIntervalSince1970: seconds), endpoint: "chat.completions",
                             keyID: "key_1", userID: user, teamID: "team_1", orgID: "org_1", model: model,
                             usage: Usage(inputTokens: 10, cachedInputTokens: 5, cacheWriteTokens: 1, outputTokens: 20),
                             cost: Nanodollars(cost), status: 200, latencyMs: 1)
            }
            try store.appendLedger([
                row("r1", user: "u1", model: "a", cost: 100, at: 1000), row("r2", user: "u1", model: "b", cost: 250, at: 2000),
                row("r3", user: "u2", model: "a", cost: 7, at: 2000), row("r4", user: "u1", model: "a", cost: 1, at: 500),
            ])
            let since = Date(timeIntervalSince1970: 1000)
            #expect(try store.spendSince(since, scope: "user", subjectID: "u1", model: nil) == LedgerSpend(usd: Nanodollars(350), tokens: 72))
            #expect(try store.spendSince(since, scope: "user", subjectID: "u1", model: "a") == LedgerSpend(usd: Nanodollars(100), tokens: 36))
            #expect(try store.spendSince(since, scope: "team", subjectID: "team_1", model: nil).usd == Nanodollars(357))
            #expect(try store.spendSince(Date(timeIntervalSince1970: 0), scope: "org", subjectID: "org_1", model: nil).usd == Nanodollars(358))
            #expect(try store.spendSince(since, scope: "key", subjectID: "nobody", model: nil) == LedgerSpend(usd: .zero, tokens: 0))
            #expect(throws: StoreError.self) { try store.spendSince(since, scope: "galaxy", subjectID: "u1", model: nil) }
        }
    }

    @Test("a subject's daily spend is summed per local day of the time zone asked for, within [from, to), optionally for one model",
          arguments: StoreBackend.available)
    func dailySpend(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            func row(_ id: String, user: String, model: String, cost: Int64, at text: String) throws -> LedgerRecord {
                LedgerRecord(id: id, createdAt: try instant(text), endpoint: "chat.completions",
                             keyID: "key_1", userID: user, teamID: "team_1", orgID: "org_1", model: model,
                             usage: Usage(inputTokens: 10, cachedInputTokens: 5, cacheWriteTokens: 1, outputTokens: 20),
                             cost: Nanodollars(cost), status: 200, latencyMs: 1)
            }
            // New York is at -05:00 in December: 04:59Z on the 15th is still the 14th there, 05:00Z the 15th.
            try store.appendLedger([
                try row("d0", user: "u1", model: "a", cost: 1000, at: "2026-12-14T04:59:59Z"),  // before `from`
                try row("d1", user: "u1", model: "a", cost: 1, at: "2026-12-14T05:00:00Z"),
                try row("d2", user: "u1", model: "b", cost: 2, at: "2026-12-15T04:59:59.999Z"),
                try row("d3", user: "u1", model: "a", cost: 4, at: "2026-12-15T05:00:00Z"),
                try row("d4", user: "u2", model: "a", cost: 8, at: "2026-12-15T12:00:00Z"),
                try row("d5", user: "u1", model: "a", cost: 16, at: "2026-12-17T04:00:00Z"),   // the 16th in New York
                try row("d6", user: "u1", model: "a", cost: 2000, at: "2026-12-17T05:00:00Z"),  // at `to`: excluded
            ])
            let newYork = try #require(TimeZone(identifier: "America/New_York"))
            let from = try instant("2026-12-14T00:00:00-05:00")
            let to = try instant("2026-12-17T00:00:00-05:00")
            func day(_ day: Int, _ usd: Int64, _ requests: Int) -> DaySpend {
                DaySpend(date: CalendarDate(year: 2026, month: 12, day: day), usd: Nanodollars(usd), tokens: 36 * requests)
            }
            #expect(try store.dailySpend(scope: .user, subjectID: "u1", model: nil, from: from, to: to, timeZone: newYork)
                    == [day(14, 3, 2), day(15, 4, 1), day(16, 16, 1)])
            #expect(try store.dailySpend(scope: .user, subjectID: "u1", model: "a", from: from, to: to, timeZone: newYork)
                    == [day(14, 1, 1), day(15, 4, 1), day(16, 16, 1)])
            #expect(try store.dailySpend(scope: .team, subjectID: "team_1", model: nil, from: from, to: to, timeZone: newYork)
                    == [day(14, 3, 2), day(15, 12, 2), day(16, 16, 1)])
            // In UTC the same rows fall on other days: d0 and d1 on the 14th, d2, d3 and d4 on the 15th, d5 and d6 on the 17th.
            let utc = try #require(TimeZone(identifier: "UTC"))
            let fromUTC = try instant("2026-12-14T00:00:00Z")
            let toUTC = try instant("2026-12-18T00:00:00Z")
            #expect(try store.dailySpend(scope: .org, subjectID: "org_1", model: nil, from: fromUTC, to: toUTC, timeZone: utc)
                    == [day(14, 1001, 2), day(15, 14, 3), day(17, 2016, 2)])
            // Whole UTC days are read from the rollups and the cut days at either end from the rows: the same sums.
            #expect(try store.dailySpend(scope: .org, subjectID: "org_1", model: "a", from: try instant("2026-12-14T04:59:59Z"),
                                         to: try instant("2026-12-17T04:30:00Z"), timeZone: utc)
                    == [day(14, 1001, 2), day(15, 12, 2), day(17, 16, 1)])
            #expect(try store.dailySpend(scope: .user, subjectID: "u1", model: nil, from: try instant("2026-12-15T00:00:00Z"),
                                         to: try instant("2026-12-15T05:00:00Z"), timeZone: utc) == [day(15, 2, 1)])
            #expect(try store.dailySpend(scope: .key, subjectID: "nobody", model: nil, from: from, to: to, timeZone: newYork) == [])
        }
    }
}

/// An RFC 3339 time, with or without fractional seconds.
private func instant(_ text: String) throws -> Date {
    if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return date }
    return try Date(text, strategy: Date.ISO8601FormatStyle())
}
