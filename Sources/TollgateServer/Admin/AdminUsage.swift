import Dispatch
import Foundation
import Hummingbird
import NIOCore
import TollgateCore
import TollgateStore

/// `GET /admin/usage?group_by=user|team|client[&from&to][&format=csv]`: sessions, agentic use and cost per
/// active day per group; `GET /admin/usage/trend[?from&to]`: per team and ISO week, the share of its people with
/// an agentic session.
extension AdminAPI {
    func addUsageRoutes(to admin: RouterGroup<BasicRequestContext>) {
        admin.get("usage") { request, _ in
            let parameters = request.uri.queryParameters
            let groupText = parameters.get("group_by") ?? "user"
            guard let grouping = UsageGrouping(rawValue: groupText) else {
                throw AdminError.badRequest("group_by must be one of \(UsageGrouping.allCases.map(\.rawValue).joined(separator: ", "))",
                                            param: "group_by")
            }
            let window = try AdminAPI.window(parameters)
            let store = self.store
            let (rows, budgets) = try await AdminAPI.offRequestLoop {
                let report = try UsageReport.read(store, groupings: [grouping], from: window.from, to: window.to)
                return (report.rows(by: grouping), try store.listBudgets())
            }
            let budgetOf = UsageBudget.lookup(budgets, grouping: grouping)
            if parameters.get("format") == "csv" || request.headers[.accept]?.contains("text/csv") == true {
                return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8"],
                                body: .init(byteBuffer: ByteBuffer(string: CSV.usage(rows, budgetOf: budgetOf))))
            }
            var out = #"{"group_by":"# + JSONValue.string(grouping.rawValue).rendered + #","data":["#
            for (index, row) in rows.enumerated() {
                if index > 0 { out += "," }
                UsageView.json(row, budget: budgetOf(row.group)).render(into: &out)
            }
            out += "]}"
            return AdminAPI.json(rendered: out)
        }
        admin.get("usage/trend") { request, _ in
            let window = try AdminAPI.window(request.uri.queryParameters)
            let store = self.store
            let weeks = try await AdminAPI.offRequestLoop {
                try UsageReport.read(store, groupings: [], from: window.from, to: window.to).adoption()
            }
            return AdminAPI.jsonList(weeks) { UsageView.json($0) }
        }
    }

    /// `from` (inclusive) and `to` (exclusive), each a date or an RFC 3339 time.
    static func window(_ parameters: Parameters) throws -> (from: Date?, to: Date?) {
        func time(_ name: String) throws -> Date? {
            try parameters.get(name).map { text in
                guard let date = RFC3339.parse(text) else { throw AdminError.badRequest("\(name) must be a date or an RFC 3339 time", param: name) }
                return date
            }
        }
        return (try time("from"), try time("to"))
    }

    private static let reportQueue = DispatchQueue(label: "tollgate.usage-reports")

    /// Runs a store read that may take seconds (a month of the ledger) on a queue of its own, off Hummingbird's
    /// executor. Serial: reports asked for at once take turns instead of taking both cores from the relay.
    static func offRequestLoop<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            reportQueue.async {
                do {
                    continuation.resume(returning: try body())
                } catch let error as StoreError {
                    continuation.resume(throwing: AdminError.from(error))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }
}

enum UsageReport {
    /// One pass over the window's ledger rows.
    static func read(_ store: any Store, groupings: Set<UsageGrouping>, from: Date?, to: Date?) throws -> UsageAggregator {
        var aggregator = UsageAggregator(groupings: groupings)
        try store.forEachUsageEvent(from: from, to: to) { aggregator.add($0) }
        return aggregator
    }
}

/// The budget shown beside a user's or team's usage: its own budget for every model, in USD when it has one,
/// the longest period first (month, week, day, then total).
enum UsageBudget {
    static func lookup(_ budgets: [BudgetRecord], grouping: UsageGrouping) -> (String?) -> BudgetRecord? {
        guard grouping != .client else { return { _ in nil } }
        let order = ["month": 0, "week": 1, "day": 2, "total": 3]
        var chosen: [String: BudgetRecord] = [:]
        for budget in budgets where budget.scope == grouping.rawValue && budget.model == nil {
            func rank(_ b: BudgetRecord) -> (Int, Int) { (b.limitUSD == nil ? 1 : 0, order[b.period] ?? 4) }
            if let current = chosen[budget.subjectName], rank(current) <= rank(budget) { continue }
            chosen[budget.subjectName] = budget
        }
        return { name in name.flatMap { chosen[$0] } }
    }
}

enum UsageView {
    /// A share with four decimals: enough for a percentage with two.
    static func share(_ value: Double) -> JSONValue { .double((value * 10_000).rounded() / 10_000) }

    static func json(_ row: UsageRow, budget: BudgetRecord?) -> JSONValue {
        .object([
            ("group", .string(row.group)), ("requests", .int(row.requests)), ("sessions", .int(row.sessions)),
            ("agentic_sessions", .int(row.agenticSessions)), ("assisted_sessions", .int(row.sessions - row.agenticSessions)),
            ("agentic_requests", .int(row.agenticRequests)),
            ("agentic_request_share", share(row.agenticRequestShare)), ("agentic_cost_share", share(row.agenticCostShare)),
            ("active_days", .int(row.activeDays)), ("cost_usd", .money(row.cost)), ("agentic_cost_usd", .money(row.agenticCost)),
            ("cost_per_active_day_usd", .money(row.costPerActiveDay)), ("tokens", .int(row.tokens)),
            ("tokens_per_active_day", .int(row.tokensPerActiveDay)), ("input_tokens", .int(row.inputTokens)),
            ("cached_input_tokens", .int(row.cachedInputTokens)), ("cached_input_share", share(row.cachedInputShare)),
            ("budget_id", .string(budget?.id)), ("budget_period", .string(budget?.period)),
            ("budget_limit_usd", .money(budget?.limitUSD)),
            ("budget_limit_tokens", .int(budget?.limitTokens)),
        ])
    }

    static func json(_ week: AdoptionWeek) -> JSONValue {
        .object([
            ("team", .string(week.team)), ("week", .string(week.week.description)),
            ("week_start", .string(week.week.monday.description)), ("people", .int(week.people)),
            ("agentic_people", .int(week.agenticPeople)), ("agentic_share", share(week.agenticShare)),
        ])
    }
}

extension CSV {
    static func usage(_ rows: [UsageRow], budgetOf: (String?) -> BudgetRecord?) -> String {
        var csv = "group,requests,sessions,agentic_sessions,agentic_request_share,agentic_cost_share,active_days,cost_usd,"
            + "cost_per_active_day_usd,tokens_per_active_day,cached_input_share,budget_period,budget_limit_usd\n"
        for row in rows {
            let budget = budgetOf(row.group)
            func share(_ value: Double) -> String { String((value * 10_000).rounded() / 10_000) }
            csv += [text(row.group ?? ""), String(row.requests), String(row.sessions), String(row.agenticSessions),
                    share(row.agenticRequestShare), share(row.agenticCostShare), String(row.activeDays), money(row.cost),
                    money(row.costPerActiveDay), String(row.tokensPerActiveDay), share(row.cachedInputShare),
                    budget?.period ?? "", budget?.limitUSD.map(money) ?? ""].joined(separator: ",")
            csv += "\n"
        }
        return csv
    }
}
