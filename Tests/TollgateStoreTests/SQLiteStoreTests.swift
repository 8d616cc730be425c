import Foundation
import Synchronization
import Testing
import TollgateCore
@testable import TollgateStore

/// A store in a fresh file under the temporary directory, removed afterwards.
private func withStore<T>(_ body: (SQLiteStore) throws -> T) throws -> T {
    let path = FileManager.default.temporaryDirectory
        .appendingPathComponent("tollgate-store-\(UUID().uuidString).sqlite").path
    defer {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }
    return try body(try SQLiteStore(path: path))
}

/// 2025-03-10T00:00:00Z.
private let day0: Int64 = 1_741_564_800_000
private let hour: Int64 = 3_600_000

private func date(_ milliseconds: Int64) -> Date { Date(epochMilliseconds: milliseconds) }

private func request(_ id: String, at milliseconds: Int64, user: String? = nil, team: String? = nil,
                     key: String? = nil, model: String? = "gpt-4o-mini", tags: [String] = [], cost: Int64 = 0,
                     input: Int = 0, cached: Int = 0, output: Int = 0) -> LedgerRecord {
    LedgerRecord(id: id, createdAt: date(milliseconds), endpoint: "chat.completions", keyID: key,
                 userName: user, teamName: team, model: model,
                 usage: Usage(inputTokens: input, cachedInputTokens: cached, outputTokens: output),
                 cost: Nanodollars(cost), status: 200, latencyMs: 12, tags: tags)
}

private func key(_ id: String, name: String?, orgID: String, userID: String? = nil,
                 models: [String]? = nil) -> KeyRecord {
    KeyRecord(id: id, name: name, hashHex: VirtualKey.hashHex(of: id), prefix: "tg-" + id.suffix(6),
              userID: userID, teamID: nil, orgID: orgID, allowedModels: models,
              expiresAt: date(day0 + 30 * 24 * hour), revokedAt: nil, rpm: 60, tpm: nil, createdAt: date(day0))
}

@Suite("SQLite store: identity")
struct IdentityTests {
    @Test("the default org exists from the start and stays the same")
    func defaultOrg() throws {
        try withStore { store throws in
            let org = try store.defaultOrg()
            #expect(org.name == "default")
            #expect(try store.defaultOrg() == org)
            #expect(try store.listOrgs() == [org])
        }
    }

    @Test("an in-memory store is migrated on opening, and migrating again changes nothing")
    func inMemory() throws {
        let store = try SQLiteStore.inMemory()
        let org = try store.defaultOrg()
        try store.migrate()
        #expect(try store.listOrgs() == [org])
    }

    @Test("orgs, teams and users are created, listed and found by id or name")
    func createAndFind() throws {
        try withStore { store throws in
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
        }
    }

