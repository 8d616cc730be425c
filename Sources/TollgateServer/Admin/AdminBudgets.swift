import Foundation
import Hummingbird
import NIOCore
import TollgateCore
import TollgateProviders
import TollgateStore

/// The entity a budget is on, named by id or name.
struct BudgetSubject {
    var id: String
    var name: String

    static func resolve(scope: String, reference: String, store: any Store) throws -> BudgetSubject? {
        switch scope {
        case "org":
            return try store.listOrgs().first { EntityReference(reference).matches(id: $0.id, name: $0.name) }
                .map { BudgetSubject(id: $0.id, name: $0.name) }
        case "team":
            return try store.team(reference).map { BudgetSubject(id: $0.id, name: $0.name) }
        case "user":
            return try store.user(reference).map { BudgetSubject(id: $0.id, name: $0.name) }
        case "key":
            return try store.listKeys().first { EntityReference(reference).matches(id: $0.id, name: $0.name) }
                .map { BudgetSubject(id: $0.id, name: $0.name ?? $0.prefix) }
        default:
            return nil
        }
    }
}

/// A JSON object's members with numbers kept as their text, so that money sent as a JSON number is read
/// exactly (never through a binary float).
struct RawJSONObject {
    enum Value {
        case string(String)
        case number(String)
        case bool(Bool)
        case null
        case other
    }

    let members: [String: Value]

    init(_ buffer: ByteBuffer) throws {
        var members: [String: Value] = [:]
        do {
            try buffer.withUnsafeReadableBytes { bytes throws(JSONScanner.Failure) in
                var scanner = JSONScanner(bytes)
                try scanner.forEachMember { (scanner, key) throws(JSONScanner.Failure) in
                    switch try scanner.peekKind() {
                    case .string: members[key] = .string(try scanner.readString())
                    case .number:
                        let range = try scanner.skipValue()
                        members[key] = .number(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self))
                    case .bool: members[key] = .bool(try scanner.readBool())
                    case .null: _ = try scanner.readNull(); members[key] = .null
                    case .object, .array: try scanner.skipValue(); members[key] = .other
                    }
                }
                try scanner.expectEnd()
            }
        } catch {
            throw AdminError.badRequest("The request body must be a JSON object.")
        }
        self.members = members
    }

    func string(_ name: String) throws -> String? {
        switch members[name] {
        case nil, .null: return nil
        case .string(let text): return text
        default: throw AdminError.badRequest("\(name) must be a string", param: name)
        }
    }

    /// A decimal given as a string or a JSON number, read from its text.
    func decimalText(_ name: String) throws -> String? {
        switch members[name] {
        case nil, .null: return nil
        case .string(let text), .number(let text): return text
        default: throw AdminError.badRequest("\(name) must be a decimal string or number", param: name)
        }
    }

    func money(_ name: String) throws -> Nanodollars? {
        try decimalText(name).map { text in
            guard let value = Nanodollars(decimalString: text), value >= .zero else {
                throw AdminError.badRequest("\(name) must be a non-negative amount with at most 9 decimals, like \"1500\" or \"0.25\"", param: name)
            }
            return value
        }
    }

    func share(_ name: String) throws -> PartsPerMillion? {
        try decimalText(name).map { text in
            guard let value = PartsPerMillion(decimalString: text) else {
                throw AdminError.badRequest("\(name) must be between 0 and 1, like 0.8", param: name)
            }
            return value
        }
    }

    func integer(_ name: String) throws -> Int? {
        try decimalText(name).map { text in
            guard let value = Int(text), value >= 0 else { throw AdminError.badRequest("\(name) must be a non-negative integer", param: name) }
            return value
        }
    }

    func choice<T: RawRepresentable>(_ name: String, _ type: T.Type, default value: T) throws -> T where T.RawValue == String {
        guard let text = try string(name) else { return value }
        guard let parsed = T(rawValue: text) else { throw AdminError.badRequest("\(name) '\(text)' is not one of the allowed values", param: name) }
        return parsed
    }
}

