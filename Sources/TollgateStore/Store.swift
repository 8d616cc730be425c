import Foundation
import TollgateCore

public enum StoreError: Error, Equatable, Sendable {
    /// A name that must be unique is taken (HTTP 409).
    case duplicate(entity: String, name: String)
    /// An entity named by id or name does not exist (HTTP 404).
    case notFound(entity: String, reference: String)
    case invalid(String)
    /// The database cannot be reached (HTTP 503). The message names the server, never a password.
    case unavailable(String)
}

/// Cursor-paged slice of the ledger, newest first.
public struct LedgerPage: Sendable {
    public var rows: [LedgerRecord]
    /// Opaque: pass back as `cursor` for the next (older) page; `nil` at the end.
    public var next: String?
    public init(rows: [LedgerRecord], next: String?) { self.rows = rows; self.next = next }

    /// The page of at most `limit` rows out of `fetched` (read with a limit of `limit + 1`, so that one
    /// more row tells whether there is a next page).
    init(fetched: [LedgerRecord], limit: Int) {
        let rows = Array(fetched.prefix(limit))
        self.init(rows: rows, next: fetched.count > limit ? rows.last.map(LedgerCursor.init(after:))?.text : nil)
    }
}

/// Where the next ledger page starts: `<created_at ms>:<id>` of the last row handed out. The next page
/// starts strictly after it in (created_at desc, id desc) order, so rows written meanwhile never shift a page.
struct LedgerCursor {
    var milliseconds: Int64
    var id: String

    init(after row: LedgerRecord) {
        milliseconds = row.createdAt.epochMilliseconds
        id = row.id
    }

    init(_ text: String) throws {
        guard let separator = text.firstIndex(of: ":"), let milliseconds = Int64(text[..<separator]) else {
            throw StoreError.invalid("cursor \(text) is not one this server handed out")
        }
        self.milliseconds = milliseconds
        id = String(text[text.index(after: separator)...])
    }

    var text: String { "\(milliseconds):\(id)" }
}

/// Which ledger rows a page shows: each value given must match; `from`/`to` bound `created_at`.
public struct LedgerFilter: Sendable, Equatable {
    public var user: String?
    public var team: String?
    public var model: String?
    public var status: Int?
    public var tag: String?
    public var from: Date?
    public var to: Date?
    public init(user: String? = nil, team: String? = nil, model: String? = nil, status: Int? = nil, tag: String? = nil,
                from: Date? = nil, to: Date? = nil) {
        self.user = user; self.team = team; self.model = model; self.status = status; self.tag = tag
        self.from = from; self.to = to
    }

    public var isEmpty: Bool { self == LedgerFilter() }
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

/// Everything Tollgate keeps. Entities are named by id or by name wherever a `reference` is taken: by id
/// when the reference is shaped like one, else by name (`EntityReference`).
/// Calls block the caller briefly: they are for the admin API, start-up and the ledger writer, never for
/// the request path.
public protocol Store: Sendable {
    /// Brings the schema up to date; returns the names of the migrations this call applied (none when it
    /// was current). Safe to run from several processes at once.
    @discardableResult
    func migrate() throws -> [String]
    /// One round trip; throws `StoreError.unavailable` when the database cannot be reached.
    func ping() throws
    /// Lets go of the database connections (a later call opens them again). Call it when done.
    func close()

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
    /// Every key, one at a time, in `listKeys`' order: a caller that keeps only part of each key never holds
    /// every row at once.
    func forEachKey(_ body: (KeyRecord) throws -> Void) throws
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
    /// The settled spend of one subject's requests in `[from, to)`, optionally of one model, per local day of
    /// `timeZone`, oldest first; days with no request are absent. What forecasts read.
    func dailySpend(scope: BudgetScope, subjectID: String, model: String?, from: Date, to: Date,
                    timeZone: TimeZone) throws -> [DaySpend]
    /// Records that the budget's forecast went over its limit in the window starting at `windowStart`; false
    /// when that window's crossing was already recorded (by this instance before a restart, or by another).
    /// The one that records it sends the `budget.forecast_exceeds` webhook: once per budget per window.
    @discardableResult
    func markForecastExceeded(budgetID: String, windowStart: Date, at: Date) throws -> Bool

