import Foundation
import Hummingbird
import NIOCore
import TollgateCore
import TollgateStore

extension AdminAPI {
    /// `GET /admin/forecast[?scope=…&name=…][&format=csv]`: one forecast per budget (of that scope, on that
    /// subject); a subject named with its scope that has no budget gets its own, with no limit, over the
    /// calendar month in UTC.
    func addForecastRoutes(to admin: RouterGroup<BasicRequestContext>) {
        admin.get("forecast") { request, _ in
            let parameters = request.uri.queryParameters
            let scope = try parameters.get("scope").map { text in
                guard let scope = BudgetScope(rawValue: text) else {
                    throw AdminError.badRequest("scope must be one of \(BudgetScope.allCases.map(\.rawValue).joined(separator: ", "))", param: "scope")
                }
                return scope
            }
            let name = parameters.get("name")
            let now = clock.now()
            let store = self.store
            let rows = try await AdminAPI.storing {
                try await forecasts.onQueue { () throws -> [ForecastSubject] in
                    let subjects = forecasts.budgetSubjects(now: now).map(\.subject).filter { subject in
                        (scope == nil || subject.scope == scope)
                            && (name.map { EntityReference($0).matches(id: subject.subjectID, name: subject.subjectName) } ?? true)
                    }
                    guard subjects.isEmpty, let scope, let name else { return subjects }
                    guard let found = try BudgetSubject.resolve(scope: scope.rawValue, reference: name, store: store) else {
                        throw AdminError(status: .notFound, code: "not_found", message: "No \(scope.rawValue) '\(name)'.", param: "name")
                    }
                    return [ForecastSubject(scope: scope, subjectID: found.id, subjectName: found.name)]
                }
            }
            let results = try await AdminAPI.storing { try await forecasts.forecasts(rows, now: now) }
            if parameters.get("format") == "csv" || request.headers[.accept]?.contains("text/csv") == true {
                return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8"],
                                body: .init(byteBuffer: ByteBuffer(string: CSV.forecasts(Array(zip(rows, results))))))
            }
            return AdminAPI.jsonList(Array(zip(rows, results)), rowBytes: 512) { ForecastView.json($0.0, $0.1, asOf: now) }
        }
    }
}

extension AdminAPI {
    static func storing<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as StoreError {
            throw AdminError.from(error)
        }
    }
}

extension CSV {
    /// The forecasts: amounts in the row's `unit` (`usd`, as decimal strings, or `tokens`).
    static func forecasts(_ rows: [(ForecastSubject, SpendForecast)]) -> String {
        var csv = "budget_id,scope,name,model,period,unit,limit,spent,forecast,forecast_low,forecast_high,projected_exhaustion,method,history_days\n"
        for (subject, forecast) in rows {
            func amount(_ value: Int64) -> String { subject.countsTokens ? String(value) : money(Nanodollars(value)) }
            csv += [text(subject.budgetID ?? ""), subject.scope.rawValue, text(subject.subjectName), text(subject.model ?? ""),
                    subject.period.rawValue, subject.countsTokens ? "tokens" : "usd", subject.limitAmount.map(amount) ?? "",
                    amount(forecast.spent), amount(forecast.projected), amount(forecast.low), amount(forecast.high),
                    forecast.exhaustion?.description ?? "", text(forecast.method.description), String(forecast.historyDays),
            ].joined(separator: ",")
            csv += "\n"
        }
        return csv
    }
}
