import Foundation

/// The knobs of the forecast; the defaults are what the README documents.
public struct ForecastSettings: Hashable, Sendable {
    /// Complete local days before today whose spend gives the rates.
    public var windowDays: Int
    /// Fewer complete days of history than this: one flat rate, and the interval widened.
    public var minimumHistoryDays: Int
    /// A `total` budget never ends: it is projected over this many days after today.
    public var totalHorizonDays: Int
    /// The interval's half-width is at least this share of the projected rest of the period, so that a
    /// window of identical days does not claim certainty.
    public var floorShare: Double

    public init(windowDays: Int = 14, minimumHistoryDays: Int = 3, totalHorizonDays: Int = 30, floorShare: Double = 0.1) {
        self.windowDays = windowDays
        self.minimumHistoryDays = minimumHistoryDays
        self.totalHorizonDays = totalHorizonDays
        self.floorShare = floorShare
    }
}

/// Where a budget's spend is heading by the end of its period. Amounts are in the budget's unit (nano-dollars,
/// or tokens for a token budget); statistics run in `Double` and each result is rounded once, half up.
///
/// The method: the history is the spend of each complete local day of the trailing window (`windowDays`),
/// from the subject's first day with spend in it (days before that are days it did not exist, not days it
/// spent nothing). With at least `minimumHistoryDays` of it, weekdays and weekend days get their own rate (the
/// mean of the window's days of that kind; a kind absent from the window takes the mean of all days), and the
/// rest of the period is projected day by day: the rest of today at today's kind's rate times the share of
/// today still to come, each later day at its kind's rate. The 80 % interval is the projection ± z₈₀·σ, where
/// σ² = s²·U + s²·Σₖ Uₖ²/nₖ: s² is the day-to-day variance around each kind's rate (pooled), U the days still
/// to come (Uₖ of each kind, nₖ the history days of that kind, one kind when the window has only one), the
/// first term the spread of the days themselves and the second the uncertainty of the rates; the half-width
/// is at least `floorShare` of the projected rest. With less history, one flat rate (spend of the history
/// days and today so far over the days elapsed) and an interval of ± the whole projected rest. The low bound
/// never goes below what is already spent.
public struct SpendForecast: Hashable, Sendable {
    public enum Method: Hashable, Sendable, CustomStringConvertible {
        case profile(windowDays: Int)
        case shortHistory(minimumDays: Int)

        public var description: String {
            switch self {
            case .profile(let days): "trailing \(days) days, weekday/weekend profile"
            case .shortHistory(let days): "under \(days) days of history: interval widened"
            }
        }
    }

    public var spent: Int64
    /// Spent plus the projected rest, at `until`.
    public var projected: Int64
    public var low: Int64
    public var high: Int64
    /// The local day the projection reaches the limit (today when it already has); nil when it does not
    /// before `until`, or there is no limit.
    public var exhaustion: CalendarDate?
    /// The end of the period, or of the horizon for a `total` budget.
    public var until: Date
    /// Complete days of history the rates come from.
    public var historyDays: Int
    public var method: Method
    public var weekdayRate: Double
    public var weekendRate: Double

    /// z such that 80 % of a normal distribution lies within ± z σ.
    static let z80 = 1.2815515655446004

