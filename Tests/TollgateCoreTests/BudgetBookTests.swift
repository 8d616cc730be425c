import Foundation
import Testing
@testable import TollgateCore

@Suite("Budget book: reservations on chains of budgets that are never overspent")
struct BudgetBookTests {
    let t0: Date
    let utc = TimeZone(identifier: "UTC")!

    init() throws {
        t0 = try budgetInstant("2026-05-10T12:00:00Z")
    }

    // MARK: Reserve, settle, release, expire

    @Test("settling below the reservation charges the actual cost and releases the rest")
    func settleBelowReservation() throws {
        var book = BudgetBook()
        book.upsert(budget("user", limit: .usd(usd("1"))), now: t0)
        let id = try reserved(book.reserve(claim(["user"], usd: "0.30", tokens: 3000), now: t0))
        var snapshot = try #require(book.snapshot(budgetID: "user", now: t0))
        #expect(snapshot.reservedUSD == usd("0.30"))
        #expect(snapshot.reservedTokens == 3000)
        #expect(snapshot.remainingUSD == usd("0.70"))

        let events = book.settle(id, actualUSD: usd("0.12"), actualTokens: 1200, now: t0 + 5)
        #expect(events.isEmpty)
        snapshot = try #require(book.snapshot(budgetID: "user", now: t0 + 5))
        #expect(snapshot.spentUSD == usd("0.12"))
        #expect(snapshot.spentTokens == 1200)
        #expect(snapshot.reservedUSD == .zero)
        #expect(snapshot.reservedTokens == 0)
        #expect(snapshot.remainingUSD == usd("0.88"))
        #expect(book.reservations.isEmpty)
    }

    @Test("a released reservation charges nothing, and a second release or settle is a no-op")
    func release() throws {
        var book = BudgetBook()
        book.upsert(budget("user", limit: .usd(usd("1"))), now: t0)
        let id = try reserved(book.reserve(claim(["user"], usd: "0.40"), now: t0))
        let released = book.release(id)
        let releasedTwice = book.release(id)
        #expect(released)
        #expect(!releasedTwice)
        #expect(book.settle(id, actualUSD: usd("0.40"), actualTokens: 10, now: t0).isEmpty)
        let snapshot = try #require(book.snapshot(budgetID: "user", now: t0))
        #expect(snapshot.spentUSD == .zero)
        #expect(snapshot.reservedUSD == .zero)
        #expect(snapshot.remainingUSD == usd("1"))
    }

    @Test("reservations past their expiry are released, oldest first, and later settlements charge nothing")
    func expiry() throws {
        var book = BudgetBook()
        book.upsert(budget("user", limit: .usd(usd("1"))), now: t0)
        let short1 = try reserved(book.reserve(claim(["user"], usd: "0.10", expiresAt: t0 + 60), now: t0))
        let long = try reserved(book.reserve(claim(["user"], usd: "0.20", expiresAt: t0 + 600), now: t0))
        let short2 = try reserved(book.reserve(claim(["user"], usd: "0.30", expiresAt: t0 + 30), now: t0))

        #expect(book.expire(now: t0 + 29).isEmpty)
        #expect(book.expire(now: t0 + 60) == [short1, short2])
        #expect(book.snapshot(budgetID: "user", now: t0 + 60)?.reservedUSD == usd("0.20"))
        #expect(book.settle(short1, actualUSD: usd("0.10"), actualTokens: 1, now: t0 + 61).isEmpty)
        #expect(book.snapshot(budgetID: "user", now: t0 + 61)?.spentUSD == .zero)

        _ = book.settle(long, actualUSD: usd("0.05"), actualTokens: 1, now: t0 + 62)
        #expect(book.snapshot(budgetID: "user", now: t0 + 62)?.spentUSD == usd("0.05"))
        #expect(book.expire(now: t0 + 10_000).isEmpty)
    }

    @Test("reservation ids are unique")
    func uniqueIDs() throws {
        var book = BudgetBook()
        book.upsert(budget("user", limit: .usd(usd("100"))), now: t0)
        var ids = Set<ReservationID>()
        for _ in 0..<100 {
            let id = try reserved(book.reserve(claim(["user"], usd: "0.01"), now: t0))
            ids.insert(id)
            book.release(id)
        }
        #expect(ids.count == 100)
    }

