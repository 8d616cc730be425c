import Foundation

// Budgets shared by several gateway instances. Each budget window has one usage row: `spent` (settled) and
// `leased` (handed out to instances and not yet spent or given back). Instances lease slices of what is
// left, spend them in memory, settle what they spent with the ledger rows that record it, and give back
// the rest; a lease that is not renewed expires and its amount returns to the budget. Invariant, for every
// window: `leased` is the sum of its leases' amounts, and no lease is granted beyond `limit − spent − leased`.
// Amounts are in the budget's unit: nano-dollars or tokens.

/// A budget window's shared counters.
public struct BudgetUsage: Hashable, Sendable {
    public var spent: Int64
    public var leased: Int64
    public init(spent: Int64, leased: Int64) { self.spent = spent; self.leased = leased }
}

/// What `acquireLease` handed out, and the window's counters after it.
public struct LeaseGrant: Hashable, Sendable {
    /// 0 when less than the minimum asked for was left.
    public var granted: Int64
    public var usage: BudgetUsage
    public init(granted: Int64, usage: BudgetUsage) { self.granted = granted; self.usage = usage }
}

/// The part of a budget window one instance holds. A lease never holds 0: it is deleted when it reaches it.
public struct BudgetLease: Hashable, Sendable {
    public var budgetID: String
    public var windowStart: Date
    public var instance: String
    public var amount: Int64
    public var expiresAt: Date
    public init(budgetID: String, windowStart: Date, instance: String, amount: Int64, expiresAt: Date) {
        self.budgetID = budgetID; self.windowStart = windowStart; self.instance = instance
        self.amount = amount; self.expiresAt = expiresAt
    }
}

/// Spend to settle with the ledger rows that record it: `spent += amount`, and the instance's lease gives
/// up `min(amount, lease)` (the rest was spent beyond the lease, or the lease already expired).
public struct LeaseSettlement: Hashable, Sendable {
    public var budgetID: String
    public var windowStart: Date
    public var instance: String
    public var amount: Int64
    /// The ledger row (of the same `appendLedger` call) this spend belongs to. When set, the settlement is
    /// skipped if that row was already in the ledger: a batch retried after a commit whose answer was lost
    /// then settles nothing twice.
    public var requestID: String?
    public init(budgetID: String, windowStart: Date, instance: String, amount: Int64, requestID: String? = nil) {
        self.budgetID = budgetID; self.windowStart = windowStart; self.instance = instance
        self.amount = amount; self.requestID = requestID
    }
}

/// What kind of entity a change feed entry is about. Open-ended, so that an older instance in a fleet
/// reads the entries of a newer one without failing.
public struct ChangeKind: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    /// A key was created or revoked; the subject is its id.
    public static let key = ChangeKind(rawValue: "key")
    /// A budget was created, changed or deleted; the subject is its id.
    public static let budget = ChangeKind(rawValue: "budget")
}

/// One entry of the change feed: every mutation other instances must see appends one, in the same
/// transaction as the mutation.
public struct StoreChange: Hashable, Sendable {
    public var id: Int64
    public var kind: ChangeKind
    public var subject: String
    public var at: Date
    public init(id: Int64, kind: ChangeKind, subject: String, at: Date) {
        self.id = id; self.kind = kind; self.subject = subject; self.at = at
    }
}

/// The arithmetic both stores share, so that they cannot disagree on it.
enum LeaseRules {
    /// `min(want, limit − spent − leased)`, or 0 when that is below `minimum`.
    static func grant(limit: Int64, want: Int64, minimum: Int64, usage: BudgetUsage) -> Int64 {
        let available = limit - usage.spent - usage.leased
        let granted = max(0, min(want, available))
        return granted < minimum ? 0 : granted
    }

    static func requireNonNegative(_ values: (String, Int64)...) throws {
        for (name, value) in values where value < 0 {
            throw StoreError.invalid("\(name) must not be negative (got \(value))")
        }
    }

    /// Settlements whose ledger row was already stored are dropped; the rest are merged per lease (in a
    /// fixed order, so that concurrent transactions lock rows in the same order). Merging is exact:
    /// settling a then b moves `min(a, L) + min(b, L − min(a, L)) = min(a + b, L)`.
    static func merged(_ settlements: [LeaseSettlement], alreadyStored: Set<String>) throws -> [LeaseSettlement] {
        var totals: [LeaseKey: Int64] = [:]
        for settlement in settlements {
            try requireNonNegative(("settled amount", settlement.amount))
            if let id = settlement.requestID, alreadyStored.contains(id) { continue }
            let key = LeaseKey(budgetID: settlement.budgetID, windowStart: settlement.windowStart.epochMilliseconds,
                               instance: settlement.instance)
            totals[key, default: 0] += settlement.amount
        }
        return totals.sorted { $0.key < $1.key }.map { key, amount in
            LeaseSettlement(budgetID: key.budgetID, windowStart: Date(epochMilliseconds: key.windowStart),
                            instance: key.instance, amount: amount)
        }
    }

    struct LeaseKey: Hashable, Comparable {
        var budgetID: String
        var windowStart: Int64
        var instance: String

        static func < (lhs: LeaseKey, rhs: LeaseKey) -> Bool {
            (lhs.budgetID, lhs.windowStart, lhs.instance) < (rhs.budgetID, rhs.windowStart, rhs.instance)
        }
    }
}
