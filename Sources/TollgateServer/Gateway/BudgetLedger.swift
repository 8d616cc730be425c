import Foundation
import Logging
import Synchronization
import TollgateCore
import TollgateStore

/// The gateway's budgets: the book of live spend and reservations (in memory, behind one lock), the
/// index from a key's chain (key, user, team, org) to its budgets, and what happens on a soft-threshold
/// crossing. Spend is rebuilt from the ledger at start and when a budget is (re)defined: the ledger is the
/// only record of what was spent, so a crash cannot leave budgets and ledger disagreeing, and reservations
/// of a dead process are simply gone.
final class BudgetLedger: Sendable {
    private struct State {
        var book = BudgetBook()
        /// A subject → the budgets on it.
        var bySubject: [Subject: [BudgetDefinition]] = [:]
        var records: [String: BudgetRecord] = [:]
    }

    private let state = Mutex(State())
    /// How many budgets are defined: a gateway without budgets pays no lock on the request path.
    private let defined = Atomic<Int>(0)
    private let store: any Store
    private let ledger: LedgerWriter
    private let webhook: WebhookSender?
    private let logger: Logger
    /// Store writes and webhooks leave the event loop through this queue.
    private let events = DispatchQueue(label: "tollgate.budget-events")
    /// Set when budgets are shared by a fleet of instances on one PostgreSQL.
    let fleet: FleetBudgets?

    init(store: any Store, ledger: LedgerWriter, webhook: WebhookSender?, fleet: FleetBudgets? = nil, logger: Logger) {
        self.store = store
        self.ledger = ledger
        self.webhook = webhook
        self.fleet = fleet
        self.logger = logger
        if fleet != nil {
            ledger.onCommitted { [weak self] settlements in self?.committed(settlements) }
        }
    }

    // MARK: Definitions

    /// Loads every stored budget and rebuilds its current window's spend from the ledger.
    func load(now: Date) throws {
        for record in try store.listBudgets() { try install(record, now: now) }
    }

    /// Stores a budget (upsert on scope, subject, model, period) and puts it in force with the spend its
    /// subject already has in the current window.
    @discardableResult
    func define(_ record: BudgetRecord, now: Date) throws -> BudgetRecord {
        let stored = try store.upsertBudget(record)
        try install(stored, now: now)
        return stored
    }

    func remove(id: String) throws {
        try store.deleteBudget(id)
        forget(id: id)
    }

    /// Another instance changed or deleted the budget: take it as the store has it now.
    func reload(id: String, now: Date) throws {
        if let record = try store.listBudgets().first(where: { $0.id == id }) {
            try install(record, now: now)
        } else {
            forget(id: id)
        }
    }

    private func forget(id: String) {
        state.withLock { state in
            state.book.remove(id: id)
            if let record = state.records.removeValue(forKey: id) {
                state.bySubject[Subject(scope: record.scope, id: record.subjectID)]?.removeAll { $0.id == id }
            }
            defined.store(state.records.count, ordering: .relaxed)
        }
    }

    private func install(_ record: BudgetRecord, now: Date) throws {
        let definition = try BudgetLedger.definition(of: record)
        // Rows settled but not yet written would be missed by the sum below.
        ledger.flush()
        let window = definition.window(containing: now)
        let spent = try store.spendSince(window.start, scope: record.scope, subjectID: record.subjectID, model: record.model)
        // Shared by a fleet: the window's spend is the store's shared counter, which every instance's ledger
        // batches move (the ledger sum, for a window that started before the budget had a counter).
        var shared: Int64?
        if fleet != nil {
            shared = try store.budgetUsage(budgetID: definition.id, windowStart: window.start)?.spent
                ?? (definition.limit.isUSD ? spent.usd.value : Int64(spent.tokens))
        }
        state.withLock { state in
            state.book.upsert(definition, now: now)
            state.book.restore(budgetID: definition.id, spentUSD: spent.usd, spentTokens: spent.tokens,
                               softThresholdCrossedAt: record.softThresholdCrossedAt, now: now)
            if let shared, state.book.lease(budgetID: definition.id) == nil {
                state.book.share(budgetID: definition.id, sharedSpent: shared, now: now)
            }
            let subject = Subject(scope: record.scope, id: record.subjectID)
            state.bySubject[subject, default: []].removeAll { $0.id == definition.id }
            state.bySubject[subject, default: []].append(definition)
            state.records[definition.id] = record
            defined.store(state.records.count, ordering: .relaxed)
        }
    }