extension AdminAPI {
    func addBudgetRoutes(to admin: RouterGroup<BasicRequestContext>) {
        if clock.adjustable {
            admin.post("test/clock") { request, _ in
                let body = try RawJSONObject(try await request.body.collect(upTo: 1 << 16))
                guard let text = try body.decimalText("advance_seconds"), let seconds = Double(text) else {
                    throw AdminError.badRequest("advance_seconds is required", param: "advance_seconds")
                }
                clock.advance(seconds: seconds)
                return AdminAPI.json(.object([("now", .time(clock.now()))]))
            }
        }
        admin.post("budgets") { request, _ in
            let body = try RawJSONObject(try await request.body.collect(upTo: 1 << 20))
            let snapshot = try self.defineBudget(body)
            return AdminAPI.json(snapshot, status: .created)
        }
        admin.get("budgets") { _, _ in
            AdminAPI.jsonList(budgets.snapshots(now: clock.now()), rowBytes: 640) { BudgetView.json($0.0, $0.1) }
        }
        admin.delete("budgets/:budget") { _, context in
            let id = try context.parameters.require("budget")
            try AdminAPI.storing { try budgets.remove(id: id) }
            return AdminAPI.json(.object([("id", .string(id)), ("deleted", .bool(true))]))
        }
    }

    /// `POST /admin/budgets`: upserts on (scope, subject, model, period) and answers the budget as it
    /// stands, its spend so far in the window rebuilt from the ledger.
    private func defineBudget(_ body: RawJSONObject) throws -> JSONValue {
        let scope = try body.choice("scope", BudgetScope.self, default: .user)
        guard let reference = try body.string("name") ?? body.string("id") else {
            throw AdminError.badRequest("name (the \(scope.rawValue)'s name or id) is required", param: "name")
        }
        guard let subject = try AdminAPI.storing({ try BudgetSubject.resolve(scope: scope.rawValue, reference: reference, store: store) }) else {
            throw AdminError(status: .notFound, code: "not_found", message: "No \(scope.rawValue) '\(reference)'.", param: "name")
        }
        let period = try body.choice("period", BudgetPeriod.self, default: .month)
        let annualSalary = try body.money("annual_salary_usd")
        let salaryShare = try body.share("salary_share")
        var limitUSD = try body.money("limit_usd")
        let limitTokens = try body.integer("limit_tokens")
        switch (annualSalary, salaryShare) {
        case (let annual?, let share?):
            guard limitUSD == nil, limitTokens == nil, period == .month else {
                throw AdminError.badRequest("a salary budget is monthly and gives its own limit: drop limit_usd/limit_tokens", param: "salary_share")
            }
            limitUSD = SalaryTemplate.monthlyLimitUSD(annualSalaryUSD: annual, share: share)
        case (nil, nil):
            break
        default:
            throw AdminError.badRequest("annual_salary_usd and salary_share go together", param: annualSalary == nil ? "annual_salary_usd" : "salary_share")
        }
        guard (limitUSD == nil) != (limitTokens == nil) else {
            throw AdminError.badRequest("give exactly one of limit_usd, limit_tokens, or a salary", param: "limit_usd")
        }
        let timeZone = try body.string("timezone") ?? "UTC"
        guard TimeZone(identifier: timeZone) != nil else { throw AdminError.badRequest("unknown time zone \(timeZone)", param: "timezone") }
        let now = clock.now()
        let record = BudgetRecord(
            id: EntityID.make("budget"), scope: scope.rawValue, subjectID: subject.id, subjectName: subject.name,
            model: try body.string("model"), limitUSD: limitUSD, limitTokens: limitTokens, period: period.rawValue,
            timeZone: timeZone, mode: try body.choice("mode", BudgetMode.self, default: .strict).rawValue,
            onExhaust: try body.choice("on_exhaust", ExhaustAction.self, default: .reject).rawValue,
            softThresholdPPM: try body.share("soft_threshold")?.value, graceUSD: try body.money("grace_usd") ?? .zero,
            annualSalaryUSD: annualSalary, salarySharePPM: salaryShare?.value, createdAt: now, updatedAt: now)
        let stored = try AdminAPI.storing { try budgets.define(record, now: now) }
        guard let snapshot = budgets.snapshot(budgetID: stored.id, now: now), let current = budgets.record(id: stored.id) else {
            throw AdminError(status: .internalServerError, code: "internal_error", message: "The budget was stored but not loaded.", param: nil)
        }
        return BudgetView.json(snapshot, current)
    }
}
