import Foundation

/// What one gateway instance holds of a budget that a fleet of instances shares through one store.
///
/// The store keeps, per budget and window, the spend every instance has committed and the leases they hold,
/// and never grants a lease beyond `limit − spent − leased`. An instance spends only from its lease:
/// `uncommitted + reserved + claim ≤ held`. Its ledger writer then commits each batch's spend, moving it out
/// of the lease and into the shared spend in the same transaction as the ledger rows. So the fleet never
/// spends past the cap, whatever each instance does between two round trips to the store.
public struct FleetLease: Hashable, Sendable {
    /// Granted to this instance and not yet committed or given back (the budget's unit).
    public var held: Int64 = 0
    /// Settled here, not yet committed to the shared spend.
    public var uncommitted: Int64 = 0
    /// When a claim last came for this budget here: an idle lease goes back to the fleet.
    public var lastClaimAt: Date?

    public init(held: Int64 = 0, uncommitted: Int64 = 0, lastClaimAt: Date? = nil) {
        self.held = held
        self.uncommitted = uncommitted
        self.lastClaimAt = lastClaimAt
    }

    /// Whether `reserved` more (this instance's open reservations plus a new claim) fits in the lease.
    func covers(_ reserved: Int64) -> Bool {
        Int128(uncommitted) + Int128(reserved) <= Int128(held)
    }
}

/// A shared budget a claim needs more of: ask the store for at least `missing` more.
public struct LeaseNeed: Hashable, Sendable {
    public var budgetID: String
    public var windowStart: Date
    /// The budget's limit in its unit, grace included (what the store grants against).
    public var limit: Int64
    /// At least this much more must be held for the claim to fit.
    public var missing: Int64
    /// What is neither spent (as this instance last saw the fleet's spend) nor reserved here, nor held here:
    /// the most the rest of the fleet's leases and new spend can take. Lease sizes shrink with it.
    public var unclaimed: Int64
    /// What the claim asks of this budget (its reservation).
    public var charge: Int64

    /// How much to ask the store for when `shortfall` more is needed: a quarter of what the rest of the fleet
    /// has not claimed, at most a tenth of the limit, never less than the shortfall. Slices shrink as the
    /// budget nears its cap, so that no instance starves the others.
    public func slice(for shortfall: Int64) -> Int64 {
        max(shortfall, min(limit / 10, unclaimed / 4))
    }
}

extension BudgetBook {
    /// From now on the budget is shared by a fleet: a claim fits only within the lease this instance holds,
    /// and the spend shown is the fleet's, `sharedSpent` as the store last reported it (the budget's unit).
    public mutating func share(budgetID: String, sharedSpent: Int64, now: Date) {
        rollForward(budgetID, now: now)
        guard var state = budgets[budgetID] else { return }
        state.lease = FleetLease()
        state.setSpent(sharedSpent)
        budgets[budgetID] = state
    }

    /// The store granted `amount` more for the window starting at `windowStart` and reported the fleet's
    /// committed spend then; ignored when that window is no longer the budget's.
    public mutating func leaseGranted(budgetID: String, windowStart: Date, amount: Int64, sharedSpent: Int64?, now: Date) {
        rollForward(budgetID, now: now)
        guard var state = budgets[budgetID], state.lease != nil, state.window.start == windowStart else { return }
        state.lease?.held += max(0, amount)
        if let sharedSpent, let uncommitted = state.lease?.uncommitted { state.setSpent(sharedSpent + uncommitted) }
        budgets[budgetID] = state
    }

    /// The ledger writer committed `amount` of this window's spend: it leaves `uncommitted`, and as much of
    /// the lease as it covers leaves `held` (the store moved the same). Returns what left the lease.
    @discardableResult
    public mutating func leaseCommitted(budgetID: String, windowStart: Date, amount: Int64) -> Int64 {
        guard var state = budgets[budgetID], var lease = state.lease, state.window.start == windowStart else { return 0 }
        let moved = min(max(0, amount), lease.held)
        lease.held -= moved
        lease.uncommitted = max(0, lease.uncommitted - amount)
        state.lease = lease
        budgets[budgetID] = state
        return moved
    }

    /// What the instance may give back now: held, less what settled spend and open reservations need.
    public func releasable(budgetID: String, now: Date) -> Int64 {
        guard let state = budgets[budgetID], let lease = state.lease, !state.window.hasEnded(at: now) else { return 0 }
        return max(0, lease.held - lease.uncommitted - state.reserved(in: state.definition.limit))
    }

