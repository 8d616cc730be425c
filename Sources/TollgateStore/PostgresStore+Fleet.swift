import Foundation
import PostgresNIO

// Leases and the change feed on PostgreSQL. Every transaction here locks rows in one global order — a
// window's usage row, then its leases, windows in (budget id, window start) order — so that instances
// settling, leasing, renewing and reclaiming at once never deadlock.
extension PostgresStore {
    public func acquireLease(budgetID: String, windowStart: Date, instance: String, limit: Int64, want: Int64,
                             minimum: Int64, expiresAt: Date) throws -> LeaseGrant {
        try LeaseRules.requireNonNegative(("limit", limit), ("want", want), ("minimum", minimum))
        let window = windowStart.epochMilliseconds
        return try pool.transaction { session in
            var usage = try Self.lockUsage(session, budgetID: budgetID, window: window)
            let granted = LeaseRules.grant(limit: limit, want: want, minimum: minimum, usage: usage)
            if granted > 0 {
                try session.execute("""
                    UPDATE budget_usage SET leased = leased + \(granted)
                    WHERE budget_id = \(budgetID) AND window_start = \(window)
                    """)
                try session.execute("""
                    INSERT INTO budget_leases (budget_id, window_start, instance, amount, expires_at)
                    VALUES (\(budgetID), \(window), \(instance), \(granted), \(expiresAt.epochMilliseconds))
                    ON CONFLICT (budget_id, window_start, instance) DO UPDATE SET
                        amount = budget_leases.amount + EXCLUDED.amount, expires_at = EXCLUDED.expires_at
                    """)
                usage.leased += granted
            }
            return LeaseGrant(granted: granted, usage: usage)
        }
    }

    public func releaseLease(budgetID: String, windowStart: Date, instance: String, amount: Int64) throws {
        try LeaseRules.requireNonNegative(("released amount", amount))
        let window = windowStart.epochMilliseconds
        try pool.transaction { session in
            guard try !session.query("""
                SELECT 1 FROM budget_usage WHERE budget_id = \(budgetID) AND window_start = \(window) FOR UPDATE
                """).isEmpty else { return }
            _ = try Self.takeFromLease(session, budgetID: budgetID, window: window, instance: instance, amount: amount)
        }
    }

    public func renewLeases(instance: String, expiresAt: Date) throws -> Int {
        try pool.transaction { session in
            try session.execute("""
                UPDATE budget_leases SET expires_at = \(expiresAt.epochMilliseconds)
                WHERE (budget_id, window_start, instance) IN (
                    SELECT budget_id, window_start, instance FROM budget_leases WHERE instance = \(instance)
                    ORDER BY budget_id, window_start FOR UPDATE)
                """)
        }
    }

    public func reclaimExpiredLeases(now: Date) throws -> Int {
        let cutoff = now.epochMilliseconds
        return try pool.transaction { session in
            let expired = try session.query("""
                SELECT budget_id, window_start, instance FROM budget_leases WHERE expires_at < \(cutoff)
                """).map { row in
                LeaseRules.LeaseKey(budgetID: try row.get("budget_id"), windowStart: try row.get("window_start"),
                                    instance: try row.get("instance"))
            }.sorted()
            var reclaimed = 0
            for lease in expired {
                _ = try Self.lockUsage(session, budgetID: lease.budgetID, window: lease.windowStart)
                // Renewed or reclaimed by another instance since the first look: then it stays.
                guard let row = try session.query("""
                    DELETE FROM budget_leases
                    WHERE budget_id = \(lease.budgetID) AND window_start = \(lease.windowStart)
                      AND instance = \(lease.instance) AND expires_at < \(cutoff)
                    RETURNING amount
                    """).first else { continue }
                let amount: Int64 = try row.get("amount")
                try session.execute("""
                    UPDATE budget_usage SET leased = leased - \(amount)
                    WHERE budget_id = \(lease.budgetID) AND window_start = \(lease.windowStart)
                    """)
                reclaimed += 1
            }
            return reclaimed
        }
    }

