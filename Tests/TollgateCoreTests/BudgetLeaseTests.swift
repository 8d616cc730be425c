import Foundation
import Testing
@testable import TollgateCore

@Suite("Budgets shared by a fleet: each instance spends only from its lease")
struct BudgetLeaseTests {
    let t0: Date
    let utc = TimeZone(identifier: "UTC")!

    init() throws {
        t0 = try budgetInstant("2026-05-10T12:00:00Z")
    }

    @Test("a shared budget admits nothing beyond its lease; a grant lets the claim through; spend is owed to the store")
    func leaseLifecycle() throws {
        var book = BudgetBook()
        book.upsert(definition(limit: "1"), now: t0)
        book.share(budgetID: "u", sharedSpent: usd("0.25").value, now: t0)
        #expect(book.snapshot(budgetID: "u", now: t0)?.spentUSD == usd("0.25"))

        guard case .needsLease(let needs) = book.reserve(claim("0.10"), now: t0) else {
            Issue.record("expected a lease to be needed")
            return
        }
        #expect(needs == [LeaseNeed(budgetID: "u", windowStart: try budgetInstant("2026-05-01T00:00:00Z"),
                                    limit: usd("1").value, missing: usd("0.10").value, unclaimed: usd("0.75").value,
                                    charge: usd("0.10").value)])
        #expect(book.reservations.isEmpty)

        book.leaseGranted(budgetID: "u", windowStart: needs[0].windowStart, amount: usd("0.30").value,
                          sharedSpent: usd("0.40").value, now: t0)
        #expect(book.snapshot(budgetID: "u", now: t0)?.spentUSD == usd("0.40"))  // the fleet spent more meanwhile
        let first = try reserved(book.reserve(claim("0.10"), now: t0))
        let second = try reserved(book.reserve(claim("0.15"), now: t0))
        // 0.25 reserved of 0.30 held: a third 0.10 needs 0.05 more
        guard case .needsLease(let more) = book.reserve(claim("0.10"), now: t0) else {
            Issue.record("expected a lease to be needed")
            return
        }
        #expect(more.map(\.missing) == [usd("0.05").value])
        #expect(book.releasable(budgetID: "u", now: t0) == usd("0.05").value)

        let events = book.settle(first, actualUSD: usd("0.04"), actualTokens: 10, now: t0)
        #expect(events == [.spentOnLease(budgetID: "u", windowStart: needs[0].windowStart, amount: usd("0.04").value)])
        #expect(book.lease(budgetID: "u") == FleetLease(held: usd("0.30").value, uncommitted: usd("0.04").value, lastClaimAt: t0))
        #expect(book.releasable(budgetID: "u", now: t0) == usd("0.11").value)

        // the writer commits the 0.04: it leaves the lease and the uncommitted spend alike
        #expect(book.leaseCommitted(budgetID: "u", windowStart: needs[0].windowStart, amount: usd("0.04").value) == usd("0.04").value)
        #expect(book.lease(budgetID: "u") == FleetLease(held: usd("0.26").value, uncommitted: 0, lastClaimAt: t0))
        #expect(book.snapshot(budgetID: "u", now: t0)?.spentUSD == usd("0.44"))

        book.leaseReleased(budgetID: "u", windowStart: needs[0].windowStart, amount: book.releasable(budgetID: "u", now: t0))
        #expect(book.lease(budgetID: "u")?.held == usd("0.15").value)  // what `second` still holds
        book.release(second)
        book.leaseLost(budgetID: "u")
        guard case .needsLease = book.reserve(claim("0.01"), now: t0) else {
            Issue.record("a lost lease admits nothing")
            return
        }
    }

    @Test("a claim over the limit is exhausted, not a lease request; a new window starts with no lease")
    func limitAndWindow() throws {
        var book = BudgetBook()
        book.upsert(definition(limit: "1"), now: t0)
        book.share(budgetID: "u", sharedSpent: usd("0.95").value, now: t0)
        guard case .exhausted = book.reserve(claim("0.10"), now: t0) else {
            Issue.record("expected exhausted")
            return
        }
        let window = try budgetInstant("2026-05-01T00:00:00Z")
        book.leaseGranted(budgetID: "u", windowStart: window, amount: usd("0.05").value, sharedSpent: nil, now: t0)
        _ = try reserved(book.reserve(claim("0.05"), now: t0))

        let june = try budgetInstant("2026-06-02T00:00:00Z")
        guard case .needsLease(let needs) = book.reserve(claim("0.05"), now: june) else {
            Issue.record("the new window needs its own lease")
            return
        }
        #expect(needs.first?.windowStart == (try budgetInstant("2026-06-01T00:00:00Z")))
        // a grant for the old window is ignored
        book.leaseGranted(budgetID: "u", windowStart: window, amount: usd("1").value, sharedSpent: nil, now: june)
        #expect(book.lease(budgetID: "u")?.held == 0)
    }

    /// The store's side of the protocol, as PostgreSQL does it in one transaction per call.
    struct SharedUsage {
        let limit: Int64
        var spent: Int64 = 0
        var leased: [Int: Int64] = [:]

        mutating func acquire(instance: Int, want: Int64, minimum: Int64) -> Int64 {
            let available = limit - spent - leased.values.reduce(0, +)
            let granted = min(want, available)
            guard granted >= minimum, granted > 0 else { return 0 }
            leased[instance, default: 0] += granted
            return granted
        }

        mutating func commit(instance: Int, amount: Int64) -> Int64 {
            spent += amount
            let moved = min(amount, leased[instance] ?? 0)
            leased[instance, default: 0] -= moved
            return moved
        }

        mutating func release(instance: Int, amount: Int64) {
            leased[instance, default: 0] -= min(amount, leased[instance] ?? 0)
        }
    }

    @Test("three instances under random load never spend past the cap together, and use almost all of it")
    func fleetNeverOverspends() throws {
        var generator = SplitMix64(seed: 42)
        let limit = usd("1")
        var usage = SharedUsage(limit: limit.value)
        var books = (0..<3).map { _ in BudgetBook() }
        for index in books.indices {
            books[index].upsert(definition(limit: "1"), now: t0)
            books[index].share(budgetID: "u", sharedSpent: 0, now: t0)
        }
        let window = try budgetInstant("2026-05-01T00:00:00Z")
        var open: [(Int, ReservationID, Int64)] = []
        var owed = [Int64](repeating: 0, count: 3)
        var refused = 0
        for step in 0..<20_000 {
            let instance = Int(generator.next(below: 3))
            switch generator.next(below: 10) {
            case 0..<5:  // a request: worst case 1–3 mUSD
                let worst = Int64(1_000_000 + generator.next(below: 2_000_000))
                let request = BudgetBook.Claim(budgetIDs: ["u"], usd: Nanodollars(worst), tokens: 0, expiresAt: t0 + 3600)
                var decision = books[instance].reserve(request, now: t0)
                if case .needsLease(let needs) = decision, let need = needs.first {
                    // the gateway's own slice rule: it shrinks as the budget nears its cap
                    let want = need.slice(for: need.missing)
                    let granted = usage.acquire(instance: instance, want: want, minimum: need.missing)
                    books[instance].leaseGranted(budgetID: "u", windowStart: window, amount: granted,
                                                 sharedSpent: usage.spent, now: t0)
                    decision = books[instance].reserve(request, now: t0)
                }
                if case .reserved(let id) = decision { open.append((instance, id, worst)) } else { refused += 1 }
            case 5..<8:  // a request ends, costing up to its worst case
                guard !open.isEmpty else { continue }
                let (owner, id, worst) = open.remove(at: Int(generator.next(below: UInt64(open.count))))
                let actual = Int64(generator.next(below: UInt64(worst + 1)))
                for event in books[owner].settle(id, actualUSD: Nanodollars(actual), actualTokens: 0, now: t0) {
                    if case .spentOnLease(_, _, let amount) = event { owed[owner] += amount }
                }
            case 8:  // the instance's ledger writer commits its batch
                let moved = usage.commit(instance: instance, amount: owed[instance])
                #expect(books[instance].leaseCommitted(budgetID: "u", windowStart: window, amount: owed[instance]) == moved)
                owed[instance] = 0
            default:  // an idle instance gives back what it does not need
                let spare = books[instance].releasable(budgetID: "u", now: t0)
                usage.release(instance: instance, amount: spare)
                books[instance].leaseReleased(budgetID: "u", windowStart: window, amount: spare)
            }
            // the invariant: the fleet's spend, committed or not, never passes the cap
            #expect(usage.spent + owed.reduce(0, +) <= limit.value, "step \(step)")
            #expect(usage.spent + usage.leased.values.reduce(0, +) <= limit.value)
        }
        for index in 0..<3 { _ = usage.commit(instance: index, amount: owed[index]) }
        #expect(usage.spent <= limit.value)
        #expect(usage.spent >= limit.value * 9 / 10, "at least 90 % of the cap is usable: \(usage.spent)")
        #expect(refused > 100)
    }

    // MARK: Helpers

    private func definition(limit: String) -> BudgetDefinition {
        BudgetDefinition(id: "u", scope: .user, subjectID: "user_u", subjectName: "u", limit: .usd(usd(limit)),
                         period: .month, timeZone: utc, mode: .strict, onExhaust: .reject)
    }

    private func claim(_ amount: String) -> BudgetBook.Claim {
        BudgetBook.Claim(budgetIDs: ["u"], usd: usd(amount), tokens: 0, expiresAt: t0 + 3600)
    }

    private func usd(_ text: String) -> Nanodollars { Nanodollars(decimalString: text)! }

    private func reserved(_ decision: ReserveDecision, sourceLocation: SourceLocation = #_sourceLocation) throws -> ReservationID {
        guard case .reserved(let id) = decision else {
            Issue.record("expected a reservation, got \(decision)", sourceLocation: sourceLocation)
            throw LeaseTestFailure()
        }
        return id
    }
}

private struct LeaseTestFailure: Error {}
