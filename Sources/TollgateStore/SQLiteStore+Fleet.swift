import Foundation
import GRDB
import TollgateCore

// Leases and the change feed on SQLite. Every write goes through the one writer connection, in a
// transaction: a read-then-update here is atomic without row locks.
extension SQLiteStore {
    public func acquireLease(budgetID: String, windowStart: Date, instance: String, limit: Int64, want: Int64,
                             minimum: Int64, expiresAt: Date) throws -> LeaseGrant {
        try LeaseRules.requireNonNegative(("limit", limit), ("want", want), ("minimum", minimum))
        let window = windowStart.epochMilliseconds
        return try database.write { db in
            try db.execute(sql: "INSERT INTO budget_usage (budget_id, window_start) VALUES (?, ?) ON CONFLICT DO NOTHING",
                           arguments: [budgetID, window])
            var usage = try Self.usage(db, budgetID: budgetID, window: window)!
            let granted = LeaseRules.grant(limit: limit, want: want, minimum: minimum, usage: usage)
            if granted > 0 {
                try db.execute(sql: "UPDATE budget_usage SET leased = leased + ? WHERE budget_id = ? AND window_start = ?",
                               arguments: [granted, budgetID, window])
                try db.execute(sql: """
                    INSERT INTO budget_leases (budget_id, window_start, instance, amount, expires_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (budget_id, window_start, instance) DO UPDATE SET
                        amount = amount + excluded.amount, expires_at = excluded.expires_at
                    """, arguments: [budgetID, window, instance, granted, expiresAt.epochMilliseconds])
                usage.leased += granted
            }
            return LeaseGrant(granted: granted, usage: usage)
        }
    }

    public func releaseLease(budgetID: String, windowStart: Date, instance: String, amount: Int64) throws {
        try LeaseRules.requireNonNegative(("released amount", amount))
        try database.write { db in
            _ = try Self.takeFromLease(db, budgetID: budgetID, window: windowStart.epochMilliseconds, instance: instance,
                                       amount: amount)
        }
    }

    public func renewLeases(instance: String, expiresAt: Date) throws -> Int {
        try database.write { db in
            try db.execute(sql: "UPDATE budget_leases SET expires_at = ? WHERE instance = ?",
                           arguments: [expiresAt.epochMilliseconds, instance])
            return db.changesCount
        }
    }

    public func reclaimExpiredLeases(now: Date) throws -> Int {
        try database.write { db in
            let expired = try Row.fetchAll(db, sql: "SELECT budget_id, window_start, instance, amount FROM budget_leases WHERE expires_at < ?",
                                           arguments: [now.epochMilliseconds])
            for lease in expired {
                let amount: Int64 = lease["amount"]
                try db.execute(sql: "UPDATE budget_usage SET leased = leased - ? WHERE budget_id = ? AND window_start = ?",
                               arguments: [amount, lease["budget_id"], lease["window_start"]])
                try db.execute(sql: "DELETE FROM budget_leases WHERE budget_id = ? AND window_start = ? AND instance = ?",
                               arguments: [lease["budget_id"], lease["window_start"], lease["instance"]])
            }
            return expired.count
        }
    }

    public func budgetUsage(budgetID: String, windowStart: Date) throws -> BudgetUsage? {
        try database.read { db in try Self.usage(db, budgetID: budgetID, window: windowStart.epochMilliseconds) }
    }

    public func leases(instance: String) throws -> [BudgetLease] {
        try database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM budget_leases WHERE instance = ? ORDER BY budget_id, window_start
                """, arguments: [instance]).map { row in
                BudgetLease(budgetID: row["budget_id"], windowStart: Date(epochMilliseconds: row["window_start"]),
                            instance: row["instance"], amount: row["amount"],
                            expiresAt: Date(epochMilliseconds: row["expires_at"]))
            }
        }
    }

    public func changes(after: Int64, limit: Int) throws -> [StoreChange] {
        guard limit > 0 else { throw StoreError.invalid("limit must be at least 1") }
        return try database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM changes WHERE id > ? ORDER BY id LIMIT ?", arguments: [after, limit]).map { row in
                StoreChange(id: row["id"], kind: ChangeKind(rawValue: row["kind"]), subject: row["subject"],
                            at: Date(epochMilliseconds: row["at"]))
            }
        }
    }

    public func latestChangeID() throws -> Int64 {
        try database.read { db in try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(id), 0) FROM changes")! }
    }

    // MARK: Inside a write transaction

    static func recordChange(_ db: Database, _ kind: ChangeKind, _ subject: String) throws {
        try db.execute(sql: "INSERT INTO changes (kind, subject, at) VALUES (?, ?, ?)",
                       arguments: [kind.rawValue, subject, Date().epochMilliseconds])
    }

    static func settle(_ db: Database, _ settlement: LeaseSettlement) throws {
        let window = settlement.windowStart.epochMilliseconds
        try db.execute(sql: """
            INSERT INTO budget_usage (budget_id, window_start, spent) VALUES (?, ?, ?)
            ON CONFLICT (budget_id, window_start) DO UPDATE SET spent = spent + excluded.spent
            """, arguments: [settlement.budgetID, window, settlement.amount])
        _ = try takeFromLease(db, budgetID: settlement.budgetID, window: window, instance: settlement.instance,
                              amount: settlement.amount)
    }

    /// Takes `min(amount, lease)` out of the instance's lease and the window's `leased`; deletes the lease
    /// at 0. Returns what was taken.
    private static func takeFromLease(_ db: Database, budgetID: String, window: Int64, instance: String,
                                      amount: Int64) throws -> Int64 {
        guard let held = try Int64.fetchOne(db, sql: """
            SELECT amount FROM budget_leases WHERE budget_id = ? AND window_start = ? AND instance = ?
            """, arguments: [budgetID, window, instance]) else { return 0 }
        let moved = min(amount, held)
        guard moved > 0 else { return 0 }
        try db.execute(sql: "UPDATE budget_usage SET leased = leased - ? WHERE budget_id = ? AND window_start = ?",
                       arguments: [moved, budgetID, window])
        if moved == held {
            try db.execute(sql: "DELETE FROM budget_leases WHERE budget_id = ? AND window_start = ? AND instance = ?",
                           arguments: [budgetID, window, instance])
        } else {
            try db.execute(sql: "UPDATE budget_leases SET amount = amount - ? WHERE budget_id = ? AND window_start = ? AND instance = ?",
                           arguments: [moved, budgetID, window, instance])
        }
        return moved
    }

    private static func usage(_ db: Database, budgetID: String, window: Int64) throws -> BudgetUsage? {
        try Row.fetchOne(db, sql: "SELECT spent, leased FROM budget_usage WHERE budget_id = ? AND window_start = ?",
                         arguments: [budgetID, window]).map { BudgetUsage(spent: $0["spent"], leased: $0["leased"]) }
    }
}
