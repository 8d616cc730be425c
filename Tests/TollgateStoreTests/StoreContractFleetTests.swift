import Foundation
import Synchronization
import Testing
import TollgateCore
@testable import TollgateStore

/// The store contract, continued: budgets shared by a fleet (leases and settlement) and the change feed.
extension StoreContract {
    private static let window = date(day0)
    private static let later = date(day0 + hour)

    private func settled(_ amount: Int64, instance: String = "a", budget: String = "b1", request: String? = nil) -> LeaseSettlement {
        LeaseSettlement(budgetID: budget, windowStart: Self.window, instance: instance, amount: amount, requestID: request)
    }

    @Test("a lease grants what was asked while it fits, what is left after that, and nothing below the minimum",
          arguments: StoreBackend.available)
    func acquire(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            #expect(try store.budgetUsage(budgetID: "b1", windowStart: Self.window) == nil)
            func acquire(_ instance: String, want: Int64, minimum: Int64 = 10) throws -> LeaseGrant {
                try store.acquireLease(budgetID: "b1", windowStart: Self.window, instance: instance, limit: 1000, want: want,
                                       minimum: minimum, expiresAt: Self.later)
            }
            #expect(try acquire("a", want: 400) == LeaseGrant(granted: 400, usage: BudgetUsage(spent: 0, leased: 400)))
            #expect(try acquire("b", want: 500) == LeaseGrant(granted: 500, usage: BudgetUsage(spent: 0, leased: 900)))
            #expect(try acquire("a", want: 300) == LeaseGrant(granted: 100, usage: BudgetUsage(spent: 0, leased: 1000)))
            #expect(try acquire("c", want: 300, minimum: 0) == LeaseGrant(granted: 0, usage: BudgetUsage(spent: 0, leased: 1000)))
            #expect(try store.leases(instance: "a") == [
                BudgetLease(budgetID: "b1", windowStart: Self.window, instance: "a", amount: 500, expiresAt: Self.later),
            ])
            #expect(try store.leases(instance: "c") == [])

            // Spend and release make room again; less room than the minimum grants nothing.
            try store.appendLedger([], settling: [settled(300, instance: "b")])
            try store.releaseLease(budgetID: "b1", windowStart: Self.window, instance: "a", amount: 495)
            #expect(try store.budgetUsage(budgetID: "b1", windowStart: Self.window) == BudgetUsage(spent: 300, leased: 205))
            #expect(try acquire("c", want: 600, minimum: 600).granted == 0)
            #expect(try acquire("c", want: 600, minimum: 100) == LeaseGrant(granted: 495, usage: BudgetUsage(spent: 300, leased: 700)))

            // Another window of the same budget starts from nothing.
            let next = try store.acquireLease(budgetID: "b1", windowStart: date(day0 + 24 * hour), instance: "a", limit: 1000,
                                              want: 1000, minimum: 1, expiresAt: Self.later)
            #expect(next.granted == 1000)
            #expect(throws: StoreError.self) { try acquire("a", want: -1) }
        }
    }

    @Test("settling spends: spent grows by the amount, the lease and leased shrink by what the lease held",
          arguments: StoreBackend.available)
    func settle(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            _ = try store.acquireLease(budgetID: "b1", windowStart: Self.window, instance: "a", limit: 1000, want: 100,
                                       minimum: 0, expiresAt: Self.later)
            _ = try store.acquireLease(budgetID: "b1", windowStart: Self.window, instance: "b", limit: 1000, want: 100,
                                       minimum: 0, expiresAt: Self.later)
            try store.appendLedger([request("req_1", at: day0, cost: 30)], settling: [settled(30), settled(20)])
            #expect(try store.budgetUsage(budgetID: "b1", windowStart: Self.window) == BudgetUsage(spent: 50, leased: 150))
            #expect(try store.leases(instance: "a").map(\.amount) == [50])
            #expect(try store.ledgerPage(limit: 10, cursor: nil).rows.map(\.id) == ["req_1"])

            // Beyond the lease: all of it moves, spent takes the whole amount, and the lease is gone.
            try store.appendLedger([], settling: [settled(80)])
            #expect(try store.budgetUsage(budgetID: "b1", windowStart: Self.window) == BudgetUsage(spent: 130, leased: 100))
            #expect(try store.leases(instance: "a") == [])
            // No lease at all (expired and reclaimed, say): spent still grows.
            try store.appendLedger([], settling: [settled(5, instance: "z"), settled(7, budget: "b2")])
            #expect(try store.budgetUsage(budgetID: "b1", windowStart: Self.window) == BudgetUsage(spent: 135, leased: 100))
            #expect(try store.budgetUsage(budgetID: "b2", windowStart: Self.window) == BudgetUsage(spent: 7, leased: 0))
            #expect(try store.leases(instance: "b").map(\.amount) == [100])
        }
    }

    @Test("rows and settlements are one transaction: a refused settlement writes no row", arguments: StoreBackend.available)
    func settleAtomically(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            #expect(throws: StoreError.self) {
                try store.appendLedger([request("req_1", at: day0)], settling: [settled(10), settled(-1)])
            }
            #expect(try store.ledgerPage(limit: 10, cursor: nil).rows.isEmpty)
            #expect(try store.budgetUsage(budgetID: "b1", windowStart: Self.window) == nil)
        }
    }

    @Test("a batch retried after its commit settles nothing twice when its settlements name their rows",
          arguments: StoreBackend.available)
    func settleOnce(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            let batch = [request("req_1", at: day0), request("req_2", at: day0 + 1)]
            let settlements = [settled(10, request: "req_1"), settled(20, request: "req_2")]
            try store.appendLedger(batch, settling: settlements)
            try store.appendLedger(batch + [request("req_3", at: day0 + 2)],
                                   settling: settlements + [settled(40, request: "req_3")])
            #expect(try store.budgetUsage(budgetID: "b1", windowStart: Self.window)?.spent == 70)
            #expect(try store.ledgerPage(limit: 10, cursor: nil).rows.count == 3)
        }
    }

    @Test("releasing gives back at most what the lease holds and drops it at zero", arguments: StoreBackend.available)
    func release(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            _ = try store.acquireLease(budgetID: "b1", windowStart: Self.window, instance: "a", limit: 1000, want: 300,
                                       minimum: 0, expiresAt: Self.later)
            try store.releaseLease(budgetID: "b1", windowStart: Self.window, instance: "a", amount: 100)
            #expect(try store.leases(instance: "a").map(\.amount) == [200])
            try store.releaseLease(budgetID: "b1", windowStart: Self.window, instance: "a", amount: 1000)
            #expect(try store.leases(instance: "a") == [])
            #expect(try store.budgetUsage(budgetID: "b1", windowStart: Self.window) == BudgetUsage(spent: 0, leased: 0))
            try store.releaseLease(budgetID: "b1", windowStart: Self.window, instance: "a", amount: 5)
            try store.releaseLease(budgetID: "nope", windowStart: Self.window, instance: "a", amount: 5)
            #expect(try store.budgetUsage(budgetID: "b1", windowStart: Self.window) == BudgetUsage(spent: 0, leased: 0))
        }
    }

    @Test("an instance renews its own leases; expired ones go back to their budgets", arguments: StoreBackend.available)
    func renewAndReclaim(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            for (budget, instance) in [("b1", "a"), ("b2", "a"), ("b1", "b")] {
                _ = try store.acquireLease(budgetID: budget, windowStart: Self.window, instance: instance, limit: 1000,
                                           want: 100, minimum: 0, expiresAt: date(day0 + 10))
            }
            #expect(try store.renewLeases(instance: "a", expiresAt: date(day0 + 50)) == 2)
            #expect(try store.leases(instance: "a").map(\.expiresAt) == [date(day0 + 50), date(day0 + 50)])
            #expect(try store.reclaimExpiredLeases(now: date(day0 + 10)) == 0, "expires_at < now: not yet at the instant")
            #expect(try store.reclaimExpiredLeases(now: date(day0 + 11)) == 1)
            #expect(try store.leases(instance: "b") == [])
            #expect(try store.budgetUsage(budgetID: "b1", windowStart: Self.window) == BudgetUsage(spent: 0, leased: 100))
            #expect(try store.reclaimExpiredLeases(now: date(day0 + 100)) == 2)
            #expect(try store.budgetUsage(budgetID: "b1", windowStart: Self.window) == BudgetUsage(spent: 0, leased: 0))
            #expect(try store.budgetUsage(budgetID: "b2", windowStart: Self.window) == BudgetUsage(spent: 0, leased: 0))
            #expect(try store.renewLeases(instance: "a", expiresAt: date(day0 + 500)) == 0)
        }
    }

    @Test("three instances and 24 threads leasing one budget at once never grant more than its limit",
          arguments: StoreBackend.available)
    func concurrentLeases(_ backend: StoreBackend) throws {
        try backend.withStores(3) { stores throws in
            let limit: Int64 = 1_000_000
            let granted = Mutex<[Int64]>([])
            let failures = Mutex<[String]>([])
            onThreads(24) { thread in
                let store = stores[thread % stores.count]
                var mine: [Int64] = []
                do {
                    while true {
                        let grant = try store.acquireLease(budgetID: "b1", windowStart: Self.window, instance: "i\(thread)",
                                                           limit: limit, want: Int64(7_000 + 1_000 * thread), minimum: 2_000,
                                                           expiresAt: Self.later)
                        guard grant.granted > 0 else { break }
                        if grant.usage.spent + grant.usage.leased > limit {
                            failures.withLock { $0.append("over the limit after a grant: \(grant)") }
                        }
                        mine.append(grant.granted)
                    }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
                granted.withLock { $0 += mine }
            }
            #expect(failures.withLock { $0 } == [])
            let total = granted.withLock { $0.reduce(0, +) }
            #expect(total <= limit)
            #expect(total > limit - 2_000, "what is left is below every minimum")
            let usage = try #require(try stores[0].budgetUsage(budgetID: "b1", windowStart: Self.window))
            #expect(usage == BudgetUsage(spent: 0, leased: total))
            let leased = try (0..<24).flatMap { try stores[0].leases(instance: "i\($0)") }.map(\.amount).reduce(0, +)
            #expect(leased == total)
        }
    }

    @Test("instances leasing, settling, releasing, renewing and reclaiming at once keep the books exact",
          arguments: StoreBackend.available)
    func concurrentMix(_ backend: StoreBackend) throws {
        try backend.withStores(3) { stores throws in
            let limit: Int64 = 500_000
            let budgets = ["b1", "b2", "b3"]
            let spent = Mutex<Int64>(0)
            let failures = Mutex<[String]>([])
            onThreads(12) { thread in
                let store = stores[thread % stores.count]
                let instance = "i\(thread % 6)"
                do {
                    for round in 0..<15 {
                        let budget = budgets[(thread + round) % budgets.count]
                        let grant = try store.acquireLease(budgetID: budget, windowStart: Self.window, instance: instance,
                                                           limit: limit, want: 9_000, minimum: 1_000, expiresAt: Self.later)
                        // Spend on every budget in one batch (a request's chain), more than leased now and then.
                        let amount = grant.granted / 2 + Int64(round % 3) * 500
                        let rows = [request("req_\(thread)_\(round)", at: day0 + Int64(round), cost: amount)]
                        try store.appendLedger(rows, settling: budgets.map {
                            LeaseSettlement(budgetID: $0, windowStart: Self.window, instance: instance, amount: amount)
                        })
                        spent.withLock { $0 += amount }
                        try store.releaseLease(budgetID: budget, windowStart: Self.window, instance: instance, amount: 1_000)
                        if round % 5 == 0 { try store.renewLeases(instance: instance, expiresAt: date(day0 + hour + Int64(round))) }
                        if round % 7 == 0 { _ = try store.reclaimExpiredLeases(now: date(day0)) }
                    }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
            #expect(failures.withLock { $0 } == [])
            let leases = try (0..<6).flatMap { try stores[0].leases(instance: "i\($0)") }
            for budget in budgets {
                let usage = try #require(try stores[0].budgetUsage(budgetID: budget, windowStart: Self.window))
                #expect(usage.spent == spent.withLock { $0 }, "every settlement counted once on \(budget)")
                #expect(usage.leased == leases.filter { $0.budgetID == budget }.map(\.amount).reduce(0, +))
                #expect(usage.leased >= 0)
            }
            #expect(try stores[0].ledgerPage(limit: 1000, cursor: nil).rows.count == 12 * 15)
        }
    }

    // MARK: Change feed

    @Test("key and budget mutations append to the change feed, in order, and a refused one does not",
          arguments: StoreBackend.available)
    func changeFeed(_ backend: StoreBackend) throws {
        try backend.withStore { store throws in
            #expect(try store.latestChangeID() == 0)
            #expect(try store.changes(after: 0, limit: 10) == [])
            let org = try store.defaultOrg()
            _ = try store.createTeam(name: "platform", org: nil)
            try store.insertKey(key("key_a", name: "ci", orgID: org.id))
            #expect(throws: StoreError.self) { try store.insertKey(key("key_b", name: "ci", orgID: org.id)) }
            _ = try store.revokeKey("ci", at: date(day0))
            let budget = try store.upsertBudget(Self.budget(subject: "user_1"))
            _ = try store.upsertBudget(Self.budget(subject: "user_1", limit: "1"))
            try store.deleteBudget(budget.id)
            #expect(throws: StoreError.self) { try store.deleteBudget(budget.id) }

            let all = try store.changes(after: 0, limit: 100)
            #expect(all.map { "\($0.kind):\($0.subject)" } == [
                "key:key_a", "key:key_a", "budget:\(budget.id)", "budget:\(budget.id)", "budget:\(budget.id)",
            ])
            #expect(all.map(\.id) == all.map(\.id).sorted() && Set(all.map(\.id)).count == 5)
            #expect(try store.latestChangeID() == all.last?.id)
            #expect(try store.changes(after: all[1].id, limit: 2) == Array(all[2..<4]))
            #expect(try store.changes(after: all[4].id, limit: 10) == [])
            #expect(all.allSatisfy { abs($0.at.timeIntervalSinceNow) < 60 })
        }
    }

    @Test("a reader following the change feed while three instances write misses nothing", arguments: StoreBackend.available)
    func changeFeedUnderConcurrency(_ backend: StoreBackend) throws {
        try backend.withStores(4) { stores throws in
            let orgID = try stores[0].defaultOrg().id
            let writers = 3, perWriter = 30
            let seen = Mutex<[String]>([])
            let failures = Mutex<[String]>([])
            onThreads(writers + 1) { thread in
                do {
                    if thread < writers {
                        for index in 0..<perWriter {
                            try stores[thread].insertKey(key("key_\(thread)_\(index)", name: nil, orgID: orgID))
                        }
                    } else {
                        var last: Int64 = 0
                        let deadline = Date().addingTimeInterval(30)
                        while seen.withLock({ $0.count }) < writers * perWriter && Date() < deadline {
                            let page = try stores[writers].changes(after: last, limit: 7)
                            seen.withLock { $0 += page.map(\.subject) }
                            last = page.last?.id ?? last
                        }
                    }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
            #expect(failures.withLock { $0 } == [])
            let subjects = seen.withLock { $0 }
            #expect(subjects.count == writers * perWriter)
            #expect(Set(subjects) == Set(try stores[0].listKeys().map(\.id)))
        }
    }
}
