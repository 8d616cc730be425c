import Foundation

/// The live state of many budgets and the reservations held on them: a state machine that takes an event and
/// the time it happened, and returns a decision. It reads no clock and does no I/O, so whoever owns it (an
/// actor on one gateway; later, an instance holding a leased slice of a PostgreSQL budget, with the slice as
/// the limit) decides how it is shared, persisted and rebuilt.
///
/// Each budget counts spend in its current calendar window. A window that has ended is rolled forward lazily,
/// by the first event that comes after its end: spend, reservations and the soft-threshold flag start from
/// zero. Every reservation remembers the window it was made in; settling it after the window rolled over
/// charges nothing here, because that cost belongs to the old window, which the book no longer tracks (the
/// ledger row keeps the request's start time, so a rebuild from the ledger counts it there).
public struct BudgetBook: Sendable {
    /// What a request asks of its chain of budgets before it is forwarded.
    public struct Claim: Hashable, Sendable {
        /// The request's chain: key, user, team, org and any per-model budget that binds the serving model.
        public var budgetIDs: [String]
        /// The worst-case cost, reserved on `strict` budgets (and on `estimate` ones when `estimate` is nil).
        public var usd: Nanodollars
        /// The worst-case tokens (prompt bound + output limit).
        public var tokens: Int
        /// What `estimate`-mode budgets reserve instead of the worst case.
        public var estimate: BudgetCharge?
        /// A downgraded request may also use each budget's grace.
        public var downgraded: Bool
        /// After this instant `expire(now:)` frees the reservation: a request path that died must not hold
        /// budget forever.
        public var expiresAt: Date

        /// Negative amounts are read as zero.
        public init(budgetIDs: [String], usd: Nanodollars, tokens: Int, estimate: BudgetCharge? = nil,
                    downgraded: Bool = false, expiresAt: Date) {
            self.budgetIDs = budgetIDs
            self.usd = max(.zero, usd)
            self.tokens = max(0, tokens)
            self.estimate = estimate
            self.downgraded = downgraded
            self.expiresAt = expiresAt
        }

        var worstCase: BudgetCharge { BudgetCharge(usd: usd, tokens: tokens) }
    }

    var budgets: [String: BudgetState] = [:]
    var reservations: [ReservationID: Reservation] = [:]
    /// Serial numbers for reservation ids and window tags: never reused, so that a reservation made before a
    /// window rolled over (or before its budget was removed and created again) can never match the new one.
    private var lastSerial: UInt64 = 0

    public init() {}

    // MARK: Definitions

    /// Adds a budget or replaces its definition. A budget whose period and time zone are unchanged keeps its
    /// spend and reservations (a new limit applies from the next claim); otherwise it starts a fresh window
    /// with no spend, to be restored from the ledger.
    public mutating func upsert(_ definition: BudgetDefinition, now: Date) {
        if var state = budgets[definition.id], state.definition.period == definition.period,
           state.definition.timeZone == definition.timeZone {
            state.definition = definition
            budgets[definition.id] = state
            rollForward(definition.id, now: now)
        } else {
            budgets[definition.id] = BudgetState(definition: definition, now: now, windowTag: nextSerial())
        }
    }

    /// Forgets a budget. Its reservations stay open for the other budgets of their chains.
    public mutating func remove(id: String) {
        budgets[id] = nil
    }

    /// Sets the spend of the budget's current window, as rebuilt from the ledger at start-up, and when the
    /// soft threshold was last announced (so that a restart does not announce it again in the same window;
    /// a crossing before the window started is ignored). Returns false when the book does not hold the budget.
    @discardableResult
    public mutating func restore(budgetID: String, spentUSD: Nanodollars, spentTokens: Int,
                                 softThresholdCrossedAt: Date? = nil, now: Date) -> Bool {
        rollForward(budgetID, now: now)
        guard var state = budgets[budgetID] else { return false }
        state.spentUSD = spentUSD
        state.spentTokens = spentTokens
        state.softThresholdCrossedAt = softThresholdCrossedAt.flatMap { $0 >= state.window.start ? $0 : nil }
        budgets[budgetID] = state
        return true
    }

    // MARK: Reservations

    /// Reserves the claim on every budget of its chain, or on none: the decision names the first budget that
    /// cannot fit it.
    public mutating func reserve(_ claim: Claim, now: Date) -> ReserveDecision {
        var seen = Set<String>()
        let chain = claim.budgetIDs.filter { seen.insert($0).inserted }
        for id in chain {
            guard budgets[id] != nil else { return .unknownBudget(id: id) }
            rollForward(id, now: now)
        }
        var holds: [Reservation.Hold] = []
        for id in chain {
            guard let state = budgets[id] else { return .unknownBudget(id: id) }
            let mode = state.definition.mode
            let charge = mode == .estimate ? (claim.estimate ?? claim.worstCase) : claim.worstCase
            if state.lease != nil { budgets[id]?.lease?.lastClaimAt = now }
            guard state.fits(charge, downgraded: claim.downgraded) else { return .exhausted(state.snapshot) }
            if let lease = state.lease, !lease.covers(state.reserved(in: state.definition.limit) + charge.amount(in: state.definition.limit)) {
                return .needsLease(leaseNeeds(claim, now: now))
            }
            holds.append(Reservation.Hold(budgetID: id, windowTag: state.windowTag, charge: charge, mode: mode))
        }
        for hold in holds {
            budgets[hold.budgetID]?.reservedUSD += hold.charge.usd
            budgets[hold.budgetID]?.reservedTokens += hold.charge.tokens
        }
        let id = ReservationID(serial: nextSerial())
        reservations[id] = Reservation(holds: holds, downgraded: claim.downgraded, expiresAt: claim.expiresAt)
        return .reserved(id)
    }