    /// Appends ledger rows and settles leased budget spend in one transaction: both happen or neither.
    /// A row already present (by id) is skipped; see `LeaseSettlement.requestID` for its settlement.
    func appendLedger(_ rows: [LedgerRecord], settling: [LeaseSettlement]) throws
    func ledgerPage(limit: Int, cursor: String?) throws -> LedgerPage
    /// The page of rows matching `filter` (user and team by name), newest first.
    func ledgerPage(limit: Int, cursor: String?, filter: LedgerFilter) throws -> LedgerPage
    func spend(_ query: SpendQuery) throws -> [SpendRow]
    /// Every ledger row in `[from, to)` as the usage report reads it, oldest first (by time, then id), one at a
    /// time: sessions are inferred from them in that order (`UsageAggregator`).
    func forEachUsageEvent(from: Date?, to: Date?, _ body: (UsageEvent) throws -> Void) throws

    /// Every ledger row that started in `[from, to)` and was served by `model` (or asked for the route of that
    /// name), oldest first, one at a time: a month of a million rows is never held at once. What the self-host
    /// estimate reads.
    func forEachUsageSample(model: String, from: Date, to: Date, _ body: (LedgerUsageSample) throws -> Void) throws
    /// Totals from the per-day rollups kept with the ledger (exact at any instant: see `RollupQuery`), most
    /// spent first.
    func rollups(_ query: RollupQuery) throws -> [RollupRow]

    // MARK: Budgets shared by a fleet (see FleetRecords.swift for the rules)

    /// Atomically leases up to `want` of what is left of the budget's window (`limit − spent − leased`) to
    /// `instance`; grants nothing when less than `minimum` is left. Never grants more than is left, however
    /// many instances ask at once.
    func acquireLease(budgetID: String, windowStart: Date, instance: String, limit: Int64, want: Int64,
                      minimum: Int64, expiresAt: Date) throws -> LeaseGrant
    /// Gives back up to `amount` of the instance's lease (never more than it holds).
    func releaseLease(budgetID: String, windowStart: Date, instance: String, amount: Int64) throws
    /// Moves the expiry of every lease the instance holds; returns how many.
    @discardableResult
    func renewLeases(instance: String, expiresAt: Date) throws -> Int
    /// Returns the leases that expired before `now` to their budgets; returns how many.
    @discardableResult
    func reclaimExpiredLeases(now: Date) throws -> Int
    /// `nil` when nothing was ever leased or settled in that window.
    func budgetUsage(budgetID: String, windowStart: Date) throws -> BudgetUsage?
    func leases(instance: String) throws -> [BudgetLease]

    // MARK: Change feed

    /// Changes with an id above `after`, oldest first. Ids only grow, and a change becomes visible only
    /// after every change with a smaller id: a reader that remembers the last id it saw misses nothing.
    func changes(after: Int64, limit: Int) throws -> [StoreChange]
    /// The id of the newest change, 0 when there is none.
    func latestChangeID() throws -> Int64
}

extension Store {
    public func close() {}

    public func forEachKey(_ body: (KeyRecord) throws -> Void) throws {
        for key in try listKeys() { try body(key) }
    }

    /// Appends ledger rows in one transaction.
    public func appendLedger(_ rows: [LedgerRecord]) throws {
        try appendLedger(rows, settling: [])
    }
}

/// The ledger columns a `UsageEvent` is read from, in the order both stores read them.
enum UsageEventColumns {
    static let list = "created_at, key_id, user_name, team_name, client, session_id, session_fingerprint, tool_results, "
        + "cost_nanos, input_tokens, cached_input_tokens, cache_write_tokens, output_tokens"
}