    @Test("a name taken within a kind is a duplicate; the same name in another kind is not")
    func duplicates() throws {
        try withStore { store throws in
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

    @Test("an unknown org or team reference is not found")
    func unknownReferences() throws {
        try withStore { store throws in
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
}

@Suite("SQLite store: keys")
struct KeyTests {
    @Test("a key is stored and listed as given, with or without a model list")
    func roundTrip() throws {
        try withStore { store throws in
            let org = try store.defaultOrg()
            let alice = try store.createUser(name: "alice", team: nil)
            let limited = key("key_a", name: "ci", orgID: org.id, userID: alice.id, models: ["gpt-4o-mini", "auto"])
            let open = key("key_b", name: nil, orgID: org.id)
            let another = key("key_c", name: nil, orgID: org.id)
            try store.insertKey(limited)
            try store.insertKey(open)
            try store.insertKey(another)
            #expect(try store.listKeys() == [limited, open, another])
        }
    }

    @Test("a key name or hash already taken is a duplicate")
    func duplicateKeys() throws {
        try withStore { store throws in
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

    @Test("a key naming an unknown user is refused")
    func unknownOwner() throws {
        try withStore { store throws in
            let org = try store.defaultOrg()
            #expect(throws: StoreError.self) {
                try store.insertKey(key("key_a", name: nil, orgID: org.id, userID: "user_0000000000000000"))
            }
        }
    }

    @Test("revoking by id or name marks the key, and a second revocation keeps the first time")
    func revoke() throws {
        try withStore { store throws in
            let org = try store.defaultOrg()
            try store.insertKey(key("key_a", name: "ci", orgID: org.id))
            try store.insertKey(key("key_b", name: nil, orgID: org.id))

            let first = try store.revokeKey("ci", at: date(day0 + hour))
            #expect(first.id == "key_a" && first.revokedAt == date(day0 + hour))
            let again = try store.revokeKey("key_a", at: date(day0 + 2 * hour))
            #expect(again.revokedAt == date(day0 + hour))
            let byID = try store.revokeKey("key_b", at: date(day0 + 3 * hour))
            #expect(byID.revokedAt == date(day0 + 3 * hour))
            #expect(try store.listKeys().map(\.revokedAt) == [date(day0 + hour), date(day0 + 3 * hour)])

            #expect(throws: StoreError.notFound(entity: "key", reference: "missing")) {
                try store.revokeKey("missing", at: Date())
            }
        }
    }
}

@Suite("SQLite store: ledger")
struct LedgerTests {
    @Test("every field of a ledger row is read back as written")
    func roundTrip() throws {
        try withStore { store throws in
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

    @Test("three pages of ten, newest first, cut inside a run of equal times")
    func paging() throws {
        try withStore { store throws in
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

    @Test("a cursor this store did not hand out is refused")
    func badCursor() throws {
        try withStore { store throws in
            #expect(throws: StoreError.self) { try store.ledgerPage(limit: 10, cursor: "garbage") }
            #expect(throws: StoreError.self) { try store.ledgerPage(limit: 0, cursor: nil) }
        }
    }

    @Test("a row written twice is kept once")
    func idempotentAppend() throws {
        try withStore { store throws in
            let row = request("req_1", at: day0, cost: 7)
            try store.appendLedger([row])
            try store.appendLedger([row])
            #expect(try store.ledgerPage(limit: 10, cursor: nil).rows == [row])
        }
    }
}

@Suite("SQLite store: spend reports")
struct SpendTests {
    /// Four requests over three UTC days; costs chosen so that every grouping has a distinct order.
    private static let rows = [
        request("req_1", at: day0 + hour, user: "alice", team: "platform", key: "key_a", model: "gpt-4o",
                tags: ["a", "b"], cost: 1_000_000_001, input: 100, cached: 10, output: 50),
        request("req_2", at: day0 + 23 * hour, user: "alice", team: "platform", key: "key_a",
                model: "gpt-4o-mini", tags: ["a", "a"], cost: 2, input: 1, output: 1),
        request("req_3", at: day0 + 25 * hour, user: "bob", key: "key_b", model: "gpt-4o",
                cost: 999_999_990, input: 10, cached: 5, output: 5),
        request("req_4", at: day0 + 48 * hour, team: "research", key: "key_c", model: "claude",
                tags: ["b"], cost: 5, input: 3, output: 4),
    ]

    private func report(_ query: SpendQuery) throws -> [String?: SpendRow] {
        try withStore { store throws in
            try store.appendLedger(Self.rows)
            let rows = try store.spend(query)
            #expect(rows.map(\.cost) == rows.map(\.cost).sorted(by: >), "ordered by cost, highest first")
            return Dictionary(uniqueKeysWithValues: rows.map { ($0.group, $0) })
        }
    }

    private func costs(_ query: SpendQuery) throws -> [String?: Int64] {
        try report(query).mapValues(\.cost.value)
    }

    @Test("by user, with requests without a user in the nil group, sums exact to the nano-dollar")
    func byUser() throws {
        let rows = try report(SpendQuery(groupBy: .user))
        #expect(rows["alice"] == SpendRow(group: "alice", requests: 2, inputTokens: 101, cachedInputTokens: 10,
                                          outputTokens: 51, cost: Nanodollars(1_000_000_003)))
        #expect(rows["bob"]?.cost == Nanodollars(999_999_990))
        #expect(rows[nil as String?]?.requests == 1)
        #expect(rows.count == 3)
    }

    @Test("by team, key and model")
    func byTeamKeyModel() throws {
        #expect(try costs(SpendQuery(groupBy: .team)) == ["platform": 1_000_000_003, nil: 999_999_990, "research": 5])
        #expect(try costs(SpendQuery(groupBy: .key)) == ["key_a": 1_000_000_003, "key_b": 999_999_990, "key_c": 5])
        #expect(try costs(SpendQuery(groupBy: .model)) == ["gpt-4o": 1_999_999_991, "gpt-4o-mini": 2, "claude": 5])
    }

    @Test("by tag, a request counts once per distinct tag and untagged requests in no group")
    func byTag() throws {
        let rows = try report(SpendQuery(groupBy: .tag))
        #expect(rows.count == 2)
        #expect(rows["a"] == SpendRow(group: "a", requests: 2, inputTokens: 101, cachedInputTokens: 10,
                                      outputTokens: 51, cost: Nanodollars(1_000_000_003)))
        #expect(rows["b"] == SpendRow(group: "b", requests: 2, inputTokens: 103, cachedInputTokens: 10,
                                      outputTokens: 54, cost: Nanodollars(1_000_000_006)))
    }

    @Test("by day in UTC and shifted by a time-zone offset either way")
    func byDay() throws {
        #expect(try costs(SpendQuery(groupBy: .day))
            == ["2025-03-10": 1_000_000_003, "2025-03-11": 999_999_990, "2025-03-12": 5])
        // +02:00: 23:00 UTC on the 10th is 01:00 on the 11th.
        #expect(try costs(SpendQuery(groupBy: .day, utcOffsetSeconds: 7200))
            == ["2025-03-10": 1_000_000_001, "2025-03-11": 999_999_992, "2025-03-12": 5])
        // -02:00: 01:00 UTC on the 10th is 23:00 on the 9th, 01:00 on the 11th is 23:00 on the 10th, and
        // midnight on the 12th is 22:00 on the 11th.
        #expect(try costs(SpendQuery(groupBy: .day, utcOffsetSeconds: -7200))
            == ["2025-03-09": 1_000_000_001, "2025-03-10": 999_999_992, "2025-03-11": 5])
    }

    @Test("from is inclusive and to exclusive")
    func bounds() throws {
        let window = SpendQuery(groupBy: .user, from: date(day0 + hour), to: date(day0 + 25 * hour))
        #expect(try report(window).mapValues(\.requests) == ["alice": 2])
        #expect(try report(SpendQuery(groupBy: .user, from: date(day0 + hour + 1))).mapValues(\.requests)
            == ["alice": 1, "bob": 1, nil: 1])
        #expect(try report(SpendQuery(groupBy: .user, to: date(day0 + hour + 1))).mapValues(\.requests)
            == ["alice": 1])
        #expect(try report(SpendQuery(groupBy: .tag, from: date(day0 + 24 * hour))).mapValues(\.requests)
            == ["b": 1])
    }
}

