import Foundation

/// A day of the calendar, with no time and no zone: a day of daily spend, or the day a limit is projected to
/// be reached. Day arithmetic is on the proleptic Gregorian day number, so it needs no `Calendar`.
public struct CalendarDate: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Days since 1970-01-01.
    public let dayNumber: Int

    public init(dayNumber: Int) { self.dayNumber = dayNumber }

    /// Howard Hinnant's `days_from_civil`.
    public init(year: Int, month: Int, day: Int) {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        dayNumber = era * 146_097 + dayOfEra - 719_468
    }

    /// Hinnant's `civil_from_days`.
    public var components: (year: Int, month: Int, day: Int) {
        let z = dayNumber + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    public func adding(days: Int) -> CalendarDate { CalendarDate(dayNumber: dayNumber + days) }

    /// Saturday and Sunday.
    public var isWeekend: Bool {
        // 1970-01-01 was a Thursday: day number 2 is a Saturday.
        let weekday = ((dayNumber - 2) % 7 + 7) % 7
        return weekday < 2
    }

    /// ISO 8601: `2026-12-04`.
    public var description: String {
        let (year, month, day) = components
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(year)-\(two(month))-\(two(day))"
    }

    public static func < (lhs: CalendarDate, rhs: CalendarDate) -> Bool { lhs.dayNumber < rhs.dayNumber }
}

/// The local days of one time zone: which day an instant falls on, and when a day starts. A day is 23 or 25
/// hours long when the clocks change, so its start comes from the calendar, never from adding seconds.
public struct LocalDays: Sendable {
    private let calendar: Calendar

    public init(timeZone: TimeZone) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        self.calendar = calendar
    }

    public func date(of instant: Date) -> CalendarDate {
        let parts = calendar.dateComponents([.year, .month, .day], from: instant)
        guard let year = parts.year, let month = parts.month, let day = parts.day else {
            preconditionFailure("the Gregorian calendar has a date for every finite instant, not \(instant)")
        }
        return CalendarDate(year: year, month: month, day: day)
    }

    /// The first instant of the day (local midnight, or the first instant after it where midnight is skipped).
    public func start(of date: CalendarDate) -> Date {
        let (year, month, day) = date.components
        // Noon exists on every day, whatever the clocks do at midnight.
        guard let noon = calendar.date(from: DateComponents(year: year, month: month, day: day, hour: 12)) else {
            preconditionFailure("the Gregorian calendar has a noon on \(date)")
        }
        return calendar.startOfDay(for: noon)
    }

    /// Adds up spend counted in quarter hours (`bucketStart` ascending, each bucket `[start, start + 15 min)`)
    /// into the local days from `first` through `last`, skipping days with nothing. Every zone's offset and
    /// every clock change falls on a quarter hour, so a bucket never straddles a local midnight.
    public func days(from first: CalendarDate, through last: CalendarDate,
                     quarterHours: [(bucketStart: Date, usd: Nanodollars, tokens: Int)]) -> [DaySpend] {
        var days: [DaySpend] = []
        var date = first
        var end = start(of: first.adding(days: 1))
        let beginning = start(of: first)
        for bucket in quarterHours where bucket.bucketStart >= beginning {
            while bucket.bucketStart >= end, date <= last {
                date = date.adding(days: 1)
                end = start(of: date.adding(days: 1))
            }
            guard date <= last else { break }
            if let index = days.indices.last, days[index].date == date {
                days[index].usd += bucket.usd
                days[index].tokens += bucket.tokens
            } else {
                days.append(DaySpend(date: date, usd: bucket.usd, tokens: bucket.tokens))
            }
        }
        return days
    }
}

/// What a budget's subject spent on one local day.
public struct DaySpend: Hashable, Sendable {
    public var date: CalendarDate
    public var usd: Nanodollars
    /// Input (all kinds) plus output tokens, as a token budget counts them.
    public var tokens: Int

    public init(date: CalendarDate, usd: Nanodollars, tokens: Int) {
        self.date = date
        self.usd = usd
        self.tokens = tokens
    }
}
