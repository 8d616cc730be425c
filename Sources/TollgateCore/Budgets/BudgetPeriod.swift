import Foundation

/// How long a budget's spend accumulates before it resets.
public enum BudgetPeriod: String, Hashable, Sendable, CaseIterable {
    case day, week, month, total

    /// The calendar period containing `instant`, aligned in `timeZone`: a day starts at local midnight, a week
    /// on Monday, a month on the 1st. A local day is 23 or 25 hours long when the clocks change, so windows are
    /// computed by the calendar, never by adding seconds.
    public func window(containing instant: Date, in timeZone: TimeZone) -> BudgetWindow {
        let component: Calendar.Component
        switch self {
        case .total: return BudgetWindow(start: .distantPast, end: nil)
        case .day: component = .day
        case .week: component = .weekOfYear
        case .month: component = .month
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        calendar.firstWeekday = 2
        guard let interval = calendar.dateInterval(of: component, for: instant) else {
            preconditionFailure("the Gregorian calendar has a \(self) around every finite instant, not \(instant)")
        }
        return BudgetWindow(start: interval.start, end: interval.end)
    }
}

/// The stretch of time a budget's spend is counted in: `start` inclusive, `end` exclusive.
public struct BudgetWindow: Hashable, Sendable {
    public var start: Date
    /// When the spend resets (the API's `resets_at`); `nil` for a `total` budget, which never resets.
    public var end: Date?

    public init(start: Date, end: Date?) {
        self.start = start
        self.end = end
    }

    /// Whether the window is over at `now`. A clock stepped back before `start` does not reopen an older window.
    public func hasEnded(at now: Date) -> Bool {
        guard let end else { return false }
        return now >= end
    }
}