    /// One `TimeZone` per identifier: each one made anew holds its own copy of the zone's rules, kilobytes
    /// per budget for 10,000 budgets that nearly all say "UTC".
    private static let timeZones = Mutex<[String: TimeZone]>([:])

    static func timeZone(_ identifier: String) -> TimeZone? {
        if let zone = timeZones.withLock({ $0[identifier] }) { return zone }
        guard let zone = TimeZone(identifier: identifier) else { return nil }
        timeZones.withLock { $0[identifier] = zone }
        return zone
    }

    static func definition(of record: BudgetRecord) throws -> BudgetDefinition {
        guard let scope = BudgetScope(rawValue: record.scope), let period = BudgetPeriod(rawValue: record.period),
              let mode = BudgetMode(rawValue: record.mode), let onExhaust = ExhaustAction(rawValue: record.onExhaust),
              let timeZone = timeZone(record.timeZone) else {
            throw StoreError.invalid("budget \(record.id) has an unknown scope, period, mode, action or time zone")
        }
        let limit: BudgetLimit
        if let usd = record.limitUSD { limit = .usd(usd) } else if let tokens = record.limitTokens { limit = .tokens(tokens) } else {
            throw StoreError.invalid("budget \(record.id) has no limit")
        }
        let salary = record.annualSalaryUSD.flatMap { annual in
            record.salarySharePPM.flatMap(PartsPerMillion.init).map { SalaryTemplate(annualSalaryUSD: annual, share: $0) }
        }
        return BudgetDefinition(id: record.id, scope: scope, subjectID: record.subjectID, subjectName: record.subjectName,
                                model: record.model, limit: limit, period: period, timeZone: timeZone, mode: mode,
                                onExhaust: onExhaust, softThreshold: record.softThresholdPPM.flatMap(PartsPerMillion.init),
                                graceUSD: record.graceUSD, salary: salary)
    }

    // MARK: The request path

    /// The budgets that bind a request of `key` served by `model`: every budget on the key, its user,
    /// team and org, for all models or for this one.
    func chain(for key: ResolvedKey, model: String) -> [BudgetDefinition] {
        guard defined.load(ordering: .relaxed) > 0 else { return [] }
        let subjects = Self.subjects(of: key)
        return state.withLock { state in
            var chain: [BudgetDefinition] = []
            for subject in subjects {
                for budget in state.bySubject[subject] ?? [] where budget.model == nil || budget.model == model {
                    chain.append(budget)
                }
            }
            return chain
        }
    }

    /// A budget's subject, as the index holds it: no `scope:id` string to build per request.
    struct Subject: Hashable {
        var scope: String
        var id: String
    }

    /// The subjects whose budgets bind a key: the key itself, its org, user and team.
    private static func subjects(of key: ResolvedKey) -> [Subject] {
        var subjects = [Subject(scope: "key", id: key.record.id), Subject(scope: "org", id: key.record.orgID)]
        subjects.reserveCapacity(4)
        if let user = key.record.userID { subjects.append(Subject(scope: "user", id: user)) }
        if let team = key.record.teamID { subjects.append(Subject(scope: "team", id: team)) }
        return subjects
    }

    /// Every budget on the key's chain, whatever its model (`GET /v1/budget`).
    func snapshots(for key: ResolvedKey, now: Date) -> [BudgetSnapshot] {
        let subjects = Self.subjects(of: key)
        return state.withLock { state in
            subjects.flatMap { state.bySubject[$0] ?? [] }.compactMap { state.book.snapshot(budgetID: $0.id, now: now) }
        }
    }

