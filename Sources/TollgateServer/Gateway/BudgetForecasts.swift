import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TollgateCore
import TollgateStore

/// Whose spend a forecast is of: a budget, or an org, team, user or key without one (no limit, a calendar
/// month in UTC).
struct ForecastSubject: Sendable {
    var budgetID: String?
    var scope: BudgetScope
    var subjectID: String
    var subjectName: String
    var model: String?
    var period: BudgetPeriod
    var timeZone: TimeZone
    var limit: BudgetLimit?
    /// What the budget counts in its current window (the book's figure, as `GET /admin/budgets` shows it);
    /// nil for a subject without a budget, whose spend is read from the ledger.
    var spent: Int64?

    init(_ snapshot: BudgetSnapshot) {
        let definition = snapshot.definition
        budgetID = definition.id
        scope = definition.scope
        subjectID = definition.subjectID
        subjectName = definition.subjectName
        model = definition.model
        period = definition.period
        timeZone = definition.timeZone
        limit = definition.limit
        spent = definition.limit.isUSD ? snapshot.spentUSD.value : Int64(snapshot.spentTokens)
    }

    init(scope: BudgetScope, subjectID: String, subjectName: String) {
        self.scope = scope
        self.subjectID = subjectID
        self.subjectName = subjectName
        period = .month
        timeZone = TimeZone(identifier: "UTC")!
    }

    var countsTokens: Bool {
        if case .tokens = limit { return true }
        return false
    }

    /// The limit in the forecast's unit (nano-dollars or tokens).
    var limitAmount: Int64? {
        switch limit {
        case .usd(let amount): amount.value
        case .tokens(let tokens): Int64(tokens)
        case nil: nil
        }
    }
}

/// Forecasts of budgets from the store's daily spend, and the `budget.forecast_exceeds` webhook, sent when a
/// budget's forecast low bound goes over its limit: once per budget per window, the store deciding which
/// check (of this instance, before or after a restart, or of another instance) sends it. Every store call runs
/// on this type's own queue: never on the event loops, nor on the tasks that serve the admin API.
final class BudgetForecasts: Sendable {
    private let store: any Store
    private let budgets: BudgetLedger
    private let ledger: LedgerWriter
    private let webhook: WebhookSender?
    private let logger: Logger
    let settings: ForecastSettings
    private let queue = DispatchQueue(label: "tollgate.forecasts")
    /// Budget id → the window whose crossing this instance saw recorded: no store write per check for it.
    private let announced = Mutex<[String: Date]>([:])

    init(store: any Store, budgets: BudgetLedger, ledger: LedgerWriter, webhook: WebhookSender?,
         settings: ForecastSettings = ForecastSettings(), logger: Logger) {
        self.store = store
        self.budgets = budgets
        self.ledger = ledger
        self.webhook = webhook
        self.settings = settings
        self.logger = logger
    }