    // MARK: Chains

    @Test("a full team budget refuses the claim and no budget of the chain changes")
    func allOrNothing() throws {
        var book = BudgetBook()
        book.upsert(budget("key", scope: .key, limit: .usd(usd("10"))), now: t0)
        book.upsert(budget("user", scope: .user, limit: .usd(usd("10"))), now: t0)
        book.upsert(budget("team", scope: .team, limit: .usd(usd("1"))), now: t0)
        book.upsert(budget("org", scope: .org, limit: .usd(usd("100"))), now: t0)
        book.restore(budgetID: "team", spentUSD: usd("0.95"), spentTokens: 9500, now: t0)
        let chain = ["key", "user", "team", "org"]
        _ = try reserved(book.reserve(claim(["user"], usd: "0.50"), now: t0))
        let before = book.snapshots(now: t0)

        guard case .exhausted(let team) = book.reserve(claim(chain, usd: "0.10"), now: t0) else {
            Issue.record("the claim was not refused")
            return
        }
        #expect(team.definition.id == "team")
        #expect(team.definition.limit == .usd(usd("1")))
        #expect(team.spentUSD == usd("0.95"))
        #expect(team.reservedUSD == .zero)
        #expect(team.window.end == (try budgetInstant("2026-06-01T00:00:00Z")))
        #expect(book.snapshots(now: t0) == before)
        #expect(book.reservations.count == 1)

        _ = try reserved(book.reserve(claim(chain, usd: "0.05"), now: t0))
        let after = Dictionary(uniqueKeysWithValues: book.snapshots(now: t0).map { ($0.definition.id, $0) })
        #expect(after["key"]?.reservedUSD == usd("0.05"))
        #expect(after["user"]?.reservedUSD == usd("0.55"))
        #expect(after["team"]?.reservedUSD == usd("0.05"))
        #expect(after["org"]?.reservedUSD == usd("0.05"))
        #expect(after["team"]?.remainingUSD == .zero)
    }

    @Test("the refusal names the first budget of the chain that cannot fit")
    func firstFailing() throws {
        var book = BudgetBook()
        book.upsert(budget("user", limit: .usd(usd("0.05"))), now: t0)
        book.upsert(budget("team", limit: .usd(usd("0.05"))), now: t0)
        guard case .exhausted(let first) = book.reserve(claim(["team", "user"], usd: "0.10"), now: t0) else {
            Issue.record("the claim was not refused")
            return
        }
        #expect(first.definition.id == "team")
    }

    @Test("a chain naming an unknown budget is an error and reserves nothing")
    func unknownBudget() throws {
        var book = BudgetBook()
        book.upsert(budget("user", limit: .usd(usd("1"))), now: t0)
        #expect(book.reserve(claim(["user", "ghost"], usd: "0.10"), now: t0) == .unknownBudget(id: "ghost"))
        #expect(book.snapshot(budgetID: "user", now: t0)?.reservedUSD == .zero)
        #expect(book.reservations.isEmpty)
    }

    @Test("a budget named twice in a chain is reserved once")
    func duplicateInChain() throws {
        var book = BudgetBook()
        book.upsert(budget("user", limit: .usd(usd("1"))), now: t0)
        let id = try reserved(book.reserve(claim(["user", "user"], usd: "0.60"), now: t0))
        #expect(book.snapshot(budgetID: "user", now: t0)?.reservedUSD == usd("0.60"))
        _ = book.settle(id, actualUSD: usd("0.60"), actualTokens: 0, now: t0)
        #expect(book.snapshot(budgetID: "user", now: t0)?.spentUSD == usd("0.60"))
    }

    @Test("the header shows the smallest USD remainder on the chain, absent when only token budgets apply")
    func smallestRemaining() throws {
        var book = BudgetBook()
        book.upsert(budget("user", limit: .usd(usd("10"))), now: t0)
        book.upsert(budget("team", limit: .usd(usd("3"))), now: t0)
        book.upsert(budget("tokens", limit: .tokens(100)), now: t0)
        _ = try reserved(book.reserve(claim(["user", "team", "tokens"], usd: "0.25", tokens: 10), now: t0))
        #expect(book.smallestRemainingUSD(budgetIDs: ["user", "team", "tokens"], now: t0) == usd("2.75"))
        #expect(book.smallestRemainingUSD(budgetIDs: ["tokens"], now: t0) == nil)
        #expect(book.smallestRemainingUSD(budgetIDs: [], now: t0) == nil)
    }