    func snapshots(now: Date) -> [(BudgetSnapshot, BudgetRecord)] {
        state.withLock { state in
            state.book.snapshots(now: now).compactMap { snapshot in state.records[snapshot.definition.id].map { (snapshot, $0) } }
        }
    }

    func record(id: String) -> BudgetRecord? { state.withLock { $0.records[id] } }

    func snapshot(budgetID: String, now: Date) -> BudgetSnapshot? {
        state.withLock { $0.book.snapshot(budgetID: budgetID, now: now) }
    }

    func reserve(_ claim: BudgetBook.Claim, now: Date) -> (ReserveDecision, remainingUSD: Nanodollars?) {
        state.withLock { state in
            let decision = state.book.reserve(claim, now: now)
            return (decision, state.book.smallestRemainingUSD(budgetIDs: claim.budgetIDs, now: now))
        }
    }

    /// Settles the reservation; returns the shared-budget spend the ledger row must carry to the store
    /// (fleet mode).
    @discardableResult
    func settle(_ reservation: ReservationID, actualUSD: Nanodollars, actualTokens: Int, requestID: String? = nil,
                now: Date) -> [LeaseSettlement] {
        let outcome = state.withLock { state in
            let events = state.book.settle(reservation, actualUSD: actualUSD, actualTokens: actualTokens, now: now)
            return events.map { event in (event, Self.budgetID(of: event).flatMap { state.book.snapshot(budgetID: $0, now: now) }) }
        }
        var settlements: [LeaseSettlement] = []
        for (event, snapshot) in outcome {
            if case .spentOnLease(let id, let windowStart, let amount) = event, let fleet {
                settlements.append(LeaseSettlement(budgetID: id, windowStart: windowStart, instance: fleet.instance,
                                                   amount: amount, requestID: requestID))
            } else {
                announce(event, snapshot)
            }
        }
        return settlements
    }

    // MARK: Fleet leases (FleetBudgets calls these from its queue)

    func leaseShortfall(_ need: LeaseNeed, now: Date) -> Int64 {
        state.withLock { $0.book.shortfall(need) }
    }

    func leaseGranted(_ need: LeaseNeed, amount: Int64, sharedSpent: Int64, now: Date) {
        state.withLock { $0.book.leaseGranted(budgetID: need.budgetID, windowStart: need.windowStart, amount: amount,
                                              sharedSpent: sharedSpent, now: now) }
    }

    func leaseReleased(_ budgetID: String, windowStart: Date, amount: Int64) {
        state.withLock { $0.book.leaseReleased(budgetID: budgetID, windowStart: windowStart, amount: amount) }
    }

    func sharedSpent(_ budgetID: String, windowStart: Date, spent: Int64, now: Date) {
        state.withLock { $0.book.sharedSpent(budgetID: budgetID, windowStart: windowStart, spent: spent, now: now) }
    }

    func allLeasesLost() {
        state.withLock { state in
            for shared in state.book.sharedBudgets() { state.book.leaseLost(budgetID: shared.budgetID) }
        }
    }

    func sharedBudgets(now: Date) -> [SharedBudgetView] {
        state.withLock { state in
            state.book.sharedBudgets().map { shared in
                let lease = state.book.lease(budgetID: shared.budgetID)
                return SharedBudgetView(budgetID: shared.budgetID, windowStart: shared.windowStart,
                                        releasable: state.book.releasable(budgetID: shared.budgetID, now: now),
                                        lastClaimAt: lease?.lastClaimAt, held: lease?.held ?? 0)
            }
        }
    }

    /// The ledger writer committed these settlements with their rows.
    private func committed(_ settlements: [LeaseSettlement]) {
        state.withLock { state in
            for settlement in settlements {
                state.book.leaseCommitted(budgetID: settlement.budgetID, windowStart: settlement.windowStart,
                                          amount: settlement.amount)
            }
        }
    }

    /// Frees reservations whose request path never settled them (a safety net: every path settles).
    func expire(now: Date) {
        let expired = state.withLock { $0.book.expire(now: now) }
        if !expired.isEmpty { logger.warning("released \(expired.count) budget reservations that were never settled") }
    }

