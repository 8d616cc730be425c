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

    func appendLedger(_ rows: [LedgerRecord], settling settlements: [LeaseSettlement]) throws {
        let refuse = failures.withLock { left in
            defer { left = max(left - 1, 0) }
            return left > 0
        }
        if refuse { throw Refused() }
        try inner.appendLedger(rows, settling: settlements)
        batches.withLock { $0.append(rows.map(\.id)) }
    }

    func migrate() throws -> [String] { try inner.migrate() }
    func ping() throws { try inner.ping() }
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
    func dailySpend(scope: BudgetScope, subjectID: String, model: String?, from: Date, to: Date,
                    timeZone: TimeZone) throws -> [DaySpend] {
        try inner.dailySpend(scope: scope, subjectID: subjectID, model: model, from: from, to: to, timeZone: timeZone)
    }
    func markForecastExceeded(budgetID: String, windowStart: Date, at: Date) throws -> Bool {
        try inner.markForecastExceeded(budgetID: budgetID, windowStart: windowStart, at: at)
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
    func rollups(_ query: RollupQuery) throws -> [RollupRow] { try inner.rollups(query) }
    func forEachUsageEvent(from: Date?, to: Date?, _ body: (UsageEvent) throws -> Void) throws {
        try inner.forEachUsageEvent(from: from, to: to, body)
    }

    func forEachUsageSample(model: String, from: Date, to: Date, _ body: (LedgerUsageSample) throws -> Void) throws {
        try inner.forEachUsageSample(model: model, from: from, to: to, body)
    }
    func ledgerPage(limit: Int, cursor: String?, filter: LedgerFilter) throws -> LedgerPage { try inner.ledgerPage(limit: limit, cursor: cursor, filter: filter) }
    func acquireLease(budgetID: String, windowStart: Date, instance: String, limit: Int64, want: Int64, minimum: Int64,
                      expiresAt: Date) throws -> LeaseGrant {
        try inner.acquireLease(budgetID: budgetID, windowStart: windowStart, instance: instance, limit: limit, want: want,
                               minimum: minimum, expiresAt: expiresAt)
    }
    func releaseLease(budgetID: String, windowStart: Date, instance: String, amount: Int64) throws {
        try inner.releaseLease(budgetID: budgetID, windowStart: windowStart, instance: instance, amount: amount)
    }
    func renewLeases(instance: String, expiresAt: Date) throws -> Int { try inner.renewLeases(instance: instance, expiresAt: expiresAt) }
    func reclaimExpiredLeases(now: Date) throws -> Int { try inner.reclaimExpiredLeases(now: now) }
    func budgetUsage(budgetID: String, windowStart: Date) throws -> BudgetUsage? {
        try inner.budgetUsage(budgetID: budgetID, windowStart: windowStart)
    }
    func leases(instance: String) throws -> [BudgetLease] { try inner.leases(instance: instance) }
    func changes(after: Int64, limit: Int) throws -> [StoreChange] { try inner.changes(after: after, limit: limit) }
    func latestChangeID() throws -> Int64 { try inner.latestChangeID() }
}

@Suite("Ledger writer")
struct LedgerWriterTests {
    @Test("4 threads × 1000 rows enqueued at once all reach the store, each once", arguments: StoreBackend.available)
    func concurrentEnqueue(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
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

            older.forEach { writer.enqueue($0) }
            writer.flush()
            #expect(writer.queueDepth == 10)
            #expect(try store.ledgerPage(limit: 100, cursor: nil).rows.isEmpty)

            newer.forEach { writer.enqueue($0) }
            writer.flush()
            #expect(writer.queueDepth == 0)
            #expect(flaky.batches.withLock { $0 } == [(older + newer).map(\.id)])
            #expect(try store.ledgerPage(limit: 100, cursor: nil).rows.count == 15)
            writer.shutdown()
        }
    }

    @Test("past its backlog limit the writer says so; settlements ride with their rows and are reported once committed")
    func backlogAndSettlements() throws {
        try withStore { store throws in
            let flaky = FlakyStore(inner: store, failures: 2)
            let writer = LedgerWriter(store: flaky, flushInterval: .seconds(3600), backlogLimit: 3)
            let committed = Mutex<[LeaseSettlement]>([])
            writer.onCommitted { settlements in committed.withLock { $0 += settlements } }
            let window = Date(timeIntervalSince1970: 1_777_593_600)
            let grant = try store.acquireLease(budgetID: "b", windowStart: window, instance: "i", limit: 1_000, want: 500,
                                               minimum: 1, expiresAt: window.addingTimeInterval(60))
            #expect(grant.granted == 500)
            let owed = (0..<3).map { LeaseSettlement(budgetID: "b", windowStart: window, instance: "i", amount: 100,
                                                     requestID: "req_b\($0)") }
            for (index, settlement) in owed.enumerated() {
                writer.enqueue(request("req_b\(index)", at: day0 + Int64(index)), settling: [settlement])
            }
            #expect(!writer.isBacklogged)  // as of the last attempt: none yet
            writer.flush()                 // refused: 3 rows wait, the limit
            #expect(writer.isBacklogged)
            #expect(committed.withLock { $0 }.isEmpty)
            writer.flush()                 // refused again
            #expect(writer.isBacklogged)
            writer.flush()                 // written: rows and settlements in one transaction
            #expect(!writer.isBacklogged)
            #expect(committed.withLock { $0 } == owed)
            #expect(try store.budgetUsage(budgetID: "b", windowStart: window) == BudgetUsage(spent: 300, leased: 200))
            #expect(try store.ledgerPage(limit: 10, cursor: nil).rows.count == 3)
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