    /// Ends a reservation with the request's actual cost: each budget still in the window the reservation was
    /// made in releases what it held and is charged the actual cost. An unknown id (already settled, released
    /// or expired) charges nothing.
    ///
    /// For a `strict` budget the caller's bound should make the actual cost never exceed what was reserved;
    /// a provider that bills above it (more output than `max_tokens`, say) is charged what it billed, and
    /// the overshoot, if it passes the cap, is reported as `.overspent`: the ledger stays the truth.
    public mutating func settle(_ id: ReservationID, actualUSD: Nanodollars, actualTokens: Int,
                                now: Date) -> [BudgetEvent] {
        guard let reservation = reservations.removeValue(forKey: id) else { return [] }
        let actual = BudgetCharge(usd: max(.zero, actualUSD), tokens: max(0, actualTokens))
        var events: [BudgetEvent] = []
        for hold in reservation.holds {
            rollForward(hold.budgetID, now: now)
            guard var state = budgets[hold.budgetID], state.windowTag == hold.windowTag else { continue }
            state.reservedUSD -= hold.charge.usd
            state.reservedTokens -= hold.charge.tokens
            state.spentUSD += actual.usd
            state.spentTokens += actual.tokens
            if state.lease != nil {
                let amount = actual.amount(in: state.definition.limit)
                state.lease?.uncommitted += amount
                if amount > 0 {
                    events.append(.spentOnLease(budgetID: hold.budgetID, windowStart: state.window.start, amount: amount))
                }
            }
            if state.definition.limit.counts(nonZero: actual),
               let overshoot = state.overshoot(downgraded: reservation.downgraded) {
                events.append(.overspent(budgetID: hold.budgetID, by: overshoot))
            }
            if state.softThresholdCrossedAt == nil, state.reachedSoftThreshold {
                state.softThresholdCrossedAt = now
                events.append(.softThresholdCrossed(budgetID: hold.budgetID, at: now))
            }
            budgets[hold.budgetID] = state
        }
        return events
    }

    /// Ends a reservation with nothing charged (the upstream failed before any usage). Returns false for an
    /// unknown id.
    @discardableResult
    public mutating func release(_ id: ReservationID) -> Bool {
        guard let reservation = reservations.removeValue(forKey: id) else { return false }
        for hold in reservation.holds {
            guard var state = budgets[hold.budgetID], state.windowTag == hold.windowTag else { continue }
            state.reservedUSD -= hold.charge.usd
            state.reservedTokens -= hold.charge.tokens
            budgets[hold.budgetID] = state
        }
        return true
    }

    /// Releases every reservation whose `expiresAt` is not after `now`, oldest first.
    public mutating func expire(now: Date) -> [ReservationID] {
        let expired = reservations.filter { $0.value.expiresAt <= now }.keys.sorted()
        for id in expired { release(id) }
        return expired
    }

    // MARK: Reading

    /// The budget as it stands at `now` (a window that has ended reads as the fresh one that follows it).
    public func snapshot(budgetID: String, now: Date) -> BudgetSnapshot? {
        guard let state = budgets[budgetID] else { return nil }
        guard state.window.hasEnded(at: now) else { return state.snapshot }
        return BudgetState(definition: state.definition, now: now, windowTag: state.windowTag).snapshot
    }

    /// Every budget, ordered by id.
    public func snapshots(now: Date) -> [BudgetSnapshot] {
        budgets.keys.sorted().compactMap { snapshot(budgetID: $0, now: now) }
    }

    /// The smallest USD remainder on the chain (`x-tollgate-budget-remaining-usd`); nil when no USD budget of
    /// the chain is known.
    public func smallestRemainingUSD(budgetIDs: [String], now: Date) -> Nanodollars? {
        budgetIDs.compactMap { snapshot(budgetID: $0, now: now)?.remainingUSD }.min()
    }

    // MARK: Internals

    mutating func nextSerial() -> UInt64 {
        lastSerial += 1
        return lastSerial
    }

    mutating func rollForward(_ id: String, now: Date) {
        guard let state = budgets[id], state.window.hasEnded(at: now) else { return }
        var fresh = BudgetState(definition: state.definition, now: now, windowTag: nextSerial())
        // A shared budget stays shared; its lease was for the window that ended.
        if state.lease != nil { fresh.lease = FleetLease() }
        budgets[id] = fresh
    }
}

