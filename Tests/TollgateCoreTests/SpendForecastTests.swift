import Foundation
import Testing
@testable import TollgateCore

/// Dollars as nano-dollars, for fixtures written in whole dollars.
private func usd(_ dollars: Int64) -> Int64 { dollars * Nanodollars.perDollar }

private func date(_ text: String) -> CalendarDate {
    let parts = text.split(separator: "-").map { Int($0)! }
    return CalendarDate(year: parts[0], month: parts[1], day: parts[2])
}

@Suite("Spend forecasts: a trailing window with a weekday/weekend profile, projected to the end of the period")
struct SpendForecastTests {
    let utc = TimeZone(identifier: "UTC")!

    /// 2 to 15 December 2026 (Wednesday to Tuesday): weekdays alternate $8 and $16, weekend days spend $1.
    var fortnight: [CalendarDate: Int64] {
        let weekdays: [(String, Int64)] = [
            ("2026-12-02", 8), ("2026-12-03", 16), ("2026-12-04", 8), ("2026-12-07", 16), ("2026-12-08", 8),
            ("2026-12-09", 16), ("2026-12-10", 8), ("2026-12-11", 16), ("2026-12-14", 8), ("2026-12-15", 16),
        ]
        let weekends = ["2026-12-05", "2026-12-06", "2026-12-12", "2026-12-13"].map { ($0, Int64(1)) }
        // Before the window: never read.
        let older = [("2026-12-01", Int64(500))]
        return Dictionary(uniqueKeysWithValues: (weekdays + weekends + older).map { (date($0.0), usd($0.1)) })
    }

    @Test("a month is projected weekdays at the weekday rate and weekend days at the weekend rate, with an 80 % interval from the days' spread")
    func monthWithProfile() throws {
        // Now: Wednesday 16 December, noon UTC; half of today is still to come.
        let now = try budgetInstant("2026-12-16T12:00:00Z")
        let forecast = SpendForecast.project(spent: usd(190), limit: usd(300), daily: fortnight, period: .month,
                                             timeZone: utc, now: now)
        // Window: the 14 complete days 2–15 Dec. Weekday rate = (5 × 8 + 5 × 16) / 10 = $12; weekend rate = 4 × 1 / 4 = $1.
        #expect(forecast.method == .profile(windowDays: 14))
        #expect(forecast.historyDays == 14)
        #expect(forecast.weekdayRate == Double(usd(12)))
        #expect(forecast.weekendRate == Double(usd(1)))
        // To come: half of today (a weekday) and 17–31 Dec = 11 weekdays + 4 weekend days (19, 20, 26, 27):
        // weekday units 11.5, weekend units 4, U = 15.5. Rest = 11.5 × 12 + 4 × 1 = $142; projected = 190 + 142 = $332.
        #expect(forecast.projected == usd(332))
        // Pooled variance: weekday deviations ±4 → 10 × 16 = 160, weekend deviations 0; s² = 160 / (14 − 2) = 13.333… $².
        // Rate uncertainty: 11.5² / 10 + 4² / 4 = 13.225 + 4 = 17.225.
        // σ² = 13.333… × (15.5 + 17.225) = 436.333… $², σ = $20.888593…, half-width = 1.2815516 × σ = $26.769809546
        // (above the floor of 10 % × 142 = $14.2).
        // low = 190 + (142 − 26.769809546) = $305.230190454; high = 190 + 142 + 26.769809546 = $358.769809546.
        #expect(forecast.low == 305_230_190_454)
        #expect(forecast.high == 358_769_809_546)
        // Toward the $300 limit: 190 + 0.5 × 12 = 196 (16th), +12 → 208 (17th), 220 (18th), 221 (Sat 19th),
        // 222 (Sun 20th), 234, 246, 258, 270, 282 (Fri 25th), 283, 284, 296 (Mon 28th), 308 (Tue 29th) ≥ 300.
        #expect(forecast.exhaustion == date("2026-12-29"))
        #expect(forecast.until == (try budgetInstant("2027-01-01T00:00:00Z")))
    }