    private static func budgetID(of event: BudgetEvent) -> String? {
        switch event {
        case .softThresholdCrossed(let id, _), .overspent(let id, _), .spentOnLease(let id, _, _): id
        }
    }

    private func announce(_ event: BudgetEvent, _ snapshot: BudgetSnapshot?) {
        guard let snapshot else { return }
        switch event {
        case .softThresholdCrossed(let id, let at):
            let threshold = snapshot.definition.softThreshold?.decimalString ?? "1"
            logger.notice("budget \(id) (\(snapshot.definition.scope.rawValue) \(snapshot.definition.subjectName)) crossed its soft threshold \(threshold)")
            let record = self.record(id: id)
            let store = self.store
            let webhook = self.webhook
            let logger = self.logger
            events.async {
                do {
                    try store.markSoftThresholdCrossed(budgetID: id, windowStart: snapshot.window.start, at: at)
                } catch {
                    logger.error("could not record the soft-threshold crossing of budget \(id): \(error)")
                }
                guard let webhook, let record else { return }
                let body = JSONValue.object([
                    ("event", .string("budget.soft_threshold")), ("budget", BudgetView.json(snapshot, record)),
                    ("threshold", .string(threshold)), ("crossed_at", .time(at)),
                ]).rendered
                webhook.deliver(body, event: "budget.soft_threshold")
            }
        case .overspent(let id, let by):
            logger.warning("budget \(id) went over its limit by \(by) (estimate mode, or a usage above the bound)")
        case .spentOnLease:
            break
        }
    }
}

/// A budget as the API shows it (`GET /admin/budgets`, `GET /v1/budget`, the 429 body, webhooks).
enum BudgetView {
    /// Foundation on Linux names UTC "GMT": show it as it was given.
    static func zoneName(_ zone: TimeZone) -> String {
        zone.identifier == "GMT" && zone.secondsFromGMT() == 0 ? "UTC" : zone.identifier
    }

    static func json(_ snapshot: BudgetSnapshot, _ record: BudgetRecord?) -> JSONValue {
        let definition = snapshot.definition
        var members: [(String, JSONValue)] = [
            ("id", .string(definition.id)), ("scope", .string(definition.scope.rawValue)),
            ("name", .string(definition.subjectName)), ("subject_id", .string(definition.subjectID)),
            ("model", .string(definition.model)), ("period", .string(definition.period.rawValue)),
            ("timezone", .string(zoneName(definition.timeZone))), ("mode", .string(definition.mode.rawValue)),
            ("on_exhaust", .string(definition.onExhaust.rawValue)),
        ]
        switch definition.limit {
        case .usd(let limit):
            // How far spend went past the cap: only an `estimate` budget (or a provider billing above the
            // request's bound) can make this non-zero.
            members += [("limit_usd", .money(limit)), ("spent_usd", .money(snapshot.spentUSD)),
                        ("reserved_usd", .money(snapshot.reservedUSD)), ("remaining_usd", .money(snapshot.remainingUSD)),
                        ("overspent_usd", .money(max(.zero, snapshot.spentUSD - limit)))]
        case .tokens(let limit):
            members += [("limit_tokens", .int(limit)), ("spent_tokens", .int(snapshot.spentTokens)),
                        ("reserved_tokens", .int(snapshot.reservedTokens)), ("remaining_tokens", .int(snapshot.remainingTokens)),
                        ("spent_usd", .money(snapshot.spentUSD))]
        }
        members += [
            ("window_start", .time(definition.period == .total ? nil : snapshot.window.start)),
            ("resets_at", .time(snapshot.window.end)),
            ("soft_threshold", .string(definition.softThreshold?.decimalString)),
            ("soft_threshold_crossed_at", .time(snapshot.softThresholdCrossedAt)),
            ("grace_usd", .money(definition.graceUSD)),
            ("annual_salary_usd", .money(definition.salary?.annualSalaryUSD)),
            ("salary_share", .string(definition.salary?.share.decimalString)),
        ]
        if let record { members.append(("updated_at", .time(record.updatedAt))) }
        return .object(members)
    }
}
