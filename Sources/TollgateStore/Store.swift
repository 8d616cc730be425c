import Foundation
import TollgateCore

public enum StoreError: Error, Equatable, Sendable {
    /// A name that must be unique is taken (HTTP 409).
    case duplicate(entity: String, name: String)
    /// An entity named by id or name does not exist (HTTP 404).
    case notFound(entity: String, reference: String)
    case invalid(String)
}

/// Cursor-paged slice of the ledger, newest first.
public struct LedgerPage: Sendable {
    public var rows: [LedgerRecord]
    /// Opaque: pass back as `cursor` for the next (older) page; `nil` at the end.
    public var next: String?
    public init(rows: [LedgerRecord], next: String?) { self.rows = rows; self.next = next }
}

public struct SpendQuery: Sendable {
    public var groupBy: SpendGrouping
    /// Inclusive.
    public var from: Date?
    /// Exclusive.
    public var to: Date?
    /// Seconds east of UTC for `day` grouping.
    public var utcOffsetSeconds: Int
    public init(groupBy: SpendGrouping, from: Date? = nil, to: Date? = nil, utcOffsetSeconds: Int = 0) {
        self.groupBy = groupBy; self.from = from; self.to = to; self.utcOffsetSeconds = utcOffsetSeconds
    }
}

/// Everything Tollgate keeps. Entities are named by id or by name wherever a `reference` is taken.
/// Calls block the caller briefly: they are for the admin API, start-up and the ledger writer, never for
/// the request path.
public protocol Store: Sendable {
    func migrate() throws

    /// Small named values the gateway keeps for itself (the generated admin key's hash).
    func setting(_ name: String) throws -> String?
    func setSetting(_ name: String, _ value: String) throws

    /// The implicit org every team and user belongs to until others are created.
    func defaultOrg() throws -> OrgRecord
    func createOrg(name: String) throws -> OrgRecord
    func listOrgs() throws -> [OrgRecord]

    func createTeam(name: String, org: String?) throws -> TeamRecord
    func listTeams() throws -> [TeamRecord]
    func team(_ reference: String) throws -> TeamRecord?

    func createUser(name: String, team: String?) throws -> UserRecord
    func listUsers() throws -> [UserRecord]
    func user(_ reference: String) throws -> UserRecord?

    func insertKey(_ key: KeyRecord) throws
    func listKeys() throws -> [KeyRecord]
    /// Marks the key revoked (by id or name) and returns it; an already revoked key keeps its first time.
    func revokeKey(_ reference: String, at: Date) throws -> KeyRecord

    /// Creates or replaces the budget with the same (scope, subject, model, period), keeping its id and
    /// creation time; returns it as stored.
    func upsertBudget(_ budget: BudgetRecord) throws -> BudgetRecord
    func listBudgets() throws -> [BudgetRecord]
    func deleteBudget(_ id: String) throws
    func markSoftThresholdCrossed(budgetID: String, windowStart: Date, at: Date) throws
    /// The settled spend since `since` of the requests of one subject (`scope` org|team|user|key),
    /// optionally of one model.
    func spendSince(_ since: Date, scope: String, subjectID: String, model: String?) throws -> LedgerSpend

    /// Appends ledger rows in one transaction.
    func appendLedger(_ rows: [LedgerRecord]) throws
    func ledgerPage(limit: Int, cursor: String?) throws -> LedgerPage
    func spend(_ query: SpendQuery) throws -> [SpendRow]
}