/// Forwards to a real store, but refuses the first `failures` ledger writes and records the batches.
private final class FlakyStore: Store {
    let inner: SQLiteStore
    let failures: Mutex<Int>
    let batches = Mutex<[[String]]>([])

    init(inner: SQLiteStore, failures: Int) {
        self.inner = inner
        self.failures = Mutex(failures)
    }

    struct Refused: Error {}

    func appendLedger(_ rows: [LedgerRecord]) throws {
        let refuse = failures.withLock { left in
            defer { left = max(left - 1, 0) }
            return left > 0
        }
        if refuse { throw Refused() }
        try inner.appendLedger(rows)
        batches.withLock { $0.append(rows.map(\.id)) }
    }

    func migrate() throws { try inner.migrate() }
    func setting(_ name: String) throws -> String? { try inner.setting(name) }
    func upsertBudget(_ budget: BudgetRecord) throws -> BudgetRecord { try inner.upsertBudget(budget) }
    func listBudgets() throws -> [BudgetRecord] { try inner.listBudgets() }
    func deleteBudget(_ id: String) throws { try inner.deleteBudget(id) }
    func markSoftThresholdCrossed(budgetID: String, windowStart: Date, at: Date) throws {
        try inner.markSoftThresholdCrossed(budgetID: budgetID, windowStart: windowStart, at: at)
    }
    func spendSince(_ since: Date, scope: String, subjectID: String, model: String?) throws -> LedgerSpend {
        try inner.spendSince(since, scope: scope, subjectID: subjectID, model: model)
    }
    func setSetting(_ name: String, _ value: String) throws { try inner.setSetting(name, value) }
    func defaultOrg() throws -> OrgRecord { try inner.defaultOrg() }
    func createOrg(name: String) throws -> OrgRecord { try inner.createOrg(name: name) }
    func listOrgs() throws -> [OrgRecord] { try inner.listOrgs() }
    func createTeam(name: String, org: String?) throws -> TeamRecord { try inner.createTeam(name: name, org: org) }
    func listTeams() throws -> [TeamRecord] { try inner.listTeams() }
    func team(_ reference: String) throws -> TeamRecord? { try inner.team(reference) }
    func createUser(name: String, team: String?) throws -> UserRecord { try inner.createUser(name: name, team: team) }
    func listUsers() throws -> [UserRecord] { try inner.listUsers() }
    func user(_ reference: String) throws -> UserRecord? { try inner.user(reference) }
    func insertKey(_ key: KeyRecord) throws { try inner.insertKey(key) }
    func listKeys() throws -> [KeyRecord] { try inner.listKeys() }
    func revokeKey(_ reference: String, at time: Date) throws -> KeyRecord { try inner.revokeKey(reference, at: time) }
    func ledgerPage(limit: Int, cursor: String?) throws -> LedgerPage {
        try inner.ledgerPage(limit: limit, cursor: cursor)
    }
    func spend(_ query: SpendQuery) throws -> [SpendRow] { try inner.spend(query) }
}