    /// Runs `body` (store calls) on the forecasts' queue.
    func onQueue<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }

    /// Every budget, as a subject to forecast, with the snapshot and record it comes from.
    func budgetSubjects(now: Date) -> [(subject: ForecastSubject, snapshot: BudgetSnapshot, record: BudgetRecord)] {
        budgets.snapshots(now: now).map { (ForecastSubject($0.0), $0.0, $0.1) }
    }

    /// Blocks on the store: call it on the queue.
    func forecast(_ subject: ForecastSubject, now: Date) throws -> SpendForecast {
        let days = LocalDays(timeZone: subject.timeZone)
        let today = days.date(of: now)
        let daily = try store.dailySpend(scope: subject.scope, subjectID: subject.subjectID, model: subject.model,
                                         from: days.start(of: today.adding(days: -settings.windowDays)),
                                         to: days.start(of: today.adding(days: 1)), timeZone: subject.timeZone)
        var amounts: [CalendarDate: Int64] = [:]
        for day in daily { amounts[day.date] = subject.countsTokens ? Int64(day.tokens) : day.usd.value }
        let spent = try subject.spent ?? {
            let window = subject.period.window(containing: now, in: subject.timeZone)
            let spend = try store.spendSince(window.start, scope: subject.scope.rawValue, subjectID: subject.subjectID,
                                             model: subject.model)
            return subject.countsTokens ? Int64(spend.tokens) : spend.usd.value
        }()
        return SpendForecast.project(spent: spent, limit: subject.limitAmount, daily: amounts, period: subject.period,
                                     timeZone: subject.timeZone, now: now, settings: settings)
    }

    /// The forecasts of `subjects`, with the rows settled so far written first.
    func forecasts(_ subjects: [ForecastSubject], now: Date) async throws -> [SpendForecast] {
        try await onQueue {
            self.ledger.flush()
            return try subjects.map { try self.forecast($0, now: now) }
        }
    }

    /// Checks every budget whose window has not been announced yet; one forecast (a store read) per budget.
    func check(now: Date) async {
        do {
            try await onQueue { try self.announceCrossings(now: now) }
        } catch {
            logger.error("could not check the budgets' forecasts: \(error)")
        }
    }

    private func announceCrossings(now: Date) throws {
        ledger.flush()
        let known = announced.withLock { $0 }
        for (subject, snapshot, record) in budgetSubjects(now: now) {
            guard let id = subject.budgetID, let limit = subject.limitAmount else { continue }
            let window = snapshot.window.start
            if known[id] == window || record.forecastWindowStart == window { continue }
            let forecast = try forecast(subject, now: now)
            guard forecast.low > limit else { continue }
            let recorded = try store.markForecastExceeded(budgetID: id, windowStart: window, at: now)
            announced.withLock { $0[id] = window }
            guard recorded else { continue }
            logger.notice("budget \(id) (\(subject.scope.rawValue) \(subject.subjectName)): its forecast's low bound is over its limit")
            guard let webhook else { continue }
            let body = JSONValue.object([
                ("event", .string("budget.forecast_exceeds")), ("budget", BudgetView.json(snapshot, record)),
                ("forecast", ForecastView.json(subject, forecast, asOf: now)), ("crossed_at", .time(now)),
            ]).rendered
            webhook.deliver(body, event: "budget.forecast_exceeds")
        }
    }
}

/// Runs the forecast check every `interval`, from the gateway's start to its shutdown.
struct ForecastService: Service {
    let forecasts: BudgetForecasts
    let clock: GatewayClock
    let interval: Duration

    func run() async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await Task.sleep(for: interval) } catch { return }
                await forecasts.check(now: clock.now())
            }
        }
    }
}

/// A forecast as the API shows it (`GET /admin/forecast`, the webhook).
enum ForecastView {
    static func json(_ subject: ForecastSubject, _ forecast: SpendForecast, asOf now: Date) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("budget_id", .string(subject.budgetID)), ("scope", .string(subject.scope.rawValue)),
            ("name", .string(subject.subjectName)), ("subject_id", .string(subject.subjectID)),
            ("model", .string(subject.model)), ("period", .string(subject.period.rawValue)),
            ("timezone", .string(BudgetView.zoneName(subject.timeZone))),
        ]
        if subject.countsTokens {
            members += [("limit_tokens", .int(subject.limitAmount.map(Int.init))), ("spent_tokens", .int(Int(forecast.spent))),
                        ("forecast_tokens", .int(Int(forecast.projected))), ("forecast_low_tokens", .int(Int(forecast.low))),
                        ("forecast_high_tokens", .int(Int(forecast.high)))]
        } else {
            members += [("limit_usd", .money(subject.limitAmount.map(Nanodollars.init))), ("spent_usd", .money(Nanodollars(forecast.spent))),
                        ("forecast_usd", .money(Nanodollars(forecast.projected))), ("forecast_low_usd", .money(Nanodollars(forecast.low))),
                        ("forecast_high_usd", .money(Nanodollars(forecast.high)))]
        }
        members += [
            ("projected_exhaustion", .string(forecast.exhaustion?.description)), ("forecast_until", .time(forecast.until)),
            ("method", .string(forecast.method.description)), ("history_days", .int(forecast.historyDays)),
            ("as_of", .time(now)),
        ]
        return .object(members)
    }
}