/// Identifies one open reservation in the book that issued it.
public struct ReservationID: Hashable, Comparable, Sendable, CustomStringConvertible {
    let serial: UInt64

    public var description: String { "reservation-\(serial)" }

    public static func < (lhs: ReservationID, rhs: ReservationID) -> Bool { lhs.serial < rhs.serial }
}

/// An amount held on or charged to a budget: both units are always counted, whichever the limit uses.
public struct BudgetCharge: Hashable, Sendable {
    public var usd: Nanodollars
    public var tokens: Int

    /// Negative amounts are read as zero.
    public init(usd: Nanodollars, tokens: Int) {
        self.usd = max(.zero, usd)
        self.tokens = max(0, tokens)
    }
}

public enum ReserveDecision: Hashable, Sendable {
    case reserved(ReservationID)
    /// Nothing was reserved: the first budget of the chain that could not fit the claim, as it stands.
    case exhausted(BudgetSnapshot)
    /// The chain names a budget the book does not hold: nothing was reserved.
    case unknownBudget(id: String)
    /// Nothing was reserved: the claim fits these shared budgets' limits but not what this instance holds of
    /// them; a larger lease from the fleet's store may let it through.
    case needsLease([LeaseNeed])
}

public enum BudgetEvent: Hashable, Sendable {
    /// Spent reached the soft threshold; announced at most once per budget per window.
    case softThresholdCrossed(budgetID: String, at: Date)
    /// Spent passed the cap (plus grace, for a downgraded request) by this much after a settlement.
    case overspent(budgetID: String, by: BudgetAmount)
    /// A shared budget was charged this much (in its unit) from this instance's lease: owed to the shared
    /// store, with the ledger row that caused it.
    case spentOnLease(budgetID: String, windowStart: Date, amount: Int64)
}

struct BudgetState: Sendable {
    var definition: BudgetDefinition
    var window: BudgetWindow
    var windowTag: UInt64
    var spentUSD = Nanodollars.zero
    var spentTokens = 0
    var reservedUSD = Nanodollars.zero
    var reservedTokens = 0
    var softThresholdCrossedAt: Date?
    /// Set when the budget is shared by a fleet: what this instance holds of it (BudgetBook+Leases.swift).
    var lease: FleetLease?

    init(definition: BudgetDefinition, now: Date, windowTag: UInt64) {
        self.definition = definition
        self.window = definition.window(containing: now)
        self.windowTag = windowTag
    }

    var snapshot: BudgetSnapshot {
        BudgetSnapshot(definition: definition, window: window, spentUSD: spentUSD, spentTokens: spentTokens,
                       reservedUSD: reservedUSD, reservedTokens: reservedTokens,
                       softThresholdCrossedAt: softThresholdCrossedAt)
    }

    /// spent + reserved + charge ≤ limit (+ grace for a downgraded request), in the unit the budget counts.
    /// Computed in 128 bits so that no claim can overflow its way past the cap.
    func fits(_ charge: BudgetCharge, downgraded: Bool) -> Bool {
        switch definition.limit {
        case .usd(let limit):
            let grace = downgraded ? Int128(definition.graceUSD.value) : 0
            let total = Int128(spentUSD.value) + Int128(reservedUSD.value) + Int128(charge.usd.value)
            return total <= Int128(limit.value) + grace
        case .tokens(let limit):
            return Int128(spentTokens) + Int128(reservedTokens) + Int128(charge.tokens) <= Int128(limit)
        }
    }

    func overshoot(downgraded: Bool) -> BudgetAmount? {
        switch definition.limit {
        case .usd(let limit):
            let ceiling = limit + (downgraded ? definition.graceUSD : .zero)
            return spentUSD > ceiling ? .usd(spentUSD - ceiling) : nil
        case .tokens(let limit):
            return spentTokens > limit ? .tokens(spentTokens - limit) : nil
        }
    }

    /// spent ≥ threshold × limit, compared exactly in millionths.
    var reachedSoftThreshold: Bool {
        guard let threshold = definition.softThreshold else { return false }
        let whole = Int128(PartsPerMillion.whole)
        switch definition.limit {
        case .usd(let limit):
            return Int128(spentUSD.value) * whole >= Int128(limit.value) * Int128(threshold.value)
        case .tokens(let limit):
            return Int128(spentTokens) * whole >= Int128(limit) * Int128(threshold.value)
        }
    }
}

struct Reservation: Sendable {
    struct Hold: Sendable {
        var budgetID: String
        var windowTag: UInt64
        var charge: BudgetCharge
        /// The mode when the reservation was made: a later change of definition does not change what it meant.
        var mode: BudgetMode
    }

    var holds: [Hold]
    var downgraded: Bool
    var expiresAt: Date
}

extension BudgetLimit {
    /// Whether `charge` adds anything in the unit this limit counts.
    func counts(nonZero charge: BudgetCharge) -> Bool {
        switch self {
        case .usd: charge.usd > .zero
        case .tokens: charge.tokens > 0
        }
    }
}