    @Test("identical days give no spread: the interval is the floor, 10 % of the projected rest")
    func floorOnIdenticalDays() throws {
        // Every weekday of the window $10, weekends nothing. Now: Wednesday 16 Dec 18:00 UTC, a quarter of today to come.
        var daily: [CalendarDate: Int64] = [:]
        for day in 2...15 where !date("2026-12-\(day < 10 ? "0" : "")\(day)").isWeekend {
            daily[date("2026-12-\(day < 10 ? "0" : "")\(day)")] = usd(10)
        }
        let now = try budgetInstant("2026-12-16T18:00:00Z")
        let forecast = SpendForecast.project(spent: usd(25), limit: usd(45), daily: daily, period: .week, timeZone: utc, now: now)
        // The week ends Monday 21 Dec. To come: 0.25 of Wednesday, Thursday, Friday (2.25 weekday units) and the
        // weekend (2 units at $0). Rest = 2.25 × 10 = $22.5; projected = 25 + 22.5 = $47.5.
        // s² = 0, so the half-width is the floor: 0.1 × 22.5 = $2.25: low = $45.25, high = $49.75.
        #expect(forecast.projected == 47_500_000_000)
        #expect(forecast.low == 45_250_000_000)
        #expect(forecast.high == 49_750_000_000)
        // 25 + 2.5 = 27.5 (Wed), 37.5 (Thu), 47.5 (Fri) ≥ 45.
        #expect(forecast.exhaustion == date("2026-12-18"))
        #expect(forecast.until == (try budgetInstant("2026-12-21T00:00:00Z")))
    }

    @Test("a limit not reached before the period ends has no exhaustion date, and none without a limit")
    func noExhaustion() throws {
        let now = try budgetInstant("2026-12-16T12:00:00Z")
        // The month projects to $332 (see above): a $400 limit holds.
        let held = SpendForecast.project(spent: usd(190), limit: usd(400), daily: fortnight, period: .month, timeZone: utc, now: now)
        #expect(held.exhaustion == nil)
        let unlimited = SpendForecast.project(spent: usd(190), limit: nil, daily: fortnight, period: .month, timeZone: utc, now: now)
        #expect(unlimited.exhaustion == nil)
        #expect(unlimited.projected == usd(332))
        // Already at the limit: reached today.
        let spentOut = SpendForecast.project(spent: usd(300), limit: usd(300), daily: fortnight, period: .month, timeZone: utc, now: now)
        #expect(spentOut.exhaustion == date("2026-12-16"))
    }

    @Test("under 3 days of history: one flat rate from what was seen, and the interval widened to ± the projected rest")
    func shortHistory() throws {
        // The subject first spent yesterday ($8); $2 so far today. Now: 16 Dec 06:00 UTC, a quarter of today gone.
        let daily = [date("2026-12-15"): usd(8), date("2026-12-16"): usd(2)]
        let now = try budgetInstant("2026-12-16T06:00:00Z")
        let forecast = SpendForecast.project(spent: usd(10), limit: usd(100), daily: daily, period: .month, timeZone: utc, now: now)
        #expect(forecast.method == .shortHistory(minimumDays: 3))
        #expect(forecast.method.description == "under 3 days of history: interval widened")
        #expect(forecast.historyDays == 1)
        // Rate = (8 + 2) / (1 + 0.25) = $8 a day, weekends alike. To come: 0.75 + 15 days = 15.75; rest = $126.
        #expect(forecast.projected == usd(136))
        // Half-width = the whole rest: low = spent = $10, high = 10 + 2 × 126 = $262.
        #expect(forecast.low == usd(10))
        #expect(forecast.high == usd(262))
        // 10 + 0.75 × 8 = 16 (16th), then +8 a day: 24 (17th) … 16 + 8 × 11 = 104 on the 27th ≥ 100.
        #expect(forecast.exhaustion == date("2026-12-27"))
    }

    @Test("days before the subject's first spend are not counted as days of zero")
    func historyStartsAtFirstSpend() throws {
        // Only 13, 14 and 15 Dec (Sun, Mon, Tue) have spend: 3 days of history, not 14.
        let daily = [date("2026-12-13"): usd(1), date("2026-12-14"): usd(10), date("2026-12-15"): usd(14)]
        let now = try budgetInstant("2026-12-16T00:00:00Z")
        let forecast = SpendForecast.project(spent: usd(24), limit: nil, daily: daily, period: .day, timeZone: utc, now: now)
        #expect(forecast.historyDays == 3)
        #expect(forecast.method == .profile(windowDays: 14))
        // Weekday rate (10 + 14) / 2 = $12, weekend rate $1; the day budget has all of Wednesday to come: rest = $12.
        #expect(forecast.projected == usd(36))
        // s² = ((10 − 12)² + (14 − 12)² + 0) / (3 − 2) = 8 $²; one weekday unit: σ² = 8 × (1 + 1² / 2) = 12, σ = 3.4641016,
        // half-width = 1.2815516 × 3.4641016 = $4.439424848 (floor $1.2): low = 24 + 12 − 4.439424848 = $31.560575152,
        // high = 24 + 12 + 4.439424848 = $40.439424848.
        #expect(forecast.low == 31_560_575_152)
        #expect(forecast.high == 40_439_424_848)
    }