    public func budgetUsage(budgetID: String, windowStart: Date) throws -> BudgetUsage? {
        try pool.withConnection { session in
            try session.query("""
                SELECT spent, leased FROM budget_usage
                WHERE budget_id = \(budgetID) AND window_start = \(windowStart.epochMilliseconds)
                """).first.map { BudgetUsage(spent: try $0.get("spent"), leased: try $0.get("leased")) }
        }
    }

    public func leases(instance: String) throws -> [BudgetLease] {
        try pool.withConnection { session in
            try session.query("""
                SELECT * FROM budget_leases WHERE instance = \(instance) ORDER BY budget_id, window_start
                """).map { row in
                BudgetLease(budgetID: try row.get("budget_id"), windowStart: Date(epochMilliseconds: try row.get("window_start")),
                            instance: try row.get("instance"), amount: try row.get("amount"),
                            expiresAt: Date(epochMilliseconds: try row.get("expires_at")))
            }
        }
    }

    public func changes(after: Int64, limit: Int) throws -> [StoreChange] {
        guard limit > 0 else { throw StoreError.invalid("limit must be at least 1") }
        return try pool.withConnection { session in
            try session.query("SELECT * FROM changes WHERE id > \(after) ORDER BY id LIMIT \(limit)").map { row in
                StoreChange(id: try row.get("id"), kind: ChangeKind(rawValue: try row.get("kind")), subject: try row.get("subject"),
                            at: Date(epochMilliseconds: try row.get("at")))
            }
        }
    }

    public func latestChangeID() throws -> Int64 {
        try pool.withConnection { session in
            try session.query("SELECT COALESCE(MAX(id), 0)::bigint AS id FROM changes")[0].get("id")
        }
    }

    // MARK: Inside a transaction

    static func settle(_ session: PostgresSession, _ settlement: LeaseSettlement) throws {
        let window = settlement.windowStart.epochMilliseconds
        // Creates or locks the usage row first (the global order), then the lease.
        try session.execute("""
            INSERT INTO budget_usage (budget_id, window_start, spent, leased)
            VALUES (\(settlement.budgetID), \(window), \(settlement.amount), 0)
            ON CONFLICT (budget_id, window_start) DO UPDATE SET spent = budget_usage.spent + EXCLUDED.spent
            """)
        _ = try takeFromLease(session, budgetID: settlement.budgetID, window: window, instance: settlement.instance,
                              amount: settlement.amount)
    }

    /// The window's usage row, created at zero if missing, locked to the end of the transaction.
    private static func lockUsage(_ session: PostgresSession, budgetID: String, window: Int64) throws -> BudgetUsage {
        try session.execute("""
            INSERT INTO budget_usage (budget_id, window_start) VALUES (\(budgetID), \(window)) ON CONFLICT DO NOTHING
            """)
        let row = try session.query("""
            SELECT spent, leased FROM budget_usage WHERE budget_id = \(budgetID) AND window_start = \(window) FOR UPDATE
            """)[0]
        return BudgetUsage(spent: try row.get("spent"), leased: try row.get("leased"))
    }

    /// Takes `min(amount, lease)` out of the instance's lease and the window's `leased`; deletes the lease
    /// at 0. The usage row must be locked already. Returns what was taken.
    private static func takeFromLease(_ session: PostgresSession, budgetID: String, window: Int64, instance: String,
                                      amount: Int64) throws -> Int64 {
        guard let row = try session.query("""
            SELECT amount FROM budget_leases
            WHERE budget_id = \(budgetID) AND window_start = \(window) AND instance = \(instance) FOR UPDATE
            """).first else { return 0 }
        let held: Int64 = try row.get("amount")
        let moved = min(amount, held)
        guard moved > 0 else { return 0 }
        try session.execute("""
            UPDATE budget_usage SET leased = leased - \(moved) WHERE budget_id = \(budgetID) AND window_start = \(window)
            """)
        if moved == held {
            try session.execute("""
                DELETE FROM budget_leases WHERE budget_id = \(budgetID) AND window_start = \(window) AND instance = \(instance)
                """)
        } else {
            try session.execute("""
                UPDATE budget_leases SET amount = amount - \(moved)
                WHERE budget_id = \(budgetID) AND window_start = \(window) AND instance = \(instance)
                """)
        }
        return moved
    }
}