@Suite("Ledger writer")
struct LedgerWriterTests {
    @Test("4 threads × 1000 rows enqueued at once all reach the store, each once")
    func concurrentEnqueue() throws {
        try withStore { store throws in
            let writer = LedgerWriter(store: store, flushInterval: .milliseconds(5))
            let threads = 4
            let perThread = 1000
            DispatchQueue.concurrentPerform(iterations: threads) { thread in
                for index in 0..<perThread {
                    writer.enqueue(request("req_\(thread)_\(index)", at: day0 + Int64(index), cost: 1))
                }
            }
            // The background thread alone drains the queue.
            let deadline = Date().addingTimeInterval(10)
            while writer.queueDepth > 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
            #expect(writer.queueDepth == 0)
            writer.shutdown()

            let all = try store.ledgerPage(limit: 10_000, cursor: nil).rows
            #expect(all.count == threads * perThread)
            #expect(Set(all.map(\.id)).count == threads * perThread)
            #expect(try store.spend(SpendQuery(groupBy: .model)).first?.cost == Nanodollars(Int64(threads * perThread)))
        }
    }

    @Test("a batch the store refuses is kept, in front of newer rows, and written on the next flush")
    func retryAfterFailure() throws {
        try withStore { store throws in
            let flaky = FlakyStore(inner: store, failures: 1)
            // A tick far away: only the explicit flushes below write.
            let writer = LedgerWriter(store: flaky, flushInterval: .seconds(3600))
            let older = (0..<10).map { request("req_old_\($0)", at: day0 + Int64($0)) }
            let newer = (0..<5).map { request("req_new_\($0)", at: day0 + 100 + Int64($0)) }

            older.forEach(writer.enqueue)
            writer.flush()
            #expect(writer.queueDepth == 10)
            #expect(try store.ledgerPage(limit: 100, cursor: nil).rows.isEmpty)

            newer.forEach(writer.enqueue)
            writer.flush()
            #expect(writer.queueDepth == 0)
            #expect(flaky.batches.withLock { $0 } == [(older + newer).map(\.id)])
            #expect(try store.ledgerPage(limit: 100, cursor: nil).rows.count == 15)
            writer.shutdown()
        }
    }