    // MARK: Periods

    @Test("a window that ends between reserve and settle: the cost belongs to the old window, the new one starts clean")
    func rolloverBetweenReserveAndSettle() throws {
        var book = BudgetBook()
        book.upsert(budget("user", limit: .usd(usd("1")), period: .day), now: t0)
        let lateEvening = try budgetInstant("2026-05-10T23:59:00Z")
        let afterMidnight = try budgetInstant("2026-05-11T00:10:00Z")
        _ = book.settle(try reserved(book.reserve(claim(["user"], usd: "0.30"), now: t0)),
                        actualUSD: usd("0.30"), actualTokens: 0, now: t0)
        let old = try reserved(book.reserve(claim(["user"], usd: "0.60"), now: lateEvening))
        #expect(book.snapshot(budgetID: "user", now: lateEvening)?.remainingUSD == usd("0.10"))

        // The new day has its whole limit: the old day's reservation does not hold it.
        let fresh = try reserved(book.reserve(claim(["user"], usd: "1"), now: afterMidnight))
        var snapshot = try #require(book.snapshot(budgetID: "user", now: afterMidnight))
        #expect(snapshot.window.start == (try budgetInstant("2026-05-11T00:00:00Z")))
        #expect(snapshot.spentUSD == .zero)
        #expect(snapshot.reservedUSD == usd("1"))

        #expect(book.settle(old, actualUSD: usd("0.50"), actualTokens: 0, now: afterMidnight + 60).isEmpty)
        snapshot = try #require(book.snapshot(budgetID: "user", now: afterMidnight + 60))
        #expect(snapshot.spentUSD == .zero)
        #expect(snapshot.reservedUSD == usd("1"))

        _ = book.settle(fresh, actualUSD: usd("0.70"), actualTokens: 0, now: afterMidnight + 120)
        #expect(book.snapshot(budgetID: "user", now: afterMidnight + 120)?.spentUSD == usd("0.70"))
    }

    @Test("a settlement after the end of the window rolls it forward first")
    func settleAfterWindowEnd() throws {
        var book = BudgetBook()
        book.upsert(budget("user", limit: .usd(usd("1")), period: .day), now: t0)
        let id = try reserved(book.reserve(claim(["user"], usd: "0.60"), now: t0))
        let nextDay = t0 + 86_400
        #expect(book.settle(id, actualUSD: usd("0.60"), actualTokens: 0, now: nextDay).isEmpty)
        let snapshot = try #require(book.snapshot(budgetID: "user", now: nextDay))
        #expect(snapshot.spentUSD == .zero)
        #expect(snapshot.reservedUSD == .zero)
    }

    @Test("a spent budget has its whole limit again when its period resets, read or written")
    func resetOnTime() throws {
        var book = BudgetBook()
        book.upsert(budget("user", limit: .usd(usd("1")), period: .week), now: t0)
        book.restore(budgetID: "user", spentUSD: usd("1"), spentTokens: 0, now: t0)
        guard case .exhausted(let full) = book.reserve(claim(["user"], usd: "0.01"), now: t0) else {
            Issue.record("a full budget admitted a claim")
            return
        }
        let monday = try #require(full.window.end)
        #expect(monday == (try budgetInstant("2026-05-11T00:00:00Z")))

        let read = try #require(book.snapshot(budgetID: "user", now: monday))
        #expect(read.spentUSD == .zero)
        #expect(read.window.start == monday)
        _ = try reserved(book.reserve(claim(["user"], usd: "1"), now: monday))
    }

    @Test("a total budget never resets")
    func totalNeverResets() throws {
        var book = BudgetBook()
        book.upsert(budget("user", limit: .usd(usd("1")), period: .total), now: t0)
        book.restore(budgetID: "user", spentUSD: usd("0.90"), spentTokens: 0, now: t0)
        let later = t0 + 400 * 86_400
        #expect(book.snapshot(budgetID: "user", now: later)?.spentUSD == usd("0.90"))
        #expect(book.snapshot(budgetID: "user", now: later)?.window.end == nil)
        guard case .exhausted = book.reserve(claim(["user"], usd: "0.20"), now: later) else {
            Issue.record("a total budget reset")
            return
        }
    }