    /// `amount` was given back to the store.
    public mutating func leaseReleased(budgetID: String, windowStart: Date, amount: Int64) {
        guard var state = budgets[budgetID], var lease = state.lease, state.window.start == windowStart else { return }
        lease.held = max(0, lease.held - max(0, amount))
        state.lease = lease
        budgets[budgetID] = state
    }

    /// The lease can no longer be counted on (it expired while the store was out of reach): nothing more is
    /// admitted on it until a new one is granted.
    public mutating func leaseLost(budgetID: String) {
        guard budgets[budgetID]?.lease != nil else { return }
        budgets[budgetID]?.lease?.held = 0
    }

    /// The fleet's committed spend, as the store reports it now (a periodic refresh).
    public mutating func sharedSpent(budgetID: String, windowStart: Date, spent: Int64, now: Date) {
        rollForward(budgetID, now: now)
        guard var state = budgets[budgetID], let lease = state.lease, state.window.start == windowStart else { return }
        state.setSpent(spent + lease.uncommitted)
        budgets[budgetID] = state
    }

    public func lease(budgetID: String) -> FleetLease? { budgets[budgetID]?.lease }

    /// How much more the instance must hold for the need's claim to fit now (other requests may have been
    /// granted leases, or spent them, since the need was found).
    public func shortfall(_ need: LeaseNeed) -> Int64 {
        guard let state = budgets[need.budgetID], let lease = state.lease, state.window.start == need.windowStart else { return 0 }
        let free = lease.held - lease.uncommitted - state.reserved(in: state.definition.limit)
        return max(0, need.charge - free)
    }

    /// The shared budgets and the start of their current window.
    public func sharedBudgets() -> [(budgetID: String, windowStart: Date, limit: Int64)] {
        budgets.compactMap { id, state in state.lease == nil ? nil : (id, state.window.start, state.cap(downgraded: true)) }
            .sorted { $0.budgetID < $1.budgetID }
    }

    /// The shared budgets of the claim's chain whose lease is too small for it, though the claim fits their
    /// limits as this instance sees them.
    func leaseNeeds(_ claim: Claim, now: Date) -> [LeaseNeed] {
        var needs: [LeaseNeed] = []
        var seen = Set<String>()
        for id in claim.budgetIDs where seen.insert(id).inserted {
            guard let state = budgets[id], let lease = state.lease else { continue }
            let limit = state.definition.limit
            let charge = (state.definition.mode == .estimate ? (claim.estimate ?? claim.worstCase) : claim.worstCase).amount(in: limit)
            let reserved = state.reserved(in: limit)
            let missing = lease.uncommitted + reserved + charge - lease.held
            guard missing > 0 else { continue }
            let cap = state.cap(downgraded: claim.downgraded)
            let unclaimed = max(0, cap - state.spent(in: limit) - reserved - (lease.held - lease.uncommitted))
            needs.append(LeaseNeed(budgetID: id, windowStart: state.window.start, limit: cap, missing: missing,
                                   unclaimed: unclaimed, charge: charge))
        }
        return needs
    }
}

extension BudgetState {
    func spent(in limit: BudgetLimit) -> Int64 {
        switch limit {
        case .usd: spentUSD.value
        case .tokens: Int64(spentTokens)
        }
    }

    func reserved(in limit: BudgetLimit) -> Int64 {
        switch limit {
        case .usd: reservedUSD.value
        case .tokens: Int64(reservedTokens)
        }
    }

    /// The limit a claim is held to, grace included for a downgraded one.
    func cap(downgraded: Bool) -> Int64 {
        switch definition.limit {
        case .usd(let limit): limit.value + (downgraded ? definition.graceUSD.value : 0)
        case .tokens(let limit): Int64(limit)
        }
    }

    /// Sets the spend shown in the budget's unit; the other unit is not known fleet-wide and keeps its local count.
    mutating func setSpent(_ amount: Int64) {
        switch definition.limit {
        case .usd: spentUSD = Nanodollars(max(0, amount))
        case .tokens: spentTokens = Int(max(0, amount))
        }
    }
}

extension BudgetCharge {
    func amount(in limit: BudgetLimit) -> Int64 {
        switch limit {
        case .usd: usd.value
        case .tokens: Int64(tokens)
        }
    }
}