    @Test("a total budget is projected over the 30 days after today")
    func totalHorizon() throws {
        var daily: [CalendarDate: Int64] = [:]
        for day in 2...15 where !date("2026-12-\(day < 10 ? "0" : "")\(day)").isWeekend {
            daily[date("2026-12-\(day < 10 ? "0" : "")\(day)")] = usd(10)
        }
        let now = try budgetInstant("2026-12-16T00:00:00Z")
        let forecast = SpendForecast.project(spent: usd(1000), limit: usd(1200), daily: daily, period: .total, timeZone: utc, now: now)
        // All of today plus 17 Dec–15 Jan: 31 days, of which 8 weekend days (Dec 19, 20, 26, 27, Jan 2, 3, 9, 10):
        // 23 weekdays × $10 = $230.
        #expect(forecast.until == (try budgetInstant("2027-01-16T00:00:00Z")))
        #expect(forecast.projected == usd(1230))
        // $200 to go at $10 a weekday: the 20th weekday from today (16, 17, 18, 21, …) is Tuesday 12 January.
        #expect(forecast.exhaustion == date("2027-01-12"))
    }

    @Test("the share of today still to come follows the local day, 25 hours long when the clocks go back")
    func localDayLength() throws {
        let newYork = TimeZone(identifier: "America/New_York")!
        // 1 Nov 2026, a Sunday, is 25 hours long in New York (04:00Z to 05:00Z next day). Noon EST = 17:00Z:
        // 12 of its 25 hours are left: 0.48 of a day.
        var daily: [CalendarDate: Int64] = [:]
        for day in 18...31 { daily[date("2026-10-\(day)")] = date("2026-10-\(day)").isWeekend ? usd(5) : usd(20) }
        let now = try budgetInstant("2026-11-01T12:00:00-05:00")
        let forecast = SpendForecast.project(spent: usd(3), limit: nil, daily: daily, period: .day, timeZone: newYork, now: now)
        // Weekend rate $5: rest = 0.48 × 5 = $2.4.
        #expect(forecast.projected == 5_400_000_000)
        #expect(forecast.until == (try budgetInstant("2026-11-02T00:00:00-05:00")))
    }
}

@Suite("Calendar dates and local days")
struct CalendarDateTests {
    @Test("dates convert to day numbers and back, leap days included, and know their weekend")
    func arithmetic() {
        #expect(CalendarDate(year: 1970, month: 1, day: 1).dayNumber == 0)
        #expect(CalendarDate(year: 2028, month: 2, day: 29).adding(days: 1).description == "2028-03-01")
        #expect(CalendarDate(year: 2026, month: 12, day: 31).adding(days: 1).description == "2027-01-01")
        #expect(CalendarDate(year: 1969, month: 12, day: 31).dayNumber == -1)
        for number in -800_000...800_000 where number % 997 == 0 {
            let date = CalendarDate(dayNumber: number)
            let (year, month, day) = date.components
            #expect(CalendarDate(year: year, month: month, day: day) == date)
        }
        // 4 Dec 2026 is a Friday, the 5th a Saturday, the 6th a Sunday, the 7th a Monday.
        #expect(!CalendarDate(year: 2026, month: 12, day: 4).isWeekend)
        #expect(CalendarDate(year: 2026, month: 12, day: 5).isWeekend)
        #expect(CalendarDate(year: 2026, month: 12, day: 6).isWeekend)
        #expect(!CalendarDate(year: 2026, month: 12, day: 7).isWeekend)
    }

    @Test("quarter hours are summed into the local day they fall in, in zones with half-hour offsets too")
    func quarterHoursIntoDays() throws {
        let kolkata = LocalDays(timeZone: TimeZone(identifier: "Asia/Kolkata")!)
        // 18:15Z is 23:45 IST on the 16th; 18:30Z is midnight IST, the 17th.
        let buckets: [(bucketStart: Date, usd: Nanodollars, tokens: Int)] = [
            (try budgetInstant("2026-12-15T20:00:00Z"), Nanodollars(1), 10),
            (try budgetInstant("2026-12-16T18:15:00Z"), Nanodollars(2), 20),
            (try budgetInstant("2026-12-16T18:30:00Z"), Nanodollars(4), 40),
            (try budgetInstant("2026-12-17T18:29:59Z"), Nanodollars(8), 80),
        ]
        let days = kolkata.days(from: CalendarDate(year: 2026, month: 12, day: 16),
                                through: CalendarDate(year: 2026, month: 12, day: 17), quarterHours: buckets)
        // 20:00Z on the 15th is 01:30 IST on the 16th.
        #expect(days == [DaySpend(date: CalendarDate(year: 2026, month: 12, day: 16), usd: Nanodollars(3), tokens: 30),
                         DaySpend(date: CalendarDate(year: 2026, month: 12, day: 17), usd: Nanodollars(12), tokens: 120)])
        #expect(kolkata.start(of: CalendarDate(year: 2026, month: 12, day: 17)) == (try budgetInstant("2026-12-16T18:30:00Z")))
    }
}