    // MARK: Soft threshold

    @Test("the soft threshold is announced exactly once per window, when spend reaches it")
    func softThresholdOncePerWindow() throws {
        var book = BudgetBook()
        let threshold = try #require(PartsPerMillion(decimalString: "0.8"))
        book.upsert(budget("user", limit: .usd(usd("1")), period: .day, softThreshold: threshold), now: t0)
        func spend(_ amount: String, at time: Date) throws -> [BudgetEvent] {
            let id = try reserved(book.reserve(claim(["user"], usd: amount), now: time))
            return book.settle(id, actualUSD: usd(amount), actualTokens: 0, now: time)
        }
        #expect(try spend("0.5", at: t0).isEmpty)
        #expect(try spend("0.299999999", at: t0 + 1).isEmpty)
        #expect(try spend("0.000000001", at: t0 + 2) == [.softThresholdCrossed(budgetID: "user", at: t0 + 2)])
        #expect(try spend("0.1", at: t0 + 3).isEmpty)
        #expect(book.snapshot(budgetID: "user", now: t0 + 3)?.softThresholdCrossedAt == t0 + 2)

        let tomorrow = t0 + 86_400
        #expect(book.snapshot(budgetID: "user", now: tomorrow)?.softThresholdCrossedAt == nil)
        #expect(try spend("0.9", at: tomorrow) == [.softThresholdCrossed(budgetID: "user", at: tomorrow)])
        #expect(try spend("0.05", at: tomorrow + 1).isEmpty)
    }