    /// `daily` holds the spend of local days in `timeZone` (today's so far included); days absent spent
    /// nothing. `spent` is what the budget counts in its current window.
    public static func project(spent: Int64, limit: Int64?, daily: [CalendarDate: Int64], period: BudgetPeriod,
                               timeZone: TimeZone, now: Date, settings: ForecastSettings = ForecastSettings()) -> SpendForecast {
        let days = LocalDays(timeZone: timeZone)
        let today = days.date(of: now)
        let todayStart = days.start(of: today)
        let tomorrowStart = days.start(of: today.adding(days: 1))
        let leftToday = tomorrowStart.timeIntervalSince(now) / tomorrowStart.timeIntervalSince(todayStart)
        // The first day not projected.
        let endDate: CalendarDate
        let until: Date
        if let end = period.window(containing: now, in: timeZone).end {
            until = end
            endDate = days.date(of: end)
        } else {
            endDate = today.adding(days: 1 + settings.totalHorizonDays)
            until = days.start(of: endDate)
        }

        let windowStart = today.adding(days: -settings.windowDays)
        let first = daily.filter { $0.key >= windowStart && $0.key < today && $0.value > 0 }.keys.min()
        let history: [(date: CalendarDate, amount: Double)] = first.map { first in
            (first.dayNumber..<today.dayNumber).map { number in
                let date = CalendarDate(dayNumber: number)
                return (date, Double(daily[date] ?? 0))
            }
        } ?? []

        // The days still to come, in day units: the rest of today, then whole days.
        var units = (weekday: 0.0, weekend: 0.0)
        func count(_ date: CalendarDate, _ share: Double) {
            if date.isWeekend { units.weekend += share } else { units.weekday += share }
        }
        count(today, leftToday)
        for number in (today.dayNumber + 1)..<max(today.dayNumber + 1, endDate.dayNumber) { count(CalendarDate(dayNumber: number), 1) }
        let totalUnits = units.weekday + units.weekend

        let rates: (weekday: Double, weekend: Double)
        let rest: Double
        let halfWidth: Double
        let method: Method
        if history.count >= settings.minimumHistoryDays {
            method = .profile(windowDays: settings.windowDays)
            let weekdays = history.filter { !$0.date.isWeekend }.map(\.amount)
            let weekends = history.filter { $0.date.isWeekend }.map(\.amount)
            let overall = mean(history.map(\.amount))
            rates = (weekdays.isEmpty ? overall : mean(weekdays), weekends.isEmpty ? overall : mean(weekends))
            let kinds = (weekdays.isEmpty ? 0 : 1) + (weekends.isEmpty ? 0 : 1)
            let squares = history.reduce(0.0) { sum, day in
                let deviation = day.amount - (day.date.isWeekend ? rates.weekend : rates.weekday)
                return sum + deviation * deviation
            }
            let variance = squares / Double(history.count - kinds)
            let rateUncertainty = kinds == 2
                ? units.weekday * units.weekday / Double(weekdays.count) + units.weekend * units.weekend / Double(weekends.count)
                : totalUnits * totalUnits / Double(history.count)
            rest = units.weekday * rates.weekday + units.weekend * rates.weekend
            halfWidth = max(z80 * (variance * (totalUnits + rateUncertainty)).squareRoot(), settings.floorShare * rest)
        } else {
            method = .shortHistory(minimumDays: settings.minimumHistoryDays)
            let elapsed = Double(history.count) + (1 - leftToday)
            let observed = history.reduce(0.0) { $0 + $1.amount } + Double(daily[today] ?? 0)
            let rate = elapsed > 0 ? observed / elapsed : 0
            rates = (rate, rate)
            rest = totalUnits * rate
            halfWidth = rest
        }

        func rounded(_ value: Double) -> Int64 { Int64(value.rounded(.toNearestOrAwayFromZero)) }
        var exhaustion: CalendarDate?
        if let limit {
            if spent >= limit {
                exhaustion = today
            } else {
                var cumulative = Double(spent) + leftToday * (today.isWeekend ? rates.weekend : rates.weekday)
                var date = today
                while cumulative < Double(limit), date.dayNumber + 1 < endDate.dayNumber {
                    date = date.adding(days: 1)
                    cumulative += date.isWeekend ? rates.weekend : rates.weekday
                }
                exhaustion = cumulative >= Double(limit) ? date : nil
            }
        }
        return SpendForecast(spent: spent, projected: spent + rounded(rest), low: spent + rounded(max(0, rest - halfWidth)),
                             high: spent + rounded(rest + halfWidth), exhaustion: exhaustion, until: until,
                             historyDays: history.count, method: method, weekdayRate: rates.weekday, weekendRate: rates.weekend)
    }

    private static func mean(_ values: [Double]) -> Double {
        values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count)
    }
}