    @Test("the background thread retries a refused batch by itself, and shutdown writes what is left")
    func backgroundRetryAndShutdown() throws {
        try withStore { store throws in
            let flaky = FlakyStore(inner: store, failures: 3)
            let writer = LedgerWriter(store: flaky, flushInterval: .milliseconds(5))
            (0..<20).forEach { writer.enqueue(request("req_\($0)", at: day0 + Int64($0))) }
            let deadline = Date().addingTimeInterval(10)
            while writer.queueDepth > 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
            #expect(writer.queueDepth == 0)
            writer.enqueue(request("req_last", at: day0 + 1000))
            writer.shutdown()
            writer.shutdown()
            #expect(try store.ledgerPage(limit: 100, cursor: nil).rows.count == 21)
        }
    }
}

@Suite("SQLite store: budgets")
struct SQLiteStoreBudgetTests {
    static func budget(scope: String = "user", subject: String, model: String? = nil, limit: String = "1500",
                       period: String = "month") -> BudgetRecord {
        BudgetRecord(id: EntityID.make("budget"), scope: scope, subjectID: subject, subjectName: "alice", model: model,
                     limitUSD: Nanodollars(decimalString: limit), limitTokens: nil, period: period, timeZone: "UTC",
                     mode: "strict", onExhaust: "reject", softThresholdPPM: 800_000, graceUSD: .zero,
                     annualSalaryUSD: nil, salarySharePPM: nil, createdAt: Date(), updatedAt: Date())
    }

    @Test("a budget is upserted on (scope, subject, model, period), keeping its id")
    func upsert() throws {
        let store = try SQLiteStore.inMemory()
        let first = try store.upsertBudget(Self.budget(subject: "user_1"))
        let changed = try store.upsertBudget(Self.budget(subject: "user_1", limit: "2000"))
        #expect(changed.id == first.id)
        #expect(changed.limitUSD == Nanodollars(decimalString: "2000"))
        let perModel = try store.upsertBudget(Self.budget(subject: "user_1", model: "gpt-4o"))
        let daily = try store.upsertBudget(Self.budget(subject: "user_1", period: "day"))
        #expect(Set([first.id, perModel.id, daily.id]).count == 3)
        #expect(try store.listBudgets().count == 3)
        try store.markSoftThresholdCrossed(budgetID: first.id, windowStart: Date(timeIntervalSince1970: 0), at: Date(timeIntervalSince1970: 10))
        let marked = try store.listBudgets().first { $0.id == first.id }
        #expect(marked?.softThresholdCrossedAt == Date(timeIntervalSince1970: 10))
        try store.deleteBudget(daily.id)
        #expect(try store.listBudgets().count == 2)
        #expect(throws: StoreError.notFound(entity: "budget", reference: daily.id)) { try store.deleteBudget(daily.id) }
    }

    @Test("a subject's spend since a time is the sum of its ledger rows, optionally for one model")
    func spendSince() throws {
        let store = try SQLiteStore.inMemory()
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
    }
}