    @Test("a restart that restores this window's crossing does not announce it again; last month's does not count")
    func softThresholdRestored() throws {
        var book = BudgetBook()
        let threshold = try #require(PartsPerMillion(decimalString: "0.5"))
        book.upsert(budget("user", limit: .usd(usd("1")), softThreshold: threshold), now: t0)
        book.restore(budgetID: "user", spentUSD: usd("0.6"), spentTokens: 0, softThresholdCrossedAt: t0 - 60, now: t0)
        let id = try reserved(book.reserve(claim(["user"], usd: "0.1"), now: t0))
        #expect(book.settle(id, actualUSD: usd("0.1"), actualTokens: 0, now: t0).isEmpty)
        #expect(book.snapshot(budgetID: "user", now: t0)?.softThresholdCrossedAt == t0 - 60)

        let lastMonth = try budgetInstant("2026-04-30T12:00:00Z")
        book.restore(budgetID: "user", spentUSD: usd("0.6"), spentTokens: 0, softThresholdCrossedAt: lastMonth, now: t0)
        let next = try reserved(book.reserve(claim(["user"], usd: "0.1"), now: t0))
        #expect(book.settle(next, actualUSD: usd("0.1"), actualTokens: 0, now: t0)
                == [.softThresholdCrossed(budgetID: "user", at: t0)])
    }

    // MARK: Tokens, grace, modes

    @Test("a token budget counts tokens, not dollars, and reports no USD remainder")
    func tokenBudget() throws {
        var book = BudgetBook()
        let threshold = try #require(PartsPerMillion(decimalString: "0.25"))
        book.upsert(budget("user", limit: .tokens(1000), softThreshold: threshold), now: t0)
        let first = try reserved(book.reserve(claim(["user"], usd: "50", tokens: 600), now: t0))
        guard case .exhausted(let full) = book.reserve(claim(["user"], usd: "0", tokens: 401), now: t0) else {
            Issue.record("a token budget admitted more tokens than its limit")
            return
        }
        #expect(full.reservedTokens == 600)
        #expect(full.remainingUSD == nil)
        #expect(full.remainingTokens == 400)
        let second = try reserved(book.reserve(claim(["user"], usd: "0", tokens: 400), now: t0))

        #expect(book.settle(first, actualUSD: usd("20"), actualTokens: 250, now: t0)
                == [.softThresholdCrossed(budgetID: "user", at: t0)])
        book.release(second)
        let snapshot = try #require(book.snapshot(budgetID: "user", now: t0))
        #expect(snapshot.spentTokens == 250)
        #expect(snapshot.spentUSD == usd("20"))
        #expect(snapshot.remainingTokens == 750)
    }

    @Test("grace is usable only by downgraded claims, and never beyond the cap plus grace")
    func grace() throws {
        var book = BudgetBook()
        book.upsert(budget("user", limit: .usd(usd("1")), onExhaust: .downgrade, graceUSD: usd("0.2")), now: t0)
        book.restore(budgetID: "user", spentUSD: usd("0.9"), spentTokens: 0, now: t0)

        guard case .exhausted = book.reserve(claim(["user"], usd: "0.2"), now: t0) else {
            Issue.record("a claim that was not downgraded used the grace")
            return
        }
        _ = try reserved(book.reserve(claim(["user"], usd: "0.2", downgraded: true), now: t0))
        guard case .exhausted = book.reserve(claim(["user"], usd: "0.2", downgraded: true), now: t0) else {
            Issue.record("a downgraded claim passed the cap plus grace")
            return
        }
        _ = try reserved(book.reserve(claim(["user"], usd: "0.1", downgraded: true), now: t0))
        guard case .exhausted = book.reserve(claim(["user"], usd: "0.000000001", downgraded: true), now: t0) else {
            Issue.record("a downgraded claim passed the cap plus grace by a nano-dollar")
            return
        }
        let snapshot = try #require(book.snapshot(budgetID: "user", now: t0))
        #expect(snapshot.spentUSD + snapshot.reservedUSD == usd("1.2"))
        #expect(snapshot.remainingUSD == .zero)
    }

    @Test("an estimate budget reserves the estimate, a strict one the worst case, and an overshoot is reported")
    func estimateMode() throws {
        var book = BudgetBook()
        book.upsert(budget("user", limit: .usd(usd("1")), mode: .estimate), now: t0)
        book.upsert(budget("team", limit: .usd(usd("10")), mode: .strict), now: t0)
        book.restore(budgetID: "user", spentUSD: usd("0.85"), spentTokens: 0, now: t0)
        let estimated = BudgetBook.Claim(budgetIDs: ["user", "team"], usd: usd("0.50"), tokens: 5000,
                                         estimate: BudgetCharge(usd: usd("0.10"), tokens: 1000),
                                         expiresAt: t0 + 600)
        let id = try reserved(book.reserve(estimated, now: t0))
        #expect(book.snapshot(budgetID: "user", now: t0)?.reservedUSD == usd("0.10"))
        #expect(book.snapshot(budgetID: "team", now: t0)?.reservedUSD == usd("0.50"))

        let events = book.settle(id, actualUSD: usd("0.35"), actualTokens: 3500, now: t0)
        #expect(events == [.overspent(budgetID: "user", by: .usd(usd("0.20")))])
        #expect(book.snapshot(budgetID: "user", now: t0)?.remainingUSD == .zero)
        #expect(book.snapshot(budgetID: "team", now: t0)?.spentUSD == usd("0.35"))
    }

    // MARK: Definitions

    @Test("a new limit keeps the window's spend; a new period starts a fresh window")
    func upsert() throws {
        var book = BudgetBook()
        book.upsert(budget("user", limit: .usd(usd("1")), period: .month), now: t0)
        let open = try reserved(book.reserve(claim(["user"], usd: "0.4"), now: t0))
        book.restore(budgetID: "user", spentUSD: usd("0.5"), spentTokens: 0, now: t0)

        book.upsert(budget("user", limit: .usd(usd("2")), period: .month), now: t0)
        var snapshot = try #require(book.snapshot(budgetID: "user", now: t0))
        #expect(snapshot.spentUSD == usd("0.5"))
        #expect(snapshot.reservedUSD == usd("0.4"))
        #expect(snapshot.remainingUSD == usd("1.1"))

        book.upsert(budget("user", limit: .usd(usd("2")), period: .day), now: t0)
        snapshot = try #require(book.snapshot(budgetID: "user", now: t0))
        #expect(snapshot.spentUSD == .zero)
        #expect(snapshot.reservedUSD == .zero)
        #expect(snapshot.window.end == (try budgetInstant("2026-05-11T00:00:00Z")))
        #expect(book.settle(open, actualUSD: usd("0.4"), actualTokens: 0, now: t0).isEmpty)
        #expect(book.snapshot(budgetID: "user", now: t0)?.reservedUSD == .zero)
    }

    @Test("a removed budget drops out of open reservations; recreated, it is not charged by them")
    func removeAndRecreate() throws {
        var book = BudgetBook()
        book.upsert(budget("user", limit: .usd(usd("1"))), now: t0)
        book.upsert(budget("team", limit: .usd(usd("1"))), now: t0)
        let id = try reserved(book.reserve(claim(["user", "team"], usd: "0.3"), now: t0))
        book.remove(id: "user")
        #expect(book.snapshot(budgetID: "user", now: t0) == nil)
        book.upsert(budget("user", limit: .usd(usd("1"))), now: t0)

        _ = book.settle(id, actualUSD: usd("0.2"), actualTokens: 0, now: t0)
        #expect(book.snapshot(budgetID: "user", now: t0)?.spentUSD == .zero)
        #expect(book.snapshot(budgetID: "user", now: t0)?.reservedUSD == .zero)
        #expect(book.snapshot(budgetID: "team", now: t0)?.spentUSD == usd("0.2"))
        let restored = book.restore(budgetID: "ghost", spentUSD: .zero, spentTokens: 0, now: t0)
        #expect(!restored)
    }

    // MARK: Salary and fractions

    @Test("half of a $180,000 salary is $7,500 a month exactly")
    func salary() throws {
        let half = try #require(PartsPerMillion(decimalString: "0.5"))
        let template = SalaryTemplate(annualSalaryUSD: usd("180000"), share: half)
        #expect(template.monthlyLimitUSD == usd("7500"))
        let whole = try #require(PartsPerMillion(decimalString: "1"))
        #expect(SalaryTemplate.monthlyLimitUSD(annualSalaryUSD: usd("1"), share: whole) == usd("0.083333333"))
        // 18 nano-dollars ÷ 12 = 1.5, rounded half up.
        #expect(SalaryTemplate.monthlyLimitUSD(annualSalaryUSD: Nanodollars(18), share: whole) == Nanodollars(2))
    }

    @Test("shares are read from decimal text in exact millionths, 0…1 only")
    func partsPerMillion() {
        #expect(PartsPerMillion(decimalString: "0.8")?.value == 800_000)
        #expect(PartsPerMillion(decimalString: "0.000001")?.value == 1)
        #expect(PartsPerMillion(decimalString: "1")?.value == 1_000_000)
        #expect(PartsPerMillion(decimalString: "1.0")?.value == 1_000_000)
        #expect(PartsPerMillion(decimalString: "0.8")?.decimalString == "0.8")
        #expect(PartsPerMillion(decimalString: "0.125")?.decimalString == "0.125")
        for refused in ["1.5", "0.0000001", "", "0.", "-0.5", "0,5", "1e-1", "99999999"] {
            #expect(PartsPerMillion(decimalString: refused) == nil, "\(refused)")
        }
    }

    // MARK: Property

    @Test("10,000 random claims, settlements, releases and expiries never overspend a strict chain")
    func randomOperations() throws {
        var random = SplitMix64(seed: 0x7011_6A7E)
        var book = BudgetBook()
        let userLimit = usd("3")
        let tokenLimit = 200_000
        book.upsert(budget("user", limit: .usd(userLimit), period: .day), now: t0)
        book.upsert(budget("tokens", limit: .tokens(tokenLimit), period: .day), now: t0)
        let chain = ["user", "tokens"]
        var open: [ReservationID: (charge: BudgetCharge, window: BudgetWindow)] = [:]
        var expected: [BudgetWindow: BudgetCharge] = [:]
        var now = t0
        var admitted = 0, refused = 0

        for _ in 0..<10_000 {
            now += Double(random.next(below: 80))
            switch random.next(below: 10) {
            case 0..<5:
                let amount = Nanodollars(Int64(random.next(below: 30_000_000)))
                let tokens = Int(random.next(below: 2_000))
                let request = BudgetBook.Claim(budgetIDs: chain, usd: amount, tokens: tokens,
                                               expiresAt: now + Double(random.next(below: 600)))
                switch book.reserve(request, now: now) {
                case .reserved(let id):
                    admitted += 1
                    let window = try #require(book.snapshot(budgetID: "user", now: now)).window
                    open[id] = (BudgetCharge(usd: amount, tokens: tokens), window)
                case .exhausted:
                    refused += 1
                case .needsLease(let needs):
                    Issue.record("no budget is shared here, yet \(needs) needs a lease")
                case .unknownBudget(let id):
                    Issue.record("unknown budget \(id)")
                }
            case 5..<8:
                guard let id = open.keys.min() else { continue }
                guard let held = open.removeValue(forKey: id) else { continue }
                let actual = BudgetCharge(usd: Nanodollars(Int64(random.next(below: UInt64(held.charge.usd.value) + 1))),
                                          tokens: Int(random.next(below: UInt64(held.charge.tokens) + 1)))
                let current = try #require(book.snapshot(budgetID: "user", now: now)).window
                _ = book.settle(id, actualUSD: actual.usd, actualTokens: actual.tokens, now: now)
                if current == held.window {
                    let sum = expected[current, default: BudgetCharge(usd: .zero, tokens: 0)]
                    expected[current] = BudgetCharge(usd: sum.usd + actual.usd, tokens: sum.tokens + actual.tokens)
                }
            case 8:
                guard let id = open.keys.randomElement(using: &random) else { continue }
                open[id] = nil
                let released = book.release(id)
                #expect(released)
            default:
                for id in book.expire(now: now) {
                    let wasOpen = open.removeValue(forKey: id) != nil
                    #expect(wasOpen)
                }
            }

            let user = try #require(book.snapshot(budgetID: "user", now: now))
            let tokens = try #require(book.snapshot(budgetID: "tokens", now: now))
            let spent = expected[user.window, default: BudgetCharge(usd: .zero, tokens: 0)]
            let held = open.values.filter { $0.window == user.window }
            #expect(user.spentUSD <= userLimit)
            #expect(tokens.spentTokens <= tokenLimit)
            #expect(user.spentUSD + user.reservedUSD <= userLimit)
            #expect(user.spentUSD == spent.usd)
            #expect(tokens.spentTokens == spent.tokens)
            #expect(user.reservedUSD == held.reduce(.zero) { $0 + $1.charge.usd })
            #expect(tokens.reservedTokens == held.reduce(0) { $0 + $1.charge.tokens })
            #expect(book.reservations.count == open.count)
        }
        #expect(admitted > 1000)
        #expect(refused > 100)
        #expect(expected.count >= 5, "the run crossed several day boundaries")
    }

    // MARK: Helpers

    private func budget(_ id: String, scope: BudgetScope = .user, limit: BudgetLimit, period: BudgetPeriod = .month,
                        mode: BudgetMode = .strict, onExhaust: ExhaustAction = .reject,
                        softThreshold: PartsPerMillion? = nil, graceUSD: Nanodollars = .zero) -> BudgetDefinition {
        BudgetDefinition(id: id, scope: scope, subjectID: "\(scope.rawValue)_\(id)", subjectName: id, limit: limit,
                         period: period, timeZone: utc, mode: mode, onExhaust: onExhaust,
                         softThreshold: softThreshold, graceUSD: graceUSD)
    }

    private func claim(_ chain: [String], usd amount: String, tokens: Int = 0, downgraded: Bool = false,
                       expiresAt: Date? = nil) -> BudgetBook.Claim {
        BudgetBook.Claim(budgetIDs: chain, usd: usd(amount), tokens: tokens, downgraded: downgraded,
                         expiresAt: expiresAt ?? t0 + 3600)
    }

    private func usd(_ text: String) -> Nanodollars {
        Nanodollars(decimalString: text)!
    }

    private func reserved(_ decision: ReserveDecision, sourceLocation: SourceLocation = #_sourceLocation) throws
        -> ReservationID {
        guard case .reserved(let id) = decision else {
            Issue.record("expected a reservation, got \(decision)", sourceLocation: sourceLocation)
            throw BudgetTestFailure()
        }
        return id
    }
}

private struct BudgetTestFailure: Error {}
